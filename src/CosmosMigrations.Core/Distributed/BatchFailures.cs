using CosmosMigrations.Connection;
using CosmosMigrations.Errors;
using CosmosMigrations.Running;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Distributed;

/// <summary>A change feed batch's documents that could not be migrated, recorded as a single run's
/// page records them (the same store, the same counts, the same thresholds), and the error the run
/// fails with once a batch went past -MaxFailures or -MaxFailureRate.</summary>
internal sealed class BatchFailures
{
    private readonly TrackingStore _store;
    private readonly string _migration;
    private readonly TargetContainer _target;
    private readonly Failures.FailureStore? _failures;
    private readonly RunOptions _options;
    private readonly TimeProvider _time;
    private MigrationException? _pastThresholds;

    public BatchFailures(TrackingStore store, string migration, TargetContainer target, Failures.FailureStore? failures, RunOptions options)
    {
        _store = store;
        _migration = migration;
        _target = target;
        _failures = failures;
        _options = options;
        _time = options.Time;
    }

    /// <summary>The error past the thresholds, kept from the first batch that went past them.</summary>
    public MigrationException? PastThresholdsError => Volatile.Read(ref _pastThresholds);

    /// <summary>Records documents that could not be migrated: an entry each in the failure store
    /// (with its document as delivered), then one patch of the migration's counts (documents new to
    /// the store only, so a batch delivered again counts nothing twice) and the capped list; returns
    /// whether the failures are past the run's thresholds.</summary>
    public async Task<bool> RecordAsync(int step, IReadOnlyList<WriteOutcome> failed, IReadOnlyList<JObject> documents, CancellationToken cancellationToken)
    {
        var current = await _store.GetAsync(_migration, cancellationToken).ConfigureAwait(false);
        var counted = failed.ToList();
        var byClass = new FailureCounts();
        if (_failures is not null)
        {
            var byId = new Dictionary<string, JObject>(StringComparer.Ordinal);
            foreach (var document in documents)
            {
                byId[(string?)document["id"] ?? ""] = document;
            }

            var recorded = await Task.WhenAll(failed.Select(f =>
            {
                var entry = Failures.FailureEntry.For(_migration, step, byId.TryGetValue(f.Id, out var d) ? d : new JObject { ["id"] = f.Id }, _target.PartitionKey,
                    f.Class ?? FailureClass.Transform, f.Error ?? "", current?.FailureEpoch ?? 0, _time.NowMs(), current?.Journal?.Ttl);
                entry.Attempts = f.Attempts;
                return _failures.RecordAsync(entry, cancellationToken);
            })).ConfigureAwait(false);
            counted = failed.Where((_, i) => recorded[i].New).ToList();
            foreach (var f in counted)
            {
                byClass.Add(f.Class ?? FailureClass.Transform, 1);
            }
        }

        if (counted.Count == 0)
        {
            return PastThresholds(failed, current?.FailureCount ?? 0, current?.Seen ?? 0);
        }

        // Batches of other ranges record at the same time. A list or a class count that is absent
        // is created by a set, which must not overwrite what another batch created meanwhile: that
        // patch is conditioned on the fields being absent still; when it is not, read again and
        // patch with what exists then (the fields are never removed mid-run, so this ends).
        var state = current;
        while (state is not null)
        {
            var listExists = state.Failures is not null || _options.FailureListCap <= 0;
            var classesExist = state.Failed is not null || _failures is null;
            var operations = CountOperations(state, counted, byClass, listExists, classesExist);
            if (listExists && classesExist)
            {
                await _store.PatchAsync(_migration, operations, cancellationToken).ConfigureAwait(false);
                break;
            }

            var absent = new List<string>();
            if (!listExists)
            {
                absent.Add("(NOT IS_DEFINED(c.failures) OR IS_NULL(c.failures))");
            }

            if (!classesExist)
            {
                absent.Add("(NOT IS_DEFINED(c.failed) OR IS_NULL(c.failed))");
            }

            if (await _store.TryPatchAsync(_migration, operations, "FROM c WHERE " + string.Join(" AND ", absent), cancellationToken).ConfigureAwait(false) is not null)
            {
                break;
            }

            state = await _store.GetAsync(_migration, cancellationToken).ConfigureAwait(false);
        }

        return PastThresholds(failed, (current?.FailureCount ?? 0) + counted.Count, current?.Seen ?? 0);
    }

    /// <summary>One patch of at most 10 operations: the count, up to six entries of the capped list
    /// (created when absent), and the classes (one set when absent, else up to three increments).</summary>
    private List<PatchOperation> CountOperations(TrackingDocument? current, IReadOnlyList<WriteOutcome> counted, FailureCounts byClass, bool listExists, bool classesExist)
    {
        var room = Math.Max(0, _options.FailureListCap - (current?.Failures?.Count ?? 0));
        var operations = new List<PatchOperation> { PatchOperation.Increment("/failureCount", counted.Count) };
        if (!listExists && room > 0)
        {
            operations.Add(PatchOperation.Set("/failures", new List<DocumentFailure>()));
        }

        if (room > 0)
        {
            foreach (var failure in counted.Take(Math.Min(room, 6)))
            {
                operations.Add(PatchOperation.Add("/failures/-", new DocumentFailure { Id = failure.Id, PartitionKey = failure.PartitionKey, Error = failure.Error ?? "" }));
            }
        }

        if (_failures is null)
        {
            return operations;
        }

        if (!classesExist)
        {
            operations.Add(PatchOperation.Set("/failed", byClass));
            return operations;
        }

        foreach (var (path, value) in new[] { ("/failed/transform", byClass.Transform), ("/failed/refused", byClass.Refused), ("/failed/exhausted", byClass.Exhausted) })
        {
            if (value > 0)
            {
                operations.Add(PatchOperation.Increment(path, value));
            }
        }

        return operations;
    }

    /// <summary>Whether the run's failures are past its thresholds (the error kept for the run to fail with).</summary>
    private bool PastThresholds(IReadOnlyList<WriteOutcome> failed, long failures, long seen)
    {
        if (RunEnding.PastThresholdsMidRun(_migration, failed, failures, seen, _options, "batch") is not { } past)
        {
            return false;
        }

        Interlocked.CompareExchange(ref _pastThresholds, past, null);
        return true;
    }
}
