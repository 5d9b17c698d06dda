using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Failures;
using CosmosMigrations.Journal;
using CosmosMigrations.Requests;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Running;

/// <summary>-RetryFailures: the migration's steps over its failed documents only. The failure
/// store's entries are read a page at a time; each document is read back by a point read and goes
/// through the document passes from the one that failed, with the writers a run uses (filter
/// predicates and ETags, the journal, so an undo covers what a retry changes), under the
/// migration's lease. Counts stay exact through kills: a batch's documents are recorded in the
/// tracking document (<see cref="TrackingDocument.RetryIntent"/>) before their writes; the
/// entries of the documents that succeeded are marked resolved, then one tracking write counts
/// them and removes the intent, then they are deleted. A retry that dies before its count is
/// counted by the next retry, from the intent: a document no longer needing the change is resolved
/// (and changed when its ETag moved).</summary>
internal sealed class FailureRetry
{
    private readonly MigrationDefinition _definition;
    private readonly RunOptions _options;
    private readonly TargetContainer _target;
    private readonly ResilientSender _sender;
    private readonly LeasedCheckpoint _checkpoint;
    private readonly FailureStore _store;
    private readonly JournalStore? _journal;
    private readonly IProgress<MigrationProgress>? _progress;
    private readonly Action<string>? _log;
    private readonly CancellationToken _cancellationToken;
    private readonly ProgressCounters _counters;
    private readonly StopSignal _stop;
    private readonly Dictionary<int, DocumentWriter> _writers = new();
    private readonly double _chargeAtStart;
    private readonly long _startedMs = Clock.NowMs();
    private long _retried;

    public FailureRetry(MigrationDefinition definition, RunOptions options, TargetContainer target, ResilientSender sender, LeasedCheckpoint checkpoint,
        FailureStore store, JournalStore? journal, IProgress<MigrationProgress>? progress, Action<string>? log, CancellationToken cancellationToken)
    {
        _definition = definition;
        _options = options;
        _target = target;
        _sender = sender;
        _checkpoint = checkpoint;
        _store = store;
        _journal = journal;
        _progress = progress;
        _log = log;
        _cancellationToken = cancellationToken;
        _chargeAtStart = checkpoint.Document.RequestCharge;
        _counters = new ProgressCounters(definition.Name, definition.Steps.Count) { Activity = "Retrying failed documents", EstimateSkipped = true };
        _stop = new StopSignal(options, _counters.Clock);
    }

    private TrackingDocument Document => _checkpoint.Document;

    /// <summary>Whether a retry may start on <paramref name="existing"/>, and the tracking document
    /// it writes (running, under this runner's lease), or Skipped when nothing failed. Only a
    /// migration that went through its steps is retried (a resumed run reaches its end first). A pure
    /// decision, as the lifecycle's are: <paramref name="existing"/> stays as read, the document to
    /// write is a copy (for a skip, the one read).</summary>
    public static StartDecision Decide(TrackingDocument? existing, MigrationDefinition definition, LeaseOwner owner, TimeSpan leaseDuration, long now)
    {
        if (existing is null)
        {
            throw new MigrationException(MigrationErrorKind.MigrationNotFound, "MigrationNotFound", $"There is no migration named '{definition.Name}' to retry.", definition.Name,
                "Run it first (without -RetryFailures): its failures are what a retry runs over.");
        }

        if (existing.Status == TrackingStatus.Running && existing.Mode == MigrationLifecycle.DistributedMode && MigrationLifecycle.LiveWorkers(existing, now, leaseDuration).Count > 0
            || MigrationLifecycle.HasLiveLease(existing, now) && existing.Lease!.Owner.RunId != owner.RunId)
        {
            throw new MigrationException(MigrationErrorKind.AlreadyRunning, "MigrationAlreadyRunning",
                $"Migration '{definition.Name}' is running{(existing.Lease is { } lease ? $", owned by {lease.Owner}" : "")}: its failures are retried once it has ended.", definition.Name,
                "Wait for it to finish (Get-MigrationStatus -Watch), then run -RetryFailures.");
        }

        if (existing.Undo is not null || existing.Status == TrackingStatus.Undone)
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "RetryNotPossible",
                $"Migration '{definition.Name}' is {(existing.Status == TrackingStatus.Undone ? "undone" : "being undone")}: there is nothing to retry.", definition.Name,
                "Run it again with Start-SchemaMigration (without -RetryFailures).");
        }

        var finished = MigrationLifecycle.IsCompleted(existing.Status) || existing.Cursor is null || existing.Cursor.Step >= definition.Steps.Count;
        if (!finished)
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "RetryNeedsFinishedRun",
                $"Migration '{definition.Name}' is {existing.Status} at step {existing.Cursor!.Step + 1} of {definition.Steps.Count}: a retry runs over the failures of a run that went through its steps.", definition.Name,
                "Start it again without -RetryFailures (it resumes from its checkpoint and goes on past failures within -MaxFailures / -MaxFailureRate), then retry.");
        }

        if ((existing.FailureCount ?? 0) == 0 && existing.RetryIntent is null && existing.Status == TrackingStatus.Completed)
        {
            return new StartDecision(StartOutcome.Skipped, existing, null);
        }

        var document = existing.Copy();
        MigrationLifecycle.BeginSingleRun(document, owner, leaseDuration, now);
        // The retry runs the definition it is given (the fixed one): the tracking document says so.
        document.Checksum = definition.Checksum;
        document.Definition = definition.Stored ?? document.Definition;
        document.Cursor = new MigrationCursor { Step = definition.Steps.Count };
        return new StartDecision(StartOutcome.Resumed, document, null);
    }

    public async Task<RunResult> ExecuteAsync(string? warning)
    {
        using var heartbeatStop = CancellationTokenSource.CreateLinkedTokenSource(_cancellationToken);
        var heartbeat = LeaseRenewal.RunAsync(_options.Time, _options.LeaseDuration, () => _checkpoint.LastWriteMs, _checkpoint.RenewAsync, _log, heartbeatStop.Token);
        RunOutcome outcome;
        MigrationException? error;
        try
        {
            (outcome, error) = await RunEnding.EndAsync(RetryAllAsync, FinishAsync, () => Task.CompletedTask, _definition.Name, _cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            heartbeatStop.Cancel();
            try
            {
                await heartbeat.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        var status = MigrationStatus.FromTracking(Document, _definition.SourcePath);
        status.Outcome = outcome.ToString();
        status.ChecksumMismatch = warning is not null;
        status.Message = $"Retried {Interlocked.Read(ref _retried)} failed document(s).";
        return new RunResult(status, error, warning);
    }

    /// <summary>Every entry of the store, a page at a time; the run completed when none is left over the thresholds.</summary>
    private async Task<RunOutcome> RetryAllAsync()
    {
        await SettleAsync().ConfigureAwait(false);
        await _store.DeleteResolvedAsync(_definition.Name, _cancellationToken).ConfigureAwait(false);
        var batch = new List<FailureEntry>(_options.BatchSize);
        await foreach (var entry in _store.ListAsync(_definition.Name, Document.FailureEpoch ?? 0, null, _options.BatchSize, _cancellationToken).ConfigureAwait(false))
        {
            // An entry this retry wrote back (failed again) may come again in the listing: once is enough.
            if (entry.At >= _startedMs)
            {
                continue;
            }

            batch.Add(entry);
            if (batch.Count == _options.BatchSize)
            {
                await RetryBatchAsync(batch).ConfigureAwait(false);
                batch.Clear();
            }
        }

        if (batch.Count > 0)
        {
            await RetryBatchAsync(batch).ConfigureAwait(false);
        }

        if (RunEnding.PastThresholds(Document, _options, Document.Scanned) is { } past)
        {
            throw past;
        }

        await FinishAsync(d => MigrationLifecycle.Complete(d, Clock.NowMs())).ConfigureAwait(false);
        return RunOutcome.Resumed;
    }

    /// <summary>One page of entries: the documents read back, recorded as the batch's intent, each
    /// retried, then the entries settled and the batch counted.</summary>
    private async Task RetryBatchAsync(List<FailureEntry> entries)
    {
        _stop.ThrowIfStopped();
        var documents = await Task.WhenAll(entries.Select(e => ReadAsync(e.Key))).ConfigureAwait(false);
        await _checkpoint.UpdateAsync(d => d.RetryIntent = entries.Select((e, i) => new RetryIntent
        {
            Entry = e.Id,
            Class = e.Class,
            Step = e.Step,
            Key = documents[i] is { } document ? DocumentKey.Of(document, _target.PartitionKey) : e.Key,
        }).ToList(), _cancellationToken).ConfigureAwait(false);

        var results = await Task.WhenAll(entries.Select((e, i) => RetryAsync(e, documents[i]))).ConfigureAwait(false);
        var now = Clock.NowMs();
        await Task.WhenAll(entries.Select(async (entry, i) =>
        {
            var (failure, step, current, _) = results[i];
            if (failure is null)
            {
                await _store.MarkResolvedAsync(entry, _cancellationToken).ConfigureAwait(false);
                return;
            }

            var again = FailureEntry.For(entry.Migration, entry.Step, current ?? documents[i] ?? new JObject { ["id"] = entry.DocumentId }, _target.PartitionKey,
                failure.Class ?? FailureClass.Transform, failure.Error ?? "", entry.Epoch, now, entry.Ttl);
            again.Id = entry.Id;
            again.PartitionKeyValue = entry.PartitionKeyValue;
            again.Step = step;
            again.Attempts = entry.Attempts + 1;
            again.ETag = entry.ETag;
            await _store.TryReplaceAsync(again, _cancellationToken).ConfigureAwait(false);
        })).ConfigureAwait(false);

        await _checkpoint.UpdateAsync(d =>
        {
            for (var i = 0; i < entries.Count; i++)
            {
                var failure = results[i].Failure;
                var before = entries[i].FailureClass;
                if (failure is null)
                {
                    Resolve(d, entries[i].DocumentId, before, results[i].Changed);
                }
                else if ((failure.Class ?? FailureClass.Transform) != before)
                {
                    (d.Failed ??= new FailureCounts()).Add(before, -1);
                    d.Failed.Add(failure.Class ?? FailureClass.Transform, 1);
                }
            }

            d.RetryIntent = null;
            d.RequestCharge = _chargeAtStart + _sender.Gate!.TotalCharge;
        }, _cancellationToken).ConfigureAwait(false);

        await Task.WhenAll(entries.Where((_, i) => results[i].Failure is null).Select(e => _store.DeleteAsync(e, _cancellationToken))).ConfigureAwait(false);
        Interlocked.Add(ref _retried, entries.Count);
        _counters.AddScanned(entries.Count);
        _progress?.Report(_counters.Snapshot(Document, _chargeAtStart + _sender.Gate!.TotalCharge, _sender.Gate.TotalCharge));
        _stop.AfterCheckpoint(Document.StopRequested == true);
    }

    private Task FinishAsync(Action<TrackingDocument> end) =>
        _checkpoint.FinishAsync(d =>
        {
            end(d);
            d.RetryIntent = d.RetryIntent is { Count: > 0 } ? d.RetryIntent : null;
            d.RequestCharge = _chargeAtStart + _sender.Gate!.TotalCharge;
        }, _definition.Name, null);

    /// <summary>A document resolved by a retry: no longer a failure; counted as changed when the retry changed it.</summary>
    private static void Resolve(TrackingDocument document, string id, FailureClass failureClass, bool changed)
    {
        if (changed)
        {
            document.Processed++;
        }

        document.FailureCount = Math.Max(0, (document.FailureCount ?? 0) - 1);
        (document.Failed ??= new FailureCounts()).Add(failureClass, -1);
        document.Failures?.RemoveAll(f => f.Id == id);
        if (document.Failures is { Count: 0 })
        {
            document.Failures = null;
        }
    }

    /// <summary>The document through the document passes from the one that failed: null failure
    /// when every pass changed it or found nothing to do (or the document is gone).</summary>
    private async Task<(WriteOutcome? Failure, int Step, JObject? Current, bool Changed)> RetryAsync(FailureEntry entry, JObject? document)
    {
        var changed = false;
        var current = document;
        for (var step = entry.Step; step < _definition.Steps.Count && current is not null; step++)
        {
            if (_definition.Steps[step] is not DocumentPass pass)
            {
                continue;
            }

            var outcome = await WriterFor(step, pass).WriteAsync(current, _cancellationToken).ConfigureAwait(false);
            if (outcome.Result == WriteResult.Failed)
            {
                return (outcome, step, current, changed);
            }

            if (outcome.Result == WriteResult.Changed)
            {
                changed = true;
                if (_definition.Steps.Skip(step + 1).Any(s => s is DocumentPass))
                {
                    current = await ReadAsync(DocumentKey.Of(current, _target.PartitionKey)).ConfigureAwait(false);
                }
            }
        }

        return (null, entry.Step, current, changed);
    }

    /// <summary>What a retry killed before its count left: each document of its intent no longer
    /// needing the change is resolved (changed when its ETag moved since the intent), in one
    /// tracking write that removes the intent; their entries are marked first, deleted after.</summary>
    private async Task SettleAsync()
    {
        if (Document.RetryIntent is not { Count: > 0 } intents)
        {
            return;
        }

        var settled = await Task.WhenAll(intents.Select(async intent =>
        {
            var entry = await _store.ReadAsync(intent.Entry, _cancellationToken).ConfigureAwait(false);
            var document = await ReadAsync(intent.Key).ConfigureAwait(false);
            var needs = document is not null && await NeedsChangeAsync(document, intent.Step).ConfigureAwait(false);
            var resolved = entry is null || entry.Resolved == true || !needs;
            var changed = resolved && document is not null && !needs && (string?)document["_etag"] != (string?)intent.Key["_etag"];
            if (resolved && entry is { Resolved: not true })
            {
                await _store.MarkResolvedAsync(entry, _cancellationToken).ConfigureAwait(false);
            }

            return (intent, resolved, changed);
        })).ConfigureAwait(false);
        await _checkpoint.UpdateAsync(d =>
        {
            foreach (var (intent, resolved, changed) in settled.Where(s => s.resolved))
            {
                Resolve(d, (string?)intent.Key["id"] ?? "", FailureClasses.Parse(intent.Class), changed);
            }

            d.RetryIntent = null;
        }, _cancellationToken).ConfigureAwait(false);
        _log?.Invoke($"A retry that did not finish left {intents.Count} document(s) uncounted: {settled.Count(s => s.resolved)} resolved ({settled.Count(s => s.changed)} changed by it), the others still failing.");
    }

    private async Task<bool> NeedsChangeAsync(JObject document, int from)
    {
        for (var step = from; step < _definition.Steps.Count; step++)
        {
            if (_definition.Steps[step] is DocumentPass pass)
            {
                try
                {
                    if (await WriterFor(step, pass).NeedsChangeAsync(document, _cancellationToken).ConfigureAwait(false))
                    {
                        return true;
                    }
                }
                catch (Operations.DocumentOperationException)
                {
                    return true;
                }
            }
        }

        return false;
    }

    private DocumentWriter WriterFor(int step, DocumentPass pass)
    {
        lock (_writers)
        {
            // Point reads bring whole documents that no query of the pass's filter selected: the
            // writer checks the filter with every write, as the change feed engine does.
            return _writers.TryGetValue(step, out var writer) ? writer
                : _writers[step] = new DocumentWriter(_target, pass, _sender, filterUnchecked: true, journal: _journal, step: step);
        }
    }

    private Task<JObject?> ReadAsync(JObject key) =>
        DocumentWriter.ReadDocumentAsync(_target, _sender, (string?)key["id"] ?? "", _target.PartitionKey.Read(key), _cancellationToken);
}
