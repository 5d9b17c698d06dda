using System.Diagnostics;

namespace CosmosMigrations.Requests;

/// <summary>Admits a run's requests: at most <see cref="Limit"/> in flight and, with a budget,
/// request units spent at no more than the budget per second (a token bucket debited by each
/// response's measured charge). A run's gate is adaptive (<see cref="Adaptive"/>): a controller
/// finds the limit the account and the network reward, up to the cap. Each feed range gets a lane
/// of its own (<see cref="ForRange"/>): throttling on a range (a hot physical partition) halves
/// that lane's limit only, so the other ranges keep their pace, while the budget, the cap and the
/// totals stay the run's. The run's own limit has one owner: only the controller moves it. Traffic
/// that is not the data lanes' (the journal, estimates, query checks) goes through a side gate
/// (<see cref="ForSideTraffic"/>): the run's budget and totals, a limit of its own, and neither the
/// run's limit nor the controller's measurements.</summary>
internal sealed class RequestGate
{
    private readonly RequestGate? _run;
    private readonly bool _side;
    private readonly ConcurrencyLimit _limit;
    private readonly AdaptiveConcurrency? _adaptive;
    private readonly object _sync = new();
    private readonly List<RequestGate> _lanes = new();
    private readonly int _cap;
    private readonly double? _ruPerSecond;
    private readonly double _burst;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private double _tokens;
    private double _lastRefill;
    private double _totalCharge;
    private long _throttles;
    private long _retries;

    /// <summary>A gate of a fixed limit (throttling halves it; successes restore it).</summary>
    public RequestGate(int maxConcurrency, double? ruPerSecond)
        : this(null, maxConcurrency, null, ruPerSecond)
    {
    }

    private RequestGate(RequestGate? run, int cap, AdaptiveConcurrency? adaptive, double? ruPerSecond, bool side = false)
    {
        _run = run;
        _side = side;
        _cap = Math.Max(1, cap);
        var limit = new ConcurrencyLimit(_cap);
        _limit = limit;
        _adaptive = adaptive;
        _ruPerSecond = ruPerSecond;
        // A fifth of a second of budget may be spent at once: small enough to keep the rate even.
        _burst = ruPerSecond is null ? 0 : Math.Max(1, ruPerSecond.Value / 5);
        _tokens = _burst;
        if (adaptive is not null)
        {
            limit.Set(adaptive.Limit);
            adaptive.Changed = (value, reason) =>
            {
                limit.Set(value);
                ConcurrencyChanged?.Invoke(value, reason);
            };
        }
    }

    /// <summary>A run's gate: the limit adapts, starting at <paramref name="start"/>, never past
    /// <paramref name="cap"/>.</summary>
    public static RequestGate Adaptive(int cap, double? ruPerSecond, int start) =>
        new(null, cap, new AdaptiveConcurrency(cap, start), ruPerSecond);

    /// <summary>Called (from any thread) when the adaptive limit changes, with why.</summary>
    public Action<int, string>? ConcurrencyChanged { get; set; }

    private RequestGate Run => _run ?? this;

    /// <summary>Requests this gate lets in at once (a lane's own limit for a lane).</summary>
    public int Limit => _limit.Limit;

    /// <summary>The lowest any limit went under throttling (this gate's or a lane's).</summary>
    public int LowestLimit
    {
        get
        {
            lock (Run._sync)
            {
                return Run._lanes.Select(l => l._limit.Lowest).DefaultIfEmpty(Run._limit.Lowest).Min();
            }
        }
    }

    /// <summary>Why the run's limit is what it is, when it adapts.</summary>
    public string? ConcurrencyReason => Run._adaptive?.Reason;

    public double TotalCharge
    {
        get { lock (Run._sync) { return Run._totalCharge; } }
    }

    public long Throttles => Interlocked.Read(ref Run._throttles);

    /// <summary>Transient failures retried by requests through this gate (or its run's lanes).</summary>
    public long Retries => Interlocked.Read(ref Run._retries);

    /// <summary>A lane for one feed range: a limit of its own, the run's budget, cap and totals.</summary>
    public RequestGate ForRange()
    {
        var lane = new RequestGate(Run, Run._cap, null, null);
        lock (Run._sync)
        {
            Run._lanes.Add(lane);
        }

        return lane;
    }

    /// <summary>A gate for the run's other traffic (journal records, estimates, checks): at most
    /// <paramref name="limit"/> in flight of its own (halved by throttling, restored by successes),
    /// the run's budget and totals, but no place in the run's limit and no say in the controller's
    /// decisions, so it neither crowds nor moves the data lanes' limit.</summary>
    public RequestGate ForSideTraffic(int limit) => new(Run, limit, null, null, side: true);

    /// <summary>Waits for a place (the lane's, then the run's) and for budget; dispose the result
    /// when the request is done.</summary>
    public async Task<Slot> EnterAsync(CancellationToken cancellationToken)
    {
        var admission = await _limit.EnterAsync(cancellationToken).ConfigureAwait(false);
        var runAdmitted = false;
        try
        {
            if (_run is not null && !_side)
            {
                await _run._limit.EnterAsync(cancellationToken).ConfigureAwait(false);
                runAdmitted = true;
            }

            await Run.WaitForBudgetAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            if (runAdmitted)
            {
                _run!._limit.Release();
            }

            _limit.Release();
            throw;
        }

        return new Slot(this, admission);
    }

    private async Task WaitForBudgetAsync(CancellationToken cancellationToken)
    {
        if (_ruPerSecond is null)
        {
            return;
        }

        while (true)
        {
            double deficit;
            lock (_sync)
            {
                Refill();
                if (_tokens > 0)
                {
                    return;
                }

                deficit = -_tokens;
            }

            var wait = TimeSpan.FromSeconds(Math.Max(0.002, (deficit + 0.01) / _ruPerSecond.Value));
            await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
        }
    }

    private void Refill()
    {
        var now = _clock.Elapsed.TotalSeconds;
        _tokens = Math.Min(_burst, _tokens + (now - _lastRefill) * _ruPerSecond!.Value);
        _lastRefill = now;
    }

    /// <summary>Debits what a response says it cost.</summary>
    public void Record(double requestCharge)
    {
        if (requestCharge <= 0)
        {
            return;
        }

        var run = Run;
        lock (run._sync)
        {
            run._totalCharge += requestCharge;
            if (run._ruPerSecond is not null)
            {
                run.Refill();
                run._tokens -= requestCharge;
            }
        }
    }

    /// <summary>The request admitted as <paramref name="slot"/> was throttled: its lane halves.</summary>
    public void OnThrottled(Slot slot)
    {
        Interlocked.Increment(ref Run._throttles);
        if (slot.Gate._adaptive is null)
        {
            // A lane's (or a fixed gate's) own limit; the controller's limit is the controller's.
            slot.Gate._limit.OnThrottled(slot.Number);
        }

        if (!slot.Gate._side)
        {
            Run._adaptive?.OnThrottled();
        }
    }

    /// <summary>A request went through (it was not throttled or failing transiently).</summary>
    public void OnSuccess() => OnSuccess(null);

    public void OnSuccess(TimeSpan? latency)
    {
        if (_adaptive is null)
        {
            _limit.OnSuccess();
        }

        if (latency is { } measured && !_side)
        {
            Run._adaptive?.OnCompleted(measured);
        }
    }

    /// <summary>A transient failure is being retried.</summary>
    public void OnRetry() => Interlocked.Increment(ref Run._retries);

    private void Release()
    {
        if (!_side)
        {
            _run?._limit.Release();
        }

        _limit.Release();
    }

    /// <summary>A place in the gate; dispose it when the request is done.</summary>
    public sealed class Slot : IDisposable
    {
        private RequestGate? _owner;

        internal Slot(RequestGate gate, long number)
        {
            _owner = gate;
            Gate = gate;
            Number = number;
        }

        /// <summary>The order in which the request was admitted (by its own gate or lane).</summary>
        public long Number { get; }

        internal RequestGate Gate { get; }

        public void Dispose() => Interlocked.Exchange(ref _owner, null)?.Release();
    }
}
