using CosmosMigrations.Errors;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Running;

/// <summary>The tracking document of a run while the run holds its lease: every change is made
/// under one lock and written conditioned on the ETag, renewing the lease. On a conflict the
/// document is read again: if the lease is still this run's (someone set the stop flag), this
/// run's copy is written again with the stop flag taken over; otherwise the run has lost the
/// migration and ends without writing (<see cref="LeaseLostException"/>).</summary>
internal sealed class LeasedCheckpoint
{
    private static readonly TimeSpan FinishTimeout = TimeSpan.FromSeconds(30);

    private readonly TrackingStore _store;
    private readonly LeaseOwner _owner;
    private readonly TimeSpan _leaseDuration;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly object _queueSync = new();
    private List<(Action<TrackingDocument> Change, TaskCompletionSource<bool> Written)> _queued = new();
    private readonly TimeProvider _time;
    private long _lastWriteMs;

    public LeasedCheckpoint(TrackingStore store, TrackingDocument document, LeaseOwner owner, TimeSpan leaseDuration, TimeProvider? time = null)
    {
        _store = store;
        Document = document;
        _owner = owner;
        _leaseDuration = leaseDuration;
        _time = time ?? TimeProvider.System;
        _lastWriteMs = _time.NowMs();
    }

    /// <summary>This run's copy (counters are read from it for progress without the lock).</summary>
    public TrackingDocument Document { get; }

    /// <summary>Changes waiting for the next write (tests watch the group commit with it).</summary>
    internal int Queued
    {
        get
        {
            lock (_queueSync)
            {
                return _queued.Count;
            }
        }
    }

    /// <summary>Epoch ms of the last write that went through.</summary>
    public long LastWriteMs => Interlocked.Read(ref _lastWriteMs);

    /// <summary>Changes the document and writes it, renewing the lease; returns once a write that
    /// holds the change went through. Changes that arrive while a write is in flight go together in
    /// the next one (a group commit): ranges side by side record their pages' intents and
    /// checkpoints in one write instead of queueing for the lock one by one.</summary>
    public async Task UpdateAsync(Action<TrackingDocument> change, CancellationToken cancellationToken)
    {
        var written = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_queueSync)
        {
            _queued.Add((change, written));
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await WriteQueuedLockedAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }

        await written.Task.ConfigureAwait(false);
    }

    /// <summary>Applies every queued change and writes them in one go (under the lock).</summary>
    private async Task WriteQueuedLockedAsync(CancellationToken cancellationToken)
    {
        List<(Action<TrackingDocument> Change, TaskCompletionSource<bool> Written)> batch;
        lock (_queueSync)
        {
            if (_queued.Count == 0)
            {
                // An earlier writer took this change along.
                return;
            }

            batch = _queued;
            _queued = new List<(Action<TrackingDocument>, TaskCompletionSource<bool>)>();
        }

        try
        {
            foreach (var (change, _) in batch)
            {
                change(Document);
            }

            await WriteLockedAsync(renewLease: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            foreach (var (_, written) in batch)
            {
                written.TrySetException(ex);
            }

            throw;
        }

        foreach (var (_, written) in batch)
        {
            written.TrySetResult(true);
        }
    }

    /// <summary>Writes the document as it is, to renew the lease (the heartbeat).</summary>
    public async Task RenewAsync(CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Document.Lease is not null)
            {
                await WriteLockedAsync(renewLease: true, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>A change that must go through even when the run is being cancelled (bounded in
    /// time): counting the writes of a page that cannot be checkpointed.</summary>
    public async Task UpdateBoundedAsync(Action<TrackingDocument> change)
    {
        using var timeout = new CancellationTokenSource(FinishTimeout);
        await UpdateAsync(change, timeout.Token).ConfigureAwait(false);
    }

    /// <summary>The last write of a run: its status, with the lease released. It goes through even
    /// when the user pressed Ctrl+C (that is what makes the run resumable), bounded in time; when
    /// it cannot, <paramref name="warn"/> says so and the lease expires by itself.</summary>
    public async Task FinishAsync(Action<TrackingDocument> change, string name, Action<string>? warn)
    {
        using var timeout = new CancellationTokenSource(FinishTimeout);
        await _lock.WaitAsync(timeout.Token).ConfigureAwait(false);
        List<(Action<TrackingDocument> Change, TaskCompletionSource<bool> Written)> queued;
        lock (_queueSync)
        {
            queued = _queued;
            _queued = new List<(Action<TrackingDocument>, TaskCompletionSource<bool>)>();
        }

        try
        {
            // Changes still queued (a writer gave up waiting) land with the last write.
            queued.ForEach(q => q.Change(Document));
            change(Document);
            Document.Lease = null;
            await WriteLockedAsync(renewLease: false, timeout.Token).ConfigureAwait(false);
            queued.ForEach(q => q.Written.TrySetResult(true));
        }
        catch (Exception ex)
        {
            queued.ForEach(q => q.Written.TrySetException(ex));
            if (ex is LeaseLostException)
            {
                throw;
            }

            warn?.Invoke($"Could not record the end of '{name}' ({CosmosErrors.FirstLine(ex.Message)}); its lease expires by itself and the next start resumes from the last checkpoint.");
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task WriteLockedAsync(bool renewLease, CancellationToken cancellationToken)
    {
        await _store.UpdateAsync(Document.Name, latest =>
        {
            if (!ReferenceEquals(latest, Document))
            {
                // A conflict: someone else wrote. Only a stop request may come from elsewhere.
                if (latest is null || latest.Lease?.Owner.RunId != _owner.RunId)
                {
                    throw new LeaseLostException(Lost(latest));
                }

                Document.ETag = latest.ETag;
                Document.StopRequested = latest.StopRequested;
            }

            if (renewLease && Document.Lease is not null)
            {
                Document.Lease.ExpiresAt = _time.NowMs() + (long)_leaseDuration.TotalMilliseconds;
            }

            return Document;
        }, "checkpoint", cancellationToken, known: Document).ConfigureAwait(false);
        Interlocked.Exchange(ref _lastWriteMs, _time.NowMs());
    }

    private MigrationException Lost(TrackingDocument? latest) =>
        new(MigrationErrorKind.LeaseLost, "LeaseLost",
            latest is null
                ? $"The tracking document of '{Document.Name}' was deleted while it ran (Reset-SchemaMigration?); this run stopped."
                : $"Migration '{Document.Name}' was taken over by {latest.Lease?.Owner} (this run's lease had expired); this run stopped without writing.",
            Document.Name, "Use a -LeaseDuration longer than the slowest page, and check for other runners (Get-MigrationStatus).");
}

/// <summary>Another runner holds the migration now: this run stops without writing.</summary>
internal sealed class LeaseLostException : Exception
{
    public LeaseLostException(MigrationException error)
        : base(error.Message, error)
    {
        Error = error;
    }

    public MigrationException Error { get; }
}
