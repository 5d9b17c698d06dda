using CosmosMigrations.Connection;
using CosmosMigrations.Requests;
using CosmosMigrations.Running;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Distributed;

/// <summary>Settles the intents that workers left on feed ranges (see <see cref="Running.ChangeIntents"/>)
/// before this worker writes there: an intent of a live worker is waited for (it is finishing its
/// batch and counts it itself); an intent of a worker that shows no sign of life for two leases (or
/// one of this worker's own batches that never closed) is counted here, from the documents, in the
/// ledger write that removes it. A range's intents include those of a split's parent range.
/// <para>Counting an intent from its documents ("written since it was read, and no longer needing
/// the change") is exact only when no other worker changed them meanwhile. A takeover makes it so:
/// the new owner fences the range before it settles (<see cref="TakeOverAsync"/>), and plans its
/// first batch, read before that, against the documents as they are now; a worker's own batch that
/// ended early counts what it knows it changed (<see cref="CloseOwnAsync"/>).</para></summary>
internal sealed class IntentRecovery
{
    private readonly RangeLedger _ledger;
    private readonly TrackingStore _store;
    private readonly string _migration;
    private readonly string _worker;
    private readonly TargetContainer _target;
    private readonly TimeSpan _leaseDuration;
    private readonly Func<long, bool> _inFlight;
    private readonly Action<string>? _log;
    private readonly TimeProvider _time;

    public IntentRecovery(RangeLedger ledger, TrackingStore store, string migration, string worker, TargetContainer target, TimeSpan leaseDuration,
        Func<long, bool> inFlight, Action<string>? log, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _ledger = ledger;
        _store = store;
        _migration = migration;
        _worker = worker;
        _target = target;
        _leaseDuration = leaseDuration;
        _inFlight = inFlight;
        _log = log;
    }

    /// <summary>Dead for the others: no heartbeat for two leases (a worker merely stalled on a busy
    /// machine keeps its batch). Its intent may then be counted by another worker.</summary>
    public TimeSpan DeadAfter => _leaseDuration + _leaseDuration;

    /// <summary>A lease's first batch in this worker: the range (and a split's parent, whose holder
    /// may still be at work) is fenced, so that a worker that lost it opens no new batch there,
    /// then what others left on it is settled (<see cref="SettleAsync"/>). After this, no other
    /// worker changes the range's documents except to finish a batch it had open, which this one
    /// waited for. Returns whether another worker may have changed them since this worker's first
    /// batch was read: the range had another owner (or one this build did not record), or it came
    /// from a split; false when this worker is the range's first owner, or owned it last.</summary>
    public async Task<bool> TakeOverAsync(string leaseToken, string? range, IPassWriter planner, CancellationToken cancellationToken)
    {
        var othersMayHaveWritten = false;
        await _ledger.UpdateAsync(leaseToken, range, l =>
        {
            othersMayHaveWritten = l.ETag is not null && l.Owner != _worker;
            return RangeLedger.Fence(l, _worker);
        }, cancellationToken).ConfigureAwait(false);
        var parents = (await _ledger.ListAsync(cancellationToken).ConfigureAwait(false))
            .Where(l => l.LeaseToken != leaseToken && RangeLedger.Contains(l.Range, range))
            .ToList();
        foreach (var parent in parents.Where(p => p.Owner != _worker))
        {
            await _ledger.UpdateAsync(parent.LeaseToken, parent.Range, l => RangeLedger.Fence(l, _worker), cancellationToken, parent, parent.Id).ConfigureAwait(false);
        }

        await SettleAsync(leaseToken, range, planner, cancellationToken).ConfigureAwait(false);
        return othersMayHaveWritten || parents.Count > 0;
    }

    /// <summary>Settles every intent on <paramref name="range"/> (lease <paramref name="leaseToken"/>)
    /// that is not one of this worker's batches in flight. Waits for live workers' intents up to
    /// three leases, then counts them here as a dead worker's: a range holds one intent, so a batch
    /// that a live worker abandoned (or a worker stalled that long) would otherwise hold the range
    /// for ever. If that worker was only stalled, it counts the rest when it ends its batch
    /// (<see cref="RangeLedger.Close"/> leaves out what was counted here).</summary>
    public async Task SettleAsync(string leaseToken, string? range, IPassWriter planner, CancellationToken cancellationToken)
    {
        var deadline = _time.GetUtcNow() + _leaseDuration + _leaseDuration + _leaseDuration;
        while (true)
        {
            var open = (await _ledger.ListAsync(cancellationToken).ConfigureAwait(false))
                .Where(l => l.Intent is not null && (l.LeaseToken == leaseToken || RangeLedger.Overlap(l.Range, range)))
                .ToList();
            if (open.Count == 0)
            {
                return;
            }

            var live = await LiveWorkersAsync(cancellationToken).ConfigureAwait(false);
            var waited = _time.GetUtcNow() > deadline;
            var waiting = new List<string>();
            foreach (var ledger in open)
            {
                var intent = ledger.Intent!;
                if (intent.Worker == _worker && _inFlight(intent.Page))
                {
                    // This worker's own batch still under way (on a split's parent): it counts
                    // itself, and this range's documents wait for it, as for another live worker's.
                    waiting.Add("this worker's batch on the range it came from");
                    continue;
                }

                if (intent.Worker != _worker && intent.Worker is { } owner && live.Contains(owner))
                {
                    if (!waited)
                    {
                        waiting.Add(owner);
                        continue;
                    }

                    _log?.Invoke($"Feed range {leaseToken}: {owner} still has a batch open there after three leases; counting it here (if {owner} is only stalled, it counts the rest when it ends its batch).");
                }

                await CountAsync(ledger, intent, planner, cancellationToken).ConfigureAwait(false);
            }

            if (waiting.Count == 0)
            {
                return;
            }

            _log?.Invoke($"Feed range {leaseToken}: waiting for {string.Join(", ", waiting.Distinct())} to finish its batch there.");
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(200, _leaseDuration.TotalMilliseconds / 10)), _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Closes <paramref name="batch"/>, this worker's own, when it ended before it could
    /// count itself (an error, Ctrl+C, or its lease lost): it counts what this worker knows it
    /// changed (<paramref name="changedIds"/>), plus, of the documents whose write ended without an
    /// answer (<paramref name="unanswered"/>), those found changed; its intent, if it was written,
    /// is removed in the same write, so that no other worker waits for it. Never from the intent's
    /// documents alone: another worker may have changed some of them before this batch's intent
    /// was written (a batch delivered to two owners around a lease move), and counted them.</summary>
    public async Task<long> CloseOwnAsync(string leaseToken, string? range, PageIntent batch, IReadOnlyList<string> changedIds, IReadOnlyList<JObject> unanswered,
        IPassWriter planner, CancellationToken cancellationToken)
    {
        var changed = changedIds.ToList();
        if (unanswered.Count > 0)
        {
            changed.AddRange(await ChangeIntents.ChangedAsync(unanswered, _target, planner, ResilientSender.Ungated, cancellationToken).ConfigureAwait(false));
        }

        long counted = 0;
        await _ledger.UpdateAsync(leaseToken, range, l =>
        {
            var open = l.Intent is { } intent && intent.Worker == _worker && intent.Page == batch.Page;
            if (!open && changed.Count == 0)
            {
                return false;
            }

            counted = RangeLedger.Close(l, _worker, batch, changed, 0) ?? 0;
            return counted > 0 || open;
        }, cancellationToken).ConfigureAwait(false);
        return counted;
    }

    /// <summary>Intents whose worker is dead, on any range of the pass: counted (used once every
    /// range is caught up, when no batch will come to settle them).</summary>
    public async Task<int> SettleOrphansAsync(IPassWriter planner, CancellationToken cancellationToken)
    {
        var open = (await _ledger.ListAsync(cancellationToken).ConfigureAwait(false)).Where(l => l.Intent is not null).ToList();
        if (open.Count == 0)
        {
            return 0;
        }

        var live = await LiveWorkersAsync(cancellationToken).ConfigureAwait(false);
        var left = 0;
        foreach (var ledger in open)
        {
            var intent = ledger.Intent!;
            if ((intent.Worker == _worker && _inFlight(intent.Page)) || (intent.Worker != _worker && intent.Worker is { } owner && live.Contains(owner)))
            {
                left++;
                continue;
            }

            await CountAsync(ledger, intent, planner, cancellationToken).ConfigureAwait(false);
        }

        return left;
    }

    private async Task CountAsync(RangeLedgerDocument ledger, PageIntent intent, IPassWriter planner, CancellationToken cancellationToken)
    {
        var changed = await ChangeIntents.ChangedAsync(intent.Documents, _target, planner, ResilientSender.Ungated, cancellationToken).ConfigureAwait(false);
        var applied = false;
        await _ledger.UpdateAsync(ledger.LeaseToken, ledger.Range, l => applied = RangeLedger.Settle(l, intent, changed), cancellationToken, ledger, ledger.Id).ConfigureAwait(false);
        if (!applied)
        {
            return;
        }

        _log?.Invoke($"Feed range {ledger.LeaseToken}: {intent.Worker} stopped while changing {intent.Documents.Count} document(s); {changed.Count} of them were changed, and are counted.");
        if (intent.Worker is { } owner)
        {
            // The worker's own share, for Get-MigrationStatus (best effort: the range's count is what sums up).
            try
            {
                await _store.PatchAsync(_migration, new[] { PatchOperation.Increment(MigrationLifecycle.WorkerPath(owner) + "/processed", changed.Count) }, cancellationToken).ConfigureAwait(false);
            }
            catch (Errors.MigrationException)
            {
            }
        }
    }

    private async Task<HashSet<string>> LiveWorkersAsync(CancellationToken cancellationToken)
    {
        var document = await _store.GetAsync(_migration, cancellationToken).ConfigureAwait(false);
        return document is null
            ? new HashSet<string>(StringComparer.Ordinal)
            : new HashSet<string>(MigrationLifecycle.LiveWorkers(document, _time.NowMs(), DeadAfter), StringComparer.Ordinal);
    }
}

/// <summary>What this worker counted since it last reported to its record in the tracking document.</summary>
internal sealed class WorkerCounts
{
    private long _processed;
    private long _scanned;
    private long _echoes;
    private long _processedTotal;
    private long _scannedTotal;

    public long Processed => Interlocked.Read(ref _processedTotal);

    public long Scanned => Interlocked.Read(ref _scannedTotal);

    /// <summary>Adds a batch's counts: documents changed, delivered, and of those, this run's own
    /// writes coming back (nothing to do).</summary>
    public void Add(long processed, long scanned, long echoes = 0)
    {
        Interlocked.Add(ref _processed, processed);
        Interlocked.Add(ref _scanned, scanned);
        Interlocked.Add(ref _echoes, echoes);
        Interlocked.Add(ref _processedTotal, processed);
        Interlocked.Add(ref _scannedTotal, scanned);
    }

    /// <summary>Takes the counts not reported yet.</summary>
    public (long Processed, long Scanned, long Echoes) Take() =>
        (Interlocked.Exchange(ref _processed, 0), Interlocked.Exchange(ref _scanned, 0), Interlocked.Exchange(ref _echoes, 0));

    /// <summary>Gives back counts whose report failed (reported with the next one).</summary>
    public void Restore((long Processed, long Scanned, long Echoes) counts)
    {
        Interlocked.Add(ref _processed, counts.Processed);
        Interlocked.Add(ref _scanned, counts.Scanned);
        Interlocked.Add(ref _echoes, counts.Echoes);
    }
}
