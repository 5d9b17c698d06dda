using CosmosMigrations.Tracking;

namespace CosmosMigrations.Distributed;

/// <summary>Paces one lease's change feed checkpoints. A processor checkpoint costs three requests
/// on the service (the SDK's replace meets its own stale ETag: 412, a read, a replace) and sits on
/// the range's path between a batch and the next feed read; half of a pass's batches are only its
/// own writes coming back. So a finished batch's checkpoint is owed, not written: the next batch's
/// supersedes it, it is written in the handler once <see cref="Every"/> passed since the last one,
/// and otherwise when the range has been idle for <see cref="Idle"/> (the end of the feed: the
/// completion watch reads the checkpoints).
/// <para>Safe because nothing counts by checkpoint: a batch is counted in its range's ledger
/// before its checkpoint is owed, and a batch delivered again (the lease moved, the worker died)
/// counts only what it changes again, which for an idempotent change is nothing. What a late
/// checkpoint costs is bounded: at most <see cref="Every"/> of batches delivered again.</para>
/// <para>Checkpoints of one lease are written one at a time and in batch order: a late one never
/// overwrites a newer one.</para></summary>
internal sealed class CheckpointPacer
{
    public static readonly TimeSpan Every = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan Idle = TimeSpan.FromMilliseconds(200);

    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly TimeProvider _time;
    private readonly object _sync = new();
    private long _batch;
    private long _owedBatch;
    private Func<Task>? _owed;
    private long _lastWrittenMs;

    public CheckpointPacer(TimeProvider time)
    {
        _time = time;
        _lastWrittenMs = time.NowMs();
    }

    /// <summary>A batch begins: a checkpoint owed by an earlier one waits for this one's.</summary>
    public long Begin()
    {
        lock (_sync)
        {
            return ++_batch;
        }
    }

    /// <summary>Batch <paramref name="batch"/> is done (counted): its checkpoint is owed. Written
    /// now, in the handler, when <see cref="Every"/> passed since the last (a failure then ends the
    /// batch, as a processor's own checkpoint would: the lease went elsewhere); otherwise later,
    /// unless a newer batch begins first.</summary>
    public Task FinishedAsync(long batch, Func<Task> checkpoint)
    {
        lock (_sync)
        {
            if (batch != _batch)
            {
                return Task.CompletedTask;
            }

            _owed = checkpoint;
            _owedBatch = batch;
        }

        if (_time.NowMs() - Volatile.Read(ref _lastWrittenMs) >= (long)Every.TotalMilliseconds)
        {
            return WriteAsync(batch, throwOnFailure: true);
        }

        _ = WriteWhenIdleAsync(batch);
        return Task.CompletedTask;
    }

    /// <summary>The lease is gone (released, lost, or the worker stops): what is owed is dropped;
    /// the range's next owner reads from its last checkpoint.</summary>
    public void Drop()
    {
        lock (_sync)
        {
            _batch++;
            _owed = null;
        }
    }

    private async Task WriteWhenIdleAsync(long batch)
    {
        await Task.Delay(Idle, _time).ConfigureAwait(false);
        await WriteAsync(batch, throwOnFailure: false).ConfigureAwait(false);
    }

    private async Task WriteAsync(long batch, bool throwOnFailure)
    {
        await _writing.WaitAsync().ConfigureAwait(false);
        try
        {
            Func<Task> owed;
            lock (_sync)
            {
                // Superseded (a newer batch began) or already written.
                if (_owed is null || _owedBatch != batch || _batch != batch)
                {
                    return;
                }

                owed = _owed;
                _owed = null;
            }

            await owed().ConfigureAwait(false);
            Volatile.Write(ref _lastWrittenMs, _time.NowMs());
        }
        catch (Exception) when (!throwOnFailure)
        {
            // Late, with no batch to end: the lease moved on or went elsewhere, and its next owner
            // reads from the last checkpoint written.
        }
        finally
        {
            _writing.Release();
        }
    }
}
