using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Distributed;

/// <summary>What one worker of a distributed run records in the shared tracking document, by
/// atomic patches (several workers write it at once; increments never lose a count):
/// <list type="bullet">
/// <item>before a batch's writes, the documents it is about to change, under its feed range
/// (<c>pending</c>);</item>
/// <item>after them, in one patch, the counts (the migration's and its own), the RU, its
/// heartbeat, and the removal of that pending entry;</item>
/// <item>when it takes a feed range over from a worker that died between the two, the documents
/// of the dead worker's pending entry that no longer need the change are the ones it wrote:
/// they are counted then, so that <c>processed</c> stays exact.</item>
/// </list></summary>
internal sealed class WorkerLedger
{
    private readonly TrackingStore _store;
    private readonly string _migration;
    private readonly string _worker;
    private readonly TargetContainer _target;
    private readonly RunOptionsView _options;
    private readonly RequestGate _gate;
    private readonly Action<string>? _log;
    private readonly object _chargeSync = new();
    private double _chargeRecorded;

    public WorkerLedger(TrackingStore store, string migration, string worker, TargetContainer target, RunOptionsView options, RequestGate gate, Action<string>? log)
    {
        _store = store;
        _migration = migration;
        _worker = worker;
        _target = target;
        _options = options;
        _gate = gate;
        _log = log;
    }

    /// <summary>Documents changed by this worker (counted in the tracking document).</summary>
    public long Processed => Interlocked.Read(ref _processed);

    public long Scanned => Interlocked.Read(ref _scanned);

    private long _processed;
    private long _scanned;

    private string PendingKey(string leaseToken) => leaseToken + "|" + _worker;

    private static string PendingPath(string key) => "/pending/" + FieldPath.EscapePointer(key);

    /// <summary>The id and partition key properties of a document: enough to read it again.</summary>
    public JObject KeyOf(JObject document)
    {
        var key = new JObject { ["id"] = document["id"]?.DeepClone() };
        foreach (var top in _target.PartitionKey.Paths.Select(p => p.Segments[0]).Distinct(StringComparer.Ordinal))
        {
            if (document[top] is { } value)
            {
                key[top] = value.DeepClone();
            }
        }

        return key;
    }

    /// <summary>Records the documents of a batch about to be changed.</summary>
    public Task BeginAsync(string leaseToken, IReadOnlyList<JObject> keys, CancellationToken cancellationToken) =>
        _store.PatchAsync(_migration, new[]
        {
            PatchOperation.Set(PendingPath(PendingKey(leaseToken)), new PendingBatch { Worker = _worker, Documents = keys.ToList() }),
        }, cancellationToken);

    /// <summary>The batch is done: its counts, the RU spent since the last record, this worker's
    /// heartbeat and the end of its pending entry, in one atomic patch.</summary>
    public async Task EndAsync(string leaseToken, long changed, long scanned, bool hadPending, CancellationToken cancellationToken)
    {
        double charge;
        lock (_chargeSync)
        {
            var total = _gate.TotalCharge;
            charge = Math.Round(total - _chargeRecorded, 2);
            _chargeRecorded = total;
        }

        var worker = MigrationLifecycle.WorkerPath(_worker);
        var operations = new List<PatchOperation>
        {
            PatchOperation.Increment("/processed", changed),
            PatchOperation.Increment("/scanned", scanned),
            PatchOperation.Increment("/requestCharge", charge),
            PatchOperation.Increment(worker + "/processed", changed),
            PatchOperation.Increment(worker + "/scanned", scanned),
            PatchOperation.Set(worker + "/heartbeat", Clock.NowMs()),
        };
        if (hadPending)
        {
            operations.Add(PatchOperation.Remove(PendingPath(PendingKey(leaseToken))));
        }

        try
        {
            await _store.PatchAsync(_migration, operations, cancellationToken).ConfigureAwait(false);
        }
        catch (MigrationException ex) when (hadPending && ex.StatusCode == HttpStatusCode.BadRequest)
        {
            // The pending entry is gone: a worker that took this range over judged this one dead
            // (it was stalled longer than two leases) and counted what it found done. The counts
            // still go in; the log says that they may overlap.
            _log?.Invoke($"The pending entry of feed range {leaseToken} was taken over while this worker was stalled; {changed} change(s) recorded anyway.");
            operations.RemoveAt(operations.Count - 1);
            await _store.PatchAsync(_migration, operations, cancellationToken).ConfigureAwait(false);
        }
        Interlocked.Add(ref _processed, changed);
        Interlocked.Add(ref _scanned, scanned);
    }

    /// <summary>Records documents that could not be migrated (the list capped as in a single run)
    /// and returns the migration's failure count.</summary>
    public async Task<long> RecordFailuresAsync(IReadOnlyList<WriteOutcome> failed, CancellationToken cancellationToken)
    {
        var current = await _store.GetAsync(_migration, cancellationToken).ConfigureAwait(false);
        var room = Math.Max(0, _options.FailureListCap - (current?.Failures?.Count ?? 0));
        var operations = new List<PatchOperation> { PatchOperation.Increment("/failureCount", failed.Count) };
        if (current?.Failures is null && room > 0)
        {
            operations.Add(PatchOperation.Set("/failures", new List<DocumentFailure>()));
        }

        foreach (var failure in failed.Take(Math.Min(room, 8)))
        {
            operations.Add(PatchOperation.Add("/failures/-", new DocumentFailure { Id = failure.Id, PartitionKey = failure.PartitionKey, Error = failure.Error ?? "" }));
        }

        await _store.PatchAsync(_migration, operations, cancellationToken).ConfigureAwait(false);
        return (current?.FailureCount ?? 0) + failed.Count;
    }

    /// <summary>Called when this worker acquires a feed range, before it processes any of it: a
    /// worker that died while changing documents of this range left a pending entry; what of it no
    /// longer needs the change was changed by that worker, and is counted now. A worker that
    /// still lives (the range was handed over for balance) finishes and counts its own batch.</summary>
    public async Task RecoverAsync(string leaseToken, DocumentWriter planner, CancellationToken cancellationToken)
    {
        var deadline = DateTimeOffset.UtcNow + _options.LeaseDuration + _options.LeaseDuration + _options.LeaseDuration;
        while (!cancellationToken.IsCancellationRequested)
        {
            var document = await _store.GetAsync(_migration, cancellationToken).ConfigureAwait(false);
            var entries = (document?.Pending ?? new Dictionary<string, PendingBatch>())
                .Where(p => p.Key.StartsWith(leaseToken + "|", StringComparison.Ordinal) && p.Value.Worker != _worker)
                .ToList();
            if (entries.Count == 0)
            {
                return;
            }

            // Dead only after two leases without a heartbeat: a worker merely stalled (a busy
            // machine) must not have its batch counted for it.
            var now = Clock.NowMs();
            var live = MigrationLifecycle.LiveWorkers(document!, now, _options.LeaseDuration + _options.LeaseDuration);
            var orphans = entries.Where(e => !live.Contains(e.Value.Worker)).ToList();
            foreach (var orphan in orphans)
            {
                long counted = 0;
                foreach (var key in orphan.Value.Documents)
                {
                    var id = (string?)key["id"] ?? "";
                    var current = await ReadAsync(id, _target.PartitionKey.Read(key), cancellationToken).ConfigureAwait(false);
                    if (current is not null && !(await planner.PlanAsync(current, cancellationToken).ConfigureAwait(false)).Changed)
                    {
                        counted++;
                    }
                }

                // Counted once: only while the entry is still the dead worker's.
                var path = PendingPath(orphan.Key);
                var applied = await _store.TryPatchAsync(_migration, new[]
                {
                    PatchOperation.Increment("/processed", counted),
                    PatchOperation.Increment(MigrationLifecycle.WorkerPath(orphan.Value.Worker) + "/processed", counted),
                    PatchOperation.Remove(path),
                }, $"FROM c WHERE IS_DEFINED(c{ToSql(orphan.Key)})", cancellationToken).ConfigureAwait(false);
                if (applied is not null)
                {
                    _log?.Invoke($"Took over feed range {leaseToken} from {orphan.Value.Worker}, which stopped while changing {orphan.Value.Documents.Count} document(s): {counted} of them were changed.");
                }
            }

            if (orphans.Count == entries.Count || DateTimeOffset.UtcNow > deadline)
            {
                return;
            }

            // A worker that still lives is finishing the batch it started: let it count its own.
            _log?.Invoke($"Feed range {leaseToken}: waiting for {string.Join(", ", entries.Select(e => e.Value.Worker).Where(w => live.Contains(w)).Distinct())} to finish its batch there.");
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(200, _options.LeaseDuration.TotalMilliseconds / 10)), cancellationToken).ConfigureAwait(false);
        }
    }

    private static string ToSql(string pendingKey) => "[\"pending\"][" + FieldPath.SqlLiteral(pendingKey) + "]";

    private async Task<JObject?> ReadAsync(string id, PartitionKey partitionKey, CancellationToken cancellationToken)
    {
        using var response = await ResilientSender.Ungated.SendAsync(ct => _target.Container.ReadItemStreamAsync(id, partitionKey, cancellationToken: ct),
            $"Reading document '{id}'", cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        if (!response.IsSuccessStatusCode)
        {
            throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "ReadFailed", $"Reading document '{id}' failed.", id);
        }

        return DocumentJson.ReadObject(response.Content);
    }
}

/// <summary>The few run options a distributed worker's parts need.</summary>
internal sealed record RunOptionsView(TimeSpan LeaseDuration, int FailureListCap, int MaxFailures, int BatchSize);
