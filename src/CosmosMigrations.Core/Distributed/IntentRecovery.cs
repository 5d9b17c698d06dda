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
/// ledger write that removes it. A range's intents include those of a split's parent range.</summary>
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
                .Where(l => l.Intent is { } intent && !(intent.Worker == _worker && _inFlight(intent.Page))
                    && (l.LeaseToken == leaseToken || RangeLedger.Overlap(l.Range, range)))
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

    /// <summary>Counts <paramref name="batch"/>, this worker's own, from its documents: the batch
    /// ended before it could count itself (an error, or its intent written as its lease was lost),
    /// and no other worker should have to wait for it.</summary>
    public async Task SettleOwnAsync(string leaseToken, PageIntent batch, IPassWriter planner, CancellationToken cancellationToken)
    {
        // The batch wrote its intent to its own range's ledger: one point read finds it.
        var ledger = await _ledger.GetAsync(_ledger.IdOf(leaseToken), cancellationToken).ConfigureAwait(false);
        if (ledger?.Intent is { } intent && intent.Worker == _worker && intent.Page == batch.Page)
        {
            await CountAsync(ledger, intent, planner, cancellationToken).ConfigureAwait(false);
        }
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
