using System.Diagnostics;

namespace CosmosMigrations.Requests;

/// <summary>Finds how many requests in flight the account and the network reward, as a
/// congestion controller does: it measures throughput over short windows, raises the limit by
/// half while throughput rises with it, goes back to the last limit that paid when a raise gains
/// nothing (more in flight then only adds latency), steps down when latency climbs without a gain
/// in throughput, holds while throttled, and probes upwards again now and then, since what the
/// account allows changes. It never goes past the cap (-MaxDegreeOfParallelism).</summary>
internal sealed class AdaptiveConcurrency
{
    /// <summary>A raise must buy this much more throughput to be kept.</summary>
    private const double Gain = 1.05;

    /// <summary>Windows to wait, after a raise that did not pay, before probing again.</summary>
    private const int HoldWindows = 8;

    private static readonly TimeSpan MinWindow = TimeSpan.FromMilliseconds(250);

    private readonly object _sync = new();
    private readonly Func<TimeSpan> _now;
    private readonly int _cap;
    private TimeSpan _windowStart;
    private long _completions;
    private double _latencySum;
    private bool _throttled;
    private int _limit;
    private int? _raisedFrom;
    private double _throughputBefore;
    private double _lastThroughput;
    private double _lastLatency;
    private int _hold;

    /// <summary>The latency and throughput before a window whose latency rose by half: it must
    /// rise in the next window too before the limit steps down (one slow window is noise on a
    /// shared machine, and stepping down on it cost a third of a run's rate in the benchmark).</summary>
    private (double Latency, double Throughput)? _latencyRise;

    public AdaptiveConcurrency(int cap, int start, Func<TimeSpan>? clock = null)
    {
        var stopwatch = Stopwatch.StartNew();
        _now = clock ?? (() => stopwatch.Elapsed);
        _cap = Math.Max(1, cap);
        _limit = Math.Max(1, Math.Min(_cap, start));
        Reason = $"starting at {_limit} of at most {_cap} in flight";
    }

    public int Limit
    {
        get { lock (_sync) { return _limit; } }
    }

    /// <summary>Why the limit is what it is (for -Verbose and the status object).</summary>
    public string Reason { get; private set; }

    /// <summary>Called when the limit changed, with the reason.</summary>
    public Action<int, string>? Changed { get; set; }

    public void OnThrottled()
    {
        lock (_sync)
        {
            _throttled = true;
        }
    }

    /// <summary>A request completed (not throttled) after <paramref name="latency"/>.</summary>
    public void OnCompleted(TimeSpan latency)
    {
        int? changedTo = null;
        string? reason = null;
        lock (_sync)
        {
            _completions++;
            _latencySum += latency.TotalMilliseconds;
            var elapsed = _now() - _windowStart;
            if (elapsed < MinWindow || _completions < Math.Max(20, _limit))
            {
                return;
            }

            var throughput = _completions / elapsed.TotalSeconds;
            var meanLatency = _latencySum / _completions;
            var before = _limit;
            reason = Decide(throughput, meanLatency);
            _windowStart = _now();
            _completions = 0;
            _latencySum = 0;
            _throttled = false;
            _lastThroughput = throughput;
            _lastLatency = meanLatency;
            if (reason is not null)
            {
                Reason = reason;
                if (_limit != before)
                {
                    changedTo = _limit;
                }
            }
        }

        if (changedTo is { } limit)
        {
            Changed?.Invoke(limit, reason!);
        }
    }

    private string? Decide(double throughput, double latency)
    {
        var rate = Rate(throughput);
        var rise = _latencyRise;
        _latencyRise = null;
        if (_throttled)
        {
            // The lanes that were throttled halved their own limits; raising now would fight them.
            _raisedFrom = null;
            _hold = HoldWindows / 2;
            return $"throttled (429) at {_limit} in flight ({rate}): holding";
        }

        if (_raisedFrom is { } from)
        {
            if (throughput >= _throughputBefore * Gain)
            {
                if (_limit >= _cap)
                {
                    _raisedFrom = null;
                    _hold = HoldWindows;
                    return $"{Rate(_throughputBefore)} at {from} → {rate} at {_limit}: at the cap";
                }

                return RaiseFrom(throughput, $"{Rate(_throughputBefore)} at {from} → {rate} at {_limit}: raising to");
            }

            var back = $"{rate} at {_limit} is no gain over {Rate(_throughputBefore)} at {from}: back to {from}";
            _limit = from;
            _raisedFrom = null;
            _hold = HoldWindows;
            return back;
        }

        var (baseLatency, baseThroughput) = rise ?? (_lastLatency, _lastThroughput);
        if (baseLatency > 0 && latency > baseLatency * 1.5 && throughput <= baseThroughput * 1.02 && _limit > 1)
        {
            if (rise is null)
            {
                // Seen once: lower only if the next window confirms it.
                _latencyRise = (baseLatency, baseThroughput);
                return null;
            }

            // Latency climbed with nothing more done: the account or the network is slower now.
            var lower = Math.Max(1, (int)Math.Floor(_limit * 0.75));
            var message = $"latency rose {baseLatency:0.#} → {latency:0.#} ms at {rate}: lowering to {lower}";
            _limit = lower;
            _hold = HoldWindows / 2;
            return message;
        }

        if (_hold > 0)
        {
            _hold--;
            return null;
        }

        if (_limit < _cap)
        {
            return RaiseFrom(throughput, $"{rate} at {_limit}: probing");
        }

        return null;
    }

    /// <summary>Raises the limit a step, remembering the limit and throughput it rose from (the
    /// next window keeps the rise only if it gained); says so: <paramref name="what"/> and the new limit.</summary>
    private string RaiseFrom(double throughput, string what)
    {
        var next = Raise(_limit);
        _raisedFrom = _limit;
        _throughputBefore = throughput;
        _limit = next;
        return $"{what} {next}";
    }

    private int Raise(int limit) => Math.Min(_cap, Math.Max(limit + 1, (int)Math.Ceiling(limit * 1.5)));

    private static string Rate(double perSecond) => perSecond.ToString("N0", CultureInfo.InvariantCulture) + " requests/s";
}
