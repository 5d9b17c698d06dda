using System;
using System.Threading;
using System.Threading.Tasks;

namespace CosmosMigrations.Running;

/// <summary>How many of a feed range's document writes are started and not yet finished. A page's
/// writes start as places free up, not all at once: a write that only waits for the gate would
/// still hold its state machines, its document and its cancellation registration for as long as
/// it waits, long enough for the garbage collector to promote them (measured on 20,000 documents:
/// with every write of a page started at once, and each outcome holding its edit, a run did 32
/// gen-1 and 8 gen-2 collections against the raw SDK's 16 and 1; with this window and outcomes
/// without the edit, 23 and 5, and half the pause time). The limit is read at every start, so
/// it follows the concurrency controller and throttling.</summary>
internal sealed class WriteWindow
{
    private readonly object _sync = new();
    private readonly Func<int> _limit;
    private int _inFlight;
    private TaskCompletionSource<bool>? _freed;

    public WriteWindow(Func<int> limit)
    {
        _limit = limit;
    }

    /// <summary>Starts <paramref name="write"/> once fewer than the limit are in flight. While it
    /// waits, at least one write is in flight, and its end (or cancellation) wakes the wait.</summary>
    public async Task<Task<T>> StartAsync<T>(Func<Task<T>> write, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Task freed;
            lock (_sync)
            {
                if (_inFlight < Math.Max(1, _limit()))
                {
                    _inFlight++;
                    break;
                }

                _freed ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                freed = _freed.Task;
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
                freed = _freed;
                _freed = null;
            }

            freed?.TrySetResult(true);
        }
    }
}
