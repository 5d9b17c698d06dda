using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;

namespace CosmosMigrations.Requests;

/// <summary>Admits requests to the service: at most <see cref="Limit"/> in flight, and, with a
/// budget, request units spent at no more than the budget per second (a token bucket debited by
/// each response's measured charge). On throttling the limit halves, once per window: throttles
/// of requests that were already in flight when it last halved are the same congestion, not a
/// new one. Every run of successes raises it by one, back up to the maximum.</summary>
public sealed class RequestGate
{
    private readonly object _sync = new();
    private readonly Queue<TaskCompletionSource<bool>> _waiters = new();
    private readonly int _maxConcurrency;
    private readonly double? _ruPerSecond;
    private readonly double _burst;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private double _tokens;
    private double _lastRefill;
    private int _inFlight;
    private int _limit;
    private int _lowestLimit;
    private int _successesSinceChange;
    private long _admitted;
    private long _admittedAtDecrease = -1;
    private double _totalCharge;
    private long _throttles;

    public RequestGate(int maxConcurrency, double? ruPerSecond)
    {
        _maxConcurrency = Math.Max(1, maxConcurrency);
        _limit = _maxConcurrency;
        _lowestLimit = _maxConcurrency;
        _ruPerSecond = ruPerSecond;
        // A fifth of a second of budget may be spent at once: small enough to keep the rate even.
        _burst = ruPerSecond is null ? 0 : Math.Max(1, ruPerSecond.Value / 5);
        _tokens = _burst;
    }

    public int Limit
    {
        get { lock (_sync) { return _limit; } }
    }

    public double TotalCharge
    {
        get { lock (_sync) { return _totalCharge; } }
    }

    public long Throttles => Interlocked.Read(ref _throttles);

    /// <summary>The lowest the limit went (how hard throttling pushed back).</summary>
    public int LowestLimit
    {
        get { lock (_sync) { return _lowestLimit; } }
    }

    /// <summary>Waits for a slot and for budget; dispose the result when the request is done.</summary>
    public async Task<Slot> EnterAsync(CancellationToken cancellationToken)
    {
        TaskCompletionSource<bool>? wait = null;
        lock (_sync)
        {
            if (_inFlight < _limit)
            {
                _inFlight++;
            }
            else
            {
                wait = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Enqueue(wait);
            }
        }

        if (wait is not null)
        {
            using (cancellationToken.Register(() => wait.TrySetCanceled()))
            {
                try
                {
                    await wait.Task.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    lock (_sync)
                    {
                        // The slot may have been handed over just as we were cancelled.
                        if (wait.Task.Status == TaskStatus.RanToCompletion)
                        {
                            ReleaseLocked();
                        }
                    }

                    throw;
                }
            }
        }

        try
        {
            await WaitForBudgetAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Release();
            throw;
        }

        return new Slot(this, Interlocked.Increment(ref _admitted));
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

        lock (_sync)
        {
            _totalCharge += requestCharge;
            if (_ruPerSecond is not null)
            {
                Refill();
                _tokens -= requestCharge;
            }
        }
    }

    /// <summary>The request admitted as <paramref name="slot"/> was throttled.</summary>
    public void OnThrottled(Slot slot)
    {
        Interlocked.Increment(ref _throttles);
        lock (_sync)
        {
            if (slot.Number <= _admittedAtDecrease)
            {
                return;
            }

            _admittedAtDecrease = Interlocked.Read(ref _admitted);
            _limit = Math.Max(1, _limit / 2);
            _lowestLimit = Math.Min(_lowestLimit, _limit);
            _successesSinceChange = 0;
        }
    }

    public void OnSuccess()
    {
        lock (_sync)
        {
            if (_limit >= _maxConcurrency)
            {
                return;
            }

            if (++_successesSinceChange >= _limit)
            {
                _limit++;
                _successesSinceChange = 0;
                while (_inFlight < _limit && _waiters.Count > 0)
                {
                    _inFlight++;
                    if (!_waiters.Dequeue().TrySetResult(true))
                    {
                        _inFlight--;
                    }
                }
            }
        }
    }

    private void Release()
    {
        lock (_sync)
        {
            ReleaseLocked();
        }
    }

    private void ReleaseLocked()
    {
        _inFlight--;
        while (_inFlight < _limit && _waiters.Count > 0)
        {
            _inFlight++;
            if (_waiters.Dequeue().TrySetResult(true))
            {
                break;
            }

            _inFlight--;
        }
    }

    /// <summary>A place in the gate; dispose it when the request is done.</summary>
    public sealed class Slot : IDisposable
    {
        private RequestGate? _gate;

        internal Slot(RequestGate gate, long number)
        {
            _gate = gate;
            Number = number;
        }

        /// <summary>The order in which the request was admitted.</summary>
        public long Number { get; }

        public void Dispose() => Interlocked.Exchange(ref _gate, null)?.Release();
    }
}
