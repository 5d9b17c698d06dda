using CosmosMigrations.Errors;
using CosmosMigrations.Requests;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Distributed;

/// <summary>What a worker of a distributed run tells the tracking document, and how often: its
/// heartbeat (six times a lease: a worker is dead for the others after a lease without one), its
/// counts (absolute values in its own record, increments of the migration's), and on its beat the
/// migration's totals, the sum of the ranges' ledgers. One patch a beat, whatever the batches.</summary>
internal sealed class WorkerBeat
{
    private readonly TrackingStore _store;
    private readonly string _migration;
    private readonly string _worker;
    private readonly RequestGate _gate;
    private readonly TimeProvider _time;
    private readonly Action<string>? _log;
    private readonly CancellationToken _cancellationToken;
    private readonly object _chargeSync = new();
    private double _chargeReported;

    public WorkerBeat(TrackingStore store, string migration, string worker, RequestGate gate, TimeSpan leaseDuration, TimeProvider time, Action<string>? log, CancellationToken cancellationToken)
    {
        _store = store;
        _migration = migration;
        _worker = worker;
        _gate = gate;
        _time = time;
        _log = log;
        _cancellationToken = cancellationToken;
        // A heartbeat six times per lease: a worker is dead for the others after a lease without one.
        Interval = TimeSpan.FromMilliseconds(Math.Max(250, Math.Min(5000, leaseDuration.TotalMilliseconds / 6)));
    }

    /// <summary>How often this worker beats.</summary>
    public TimeSpan Interval { get; }

    /// <summary>What this worker changed and saw (its change feed batches add to it).</summary>
    public WorkerCounts Counts { get; } = new();

    /// <summary>This worker's beat: its heartbeat and the counts it made since the last beat, and,
    /// when the sum of the ranges' ledgers is ahead of the migration's totals, the totals (never
    /// moved back by a slower worker's older sum). Returns the tracking document as it is now.</summary>
    public async Task<TrackingDocument?> BeatAsync(int step, IReadOnlyList<RangeLedgerDocument> ledgers)
    {
        var counts = Counts.Take();
        var charge = TakeCharge();
        var own = CountOperations(counts, charge);
        own.Insert(0, PatchOperation.Set(MigrationLifecycle.WorkerPath(_worker) + "/heartbeat", _time.NowMs()));
        try
        {
            var current = await _store.GetAsync(_migration, _cancellationToken).ConfigureAwait(false);
            if (current?.Cursor is { } cursor && cursor.Step == step && current.Status == TrackingStatus.Running)
            {
                var processed = (cursor.BaseProcessed ?? 0) + ledgers.Sum(l => l.Processed);
                if (processed > current.Processed)
                {
                    var totals = own.Concat(new[]
                    {
                        PatchOperation.Set("/processed", processed),
                        PatchOperation.Set("/pending", PendingOf(ledgers)),
                    }).ToList();
                    var written = await _store.TryPatchAsync(_migration, totals,
                        $"FROM c WHERE c.status = 'running' AND c.cursor.step = {step} AND c.processed < {processed}", _cancellationToken).ConfigureAwait(false);
                    if (written is not null)
                    {
                        return written;
                    }
                }
            }

            await _store.PatchAsync(_migration, own, _cancellationToken).ConfigureAwait(false);
            return await _store.GetAsync(_migration, _cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Counts.Restore(counts);
            RestoreCharge(charge);
            throw;
        }
    }

    /// <summary>The last counts of this worker go to its record even when it leaves on Ctrl+C.</summary>
    public async Task ReportCountsAsync()
    {
        var counts = Counts.Take();
        var charge = TakeCharge();
        if (counts.Processed == 0 && counts.Scanned == 0 && charge == 0)
        {
            return;
        }

        try
        {
            var last = CountOperations(counts, charge);
            await DistributedRun.BoundedAsync(ct => _store.PatchAsync(_migration, last, ct)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is MigrationException or OperationCanceledException)
        {
            _log?.Invoke($"Could not record this worker's last counts ({CosmosErrors.FirstLine(ex.Message)}); the migration's total is the ranges' sum all the same.");
        }
    }

    /// <summary>The worker's own record takes absolute values (a patch retried after a lost answer
    /// cannot count twice); the migration's counts take the increments since the last report.</summary>
    private List<PatchOperation> CountOperations((long Processed, long Scanned, long Echoes) counts, double charge)
    {
        var worker = MigrationLifecycle.WorkerPath(_worker);
        var operations = new List<PatchOperation>
        {
            PatchOperation.Set(worker + "/processed", Counts.Processed),
            PatchOperation.Set(worker + "/scanned", Counts.Scanned),
            PatchOperation.Set(worker + "/requestCharge", Math.Round(_gate.TotalCharge, 2)),
            PatchOperation.Increment("/requestCharge", charge),
            PatchOperation.Increment("/scanned", counts.Scanned),
        };
        if (counts.Echoes > 0)
        {
            operations.Add(PatchOperation.Increment("/echoes", counts.Echoes));
        }

        return operations;
    }

    private static Dictionary<string, PendingBatch> PendingOf(IEnumerable<RangeLedgerDocument> ledgers) =>
        ledgers.Where(l => l.Intent is not null).ToDictionary(
            l => l.LeaseToken + "|" + l.Intent!.Worker,
            l => new PendingBatch { Worker = l.Intent!.Worker ?? "", Documents = l.Intent.Documents },
            StringComparer.Ordinal);

    private double TakeCharge()
    {
        lock (_chargeSync)
        {
            var total = _gate.TotalCharge;
            var charge = Math.Round(total - _chargeReported, 2);
            _chargeReported = total;
            return charge;
        }
    }

    private void RestoreCharge(double charge)
    {
        lock (_chargeSync)
        {
            _chargeReported -= charge;
        }
    }

    /// <summary>A sign of life alone (a worker waiting for another's container step).</summary>
    public Task HeartbeatAsync() =>
        _store.PatchAsync(_migration, new[] { PatchOperation.Set(MigrationLifecycle.WorkerPath(_worker) + "/heartbeat", _time.NowMs()) }, _cancellationToken);
}
