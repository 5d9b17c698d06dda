namespace CosmosMigrations.Requests;

/// <summary>At most <see cref="Limit"/> requests in flight, waiters served in order. On
/// throttling the limit halves, once per congestion window: throttles of requests that were
/// already in flight when it last halved are the same congestion, not a new one. Every run of
/// <see cref="Limit"/> successes raises it by one, back up to its ceiling.</summary>
internal sealed class ConcurrencyLimit
{
    private readonly object _sync = new();
    private readonly Queue<TaskCompletionSource<bool>> _waiters = new();
    private readonly int _ceiling;
    private int _inFlight;
    private int _limit;
    private int _lowest;
    private int _successesSinceChange;
    private long _admitted;
    private long _admittedAtDecrease = -1;

    public ConcurrencyLimit(int ceiling)
    {
        _ceiling = Math.Max(1, ceiling);
        _limit = _ceiling;
        _lowest = _ceiling;
    }

    public int Limit
    {
        get { lock (_sync) { return _limit; } }
    }

    /// <summary>The lowest the limit went (how hard throttling pushed back).</summary>
    public int Lowest
    {
        get { lock (_sync) { return _lowest; } }
    }

    /// <summary>Sets the limit (an adaptive controller's choice), within 1 and the ceiling.</summary>
    public void Set(int limit)
    {
        lock (_sync)
        {
            _limit = Math.Max(1, Math.Min(_ceiling, limit));
            _lowest = Math.Min(_lowest, _limit);
            _successesSinceChange = 0;
            ServeWaitersLocked();
        }
    }

    /// <summary>Waits for a place; returns the admission number (for <see cref="OnThrottled"/>).</summary>
    public async Task<long> EnterAsync(CancellationToken cancellationToken)
    {
        TaskCompletionSource<bool>? wait = null;
        lock (_sync)
        {
            if (_inFlight < _limit)
            {
                _inFlight++;
                return ++_admitted;
            }

            wait = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Enqueue(wait);
        }

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
                    // The place may have been handed over just as we were cancelled.
                    if (wait.Task.Status == TaskStatus.RanToCompletion)
                    {
                        ReleaseLocked();
                    }
                }

                throw;
            }
        }

        return Interlocked.Increment(ref _admitted);
    }

    public void Release()
    {
        lock (_sync)
        {
            ReleaseLocked();
        }
    }

    /// <summary>The request admitted as number <paramref name="admission"/> was throttled.</summary>
    public void OnThrottled(long admission)
    {
        lock (_sync)
        {
            if (admission <= _admittedAtDecrease)
            {
                return;
            }

            _admittedAtDecrease = Interlocked.Read(ref _admitted);
            _limit = Math.Max(1, _limit / 2);
            _lowest = Math.Min(_lowest, _limit);
            _successesSinceChange = 0;
        }
    }

    public void OnSuccess()
    {
        lock (_sync)
        {
            if (_limit >= _ceiling)
            {
                return;
            }

            if (++_successesSinceChange >= _limit)
            {
                _limit++;
                _successesSinceChange = 0;
                ServeWaitersLocked();
            }
        }
    }

    private void ReleaseLocked()
    {
        _inFlight--;
        ServeWaitersLocked();
    }

    private void ServeWaitersLocked()
    {
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
