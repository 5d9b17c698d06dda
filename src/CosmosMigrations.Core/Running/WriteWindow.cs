namespace CosmosMigrations.Running;

/// <summary>How many document writes are started and not yet finished: a run's window, shared by
/// the windows of its feed ranges (<see cref="ForRange"/>). A write starts only while its range is
/// under its lane's limit and the run under the run's limit, so a started write finds a place in
/// the gate instead of waiting there. A write that waits still holds its state machines, its
/// document, its planned edit and its cancellation registration, long enough for the garbage
/// collector to promote them (measured on 20,000 documents: with every write of a page started at
/// once, and each outcome holding its edit, a run did 32 gen-1 and 8 gen-2 collections against the
/// raw SDK's 16 and 1; with a window per range, 23 and 5). Limits are read at every start, so they
/// follow the concurrency controller and throttling.</summary>
internal sealed class WriteWindow
{
    private readonly WriteWindow? _run;
    private readonly object _sync;
    private readonly Func<int> _limit;
    private int _inFlight;
    private TaskCompletionSource<bool>? _freed;

    public WriteWindow(Func<int> limit)
        : this(limit, null)
    {
    }

    private WriteWindow(Func<int> limit, WriteWindow? run)
    {
        _limit = limit;
        _run = run;
        // One lock for a run and its ranges: a place freed in one range may let another start.
        _sync = run?._sync ?? new object();
    }

    /// <summary>The run's window (this one, for a run's).</summary>
    private WriteWindow Root => _run ?? this;

    /// <summary>A range's window: its own limit (the lane's), within this run's.</summary>
    public WriteWindow ForRange(Func<int> limit) => new(limit, this);

    /// <summary>Starts <paramref name="write"/> once the limits allow. While it waits, at least one
    /// write is in flight, and its end (or cancellation) wakes the wait.</summary>
    public async Task<Task<T>> StartAsync<T>(Func<Task<T>> write, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Task freed;
            lock (_sync)
            {
                if (_inFlight < Math.Max(1, _limit()) && (_run is null || _run._inFlight < Math.Max(1, _run._limit())))
                {
                    _inFlight++;
                    if (_run is not null)
                    {
                        _run._inFlight++;
                    }

                    break;
                }

                Root._freed ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                freed = Root._freed.Task;
            }

            await freed.ConfigureAwait(false);
        }

        return RunAsync(write);
    }

    private async Task<T> RunAsync<T>(Func<Task<T>> write)
    {
        try
        {
            return await write().ConfigureAwait(false);
        }
        finally
        {
            TaskCompletionSource<bool>? freed;
            lock (_sync)
            {
                _inFlight--;
                if (_run is not null)
                {
                    _run._inFlight--;
                }

                freed = Root._freed;
                Root._freed = null;
            }

            freed?.TrySetResult(true);
        }
    }
}
