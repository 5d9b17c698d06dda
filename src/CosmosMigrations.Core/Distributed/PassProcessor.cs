using System.Collections.Concurrent;
using System.IO;
using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Journal;
using CosmosMigrations.Operations;
using CosmosMigrations.Requests;
using CosmosMigrations.Running;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Distributed;

/// <summary>Hosts this worker's instance of the change feed processor for one document pass:
/// every instance with the same processor name shares the pass's feed ranges through leases in
/// the lease container (balanced across instances, handed over when one stops or dies,
/// checkpointed per range). It works on the processor's terms:
/// <list type="bullet">
/// <item>a lease's first batch in this worker first takes the range over (<see cref="IntentRecovery.TakeOverAsync"/>):
/// fences it, so that the worker that lost it opens no new batch there, and settles what others left
/// on it, where errors surface and the lease is renewed; that batch, read before the fence, keeps
/// only the documents still at the version the feed delivered;</item>
/// <item>each batch is planned once, its intent recorded in the range's ledger, its documents
/// written through guarded writes, then counted in the same ledger write that removes the intent,
/// before its checkpoint is owed (<see cref="CheckpointPacer"/>: written when the range goes idle or
/// a second after the last): a batch delivered again counts only what it changes again;</item>
/// <item>a batch's documents are built from the feed's bytes only where needed: its own writes
/// coming back are recognised by id and ETag alone, and the rest get only the properties a single
/// run's scan would read (<see cref="FeedPage"/>);</item>
/// <item>the processor's cancellation (the lease went elsewhere) stops the batch between
/// documents; what it wrote is counted, and the rest is delivered to the new owner. A batch that
/// ends before it counted itself is closed with the writes that answered "changed"
/// (<see cref="IntentRecovery.CloseOwnAsync"/>).</item>
/// </list></summary>
internal sealed class PassProcessor
{
    private readonly TargetContainer _target;
    private readonly DocumentPass _pass;
    private readonly RequestGate _gate;
    private readonly RangeLedger _ledger;
    private readonly IntentRecovery _recovery;
    private readonly WorkerCounts _counts;
    private readonly RunOptionsView _options;
    private readonly string _worker;
    private readonly Action<string>? _log;
    private readonly ConcurrentDictionary<string, IPassWriter> _writers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _acquired = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<long, bool> _inFlight = new();
    private readonly ConcurrentDictionary<string, RangeLedgerDocument> _known = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CheckpointPacer> _checkpoints = new(StringComparer.Ordinal);

    /// <summary>For a copy: the counted version a range inherits from the ledgers of the ranges it
    /// came from (a split's parent), read when this worker acquires it.</summary>
    private readonly ConcurrentDictionary<string, long> _inheritedLsn = new(StringComparer.Ordinal);

    /// <summary>The ETag each of this worker's recent writes left, by document id: the change feed
    /// delivers every write back, and a document still at the version this worker wrote needs no
    /// plan (a transform would run again only to find nothing to change). Bounded.</summary>
    private readonly ConcurrentDictionary<string, string> _echoes = new(StringComparer.Ordinal);

    private const int EchoCap = 100_000;

    /// <summary>The top-level properties a batch's documents are built with (what a single run's
    /// scan would ask for), or null for whole documents.</summary>
    private readonly HashSet<string>? _properties;
    private readonly IPassWriter _planner;
    private readonly IPassWrites? _writes;
    private readonly HashSet<string> _failedIds;
    private readonly CancellationToken _runToken;
    private readonly CancellationToken _settleToken;
    private readonly JournalStore? _journal;
    private readonly int _step;
    private readonly Func<IReadOnlyList<WriteOutcome>, IReadOnlyList<JObject>, CancellationToken, Task<bool>> _recordFailures;
    // Batch numbers unique within the worker, also across the passes it runs (the ledger remembers them).
    private long _batches = Clock.NowMs() * 1000;
    private MigrationException? _failure;

    /// <summary>The documents of <paramref name="failedIds"/>, already recorded as failed, are not
    /// tried (or counted) again. With <paramref name="journal"/>, every change is journaled first,
    /// as in a single run (as step <paramref name="step"/>). <paramref name="runToken"/> is this
    /// worker's Ctrl+C; <paramref name="settleToken"/> outlives it by a grace period, so that a batch
    /// under way is finished and counted.</summary>
    public PassProcessor(TargetContainer target, DocumentPass pass, RequestGate gate, RangeLedger ledger, TrackingStore store, string migration, WorkerCounts counts,
        RunOptionsView options, string worker, IEnumerable<string> failedIds, Func<IReadOnlyList<WriteOutcome>, IReadOnlyList<JObject>, CancellationToken, Task<bool>> recordFailures,
        Action<string>? log, CancellationToken runToken, CancellationToken settleToken, JournalStore? journal = null, int step = 0, IPassWrites? writes = null)
    {
        _recovery = new IntentRecovery(ledger, store, migration, worker, target, options.LeaseDuration, page => _inFlight.ContainsKey(page), log, options.Time);
        _journal = journal;
        _step = step;
        _runToken = runToken;
        _settleToken = settleToken;
        _failedIds = new HashSet<string>(failedIds, StringComparer.Ordinal);
        _target = target;
        _pass = pass;
        _gate = gate;
        _ledger = ledger;
        _counts = counts;
        _options = options;
        _worker = worker;
        _recordFailures = recordFailures;
        _log = log;
        _writes = writes;
        _planner = writes?.Planner ?? new DocumentWriter(target, pass, ResilientSender.Ungated, filterUnchecked: true);
        // A copy writes whole documents; a document pass needs what its scan would read.
        _properties = writes is null && pass.ReadProperties(target.PartitionKey.Paths, journal is not null) is { } names
            ? new HashSet<string>(names, StringComparer.Ordinal)
            : null;
    }

    private long _lastDeliveryMs;

    /// <summary>When the processor last delivered a batch to this worker (epoch ms).</summary>
    public long LastDeliveryMs => Interlocked.Read(ref _lastDeliveryMs);

    /// <summary>Whether this worker holds a lease of the pass (from its acquisition to its release).</summary>
    public bool HoldsRanges => !_checkpoints.IsEmpty;

    /// <summary>Set when documents failed beyond -MaxFailures: the run fails.</summary>
    public MigrationException? Failure => Volatile.Read(ref _failure);

    /// <summary>Settles what dead workers left on this pass's ranges.</summary>
    public IntentRecovery Recovery => _recovery;

    /// <summary>Plans documents without writing (what an intent's documents still need).</summary>
    public IPassWriter Planner => _planner;

    public ChangeFeedProcessor Build(string processorName, Container leases, TimeSpan leaseDuration) =>
        _target.Container.GetChangeFeedProcessorBuilderWithManualCheckpoint(processorName, HandleAndCheckpointAsync)
            .WithInstanceName(_worker)
            .WithLeaseContainer(leases)
            .WithStartTime(_options.FeedStartTime ?? DateTime.MinValue.ToUniversalTime())
            .WithMaxItems(_options.BatchSize)
            .WithPollInterval(TimeSpan.FromMilliseconds(Math.Min(1000, leaseDuration.TotalMilliseconds / 6)))
            .WithLeaseConfiguration(
                // Workers joining take ranges over one per interval (the processor's balancing): a
                // short interval spreads a run in seconds whatever the lease duration.
                acquireInterval: TimeSpan.FromMilliseconds(Math.Min(1000, leaseDuration.TotalMilliseconds / 4)),
                expirationInterval: leaseDuration,
                renewInterval: TimeSpan.FromMilliseconds(leaseDuration.TotalMilliseconds / 3))
            .WithLeaseAcquireNotification(token =>
            {
                // No I/O here: the SDK awaits this before it renews the lease, and swallows its errors.
                _acquired[token] = true;
                _checkpoints.AddOrUpdate(token, _ => new CheckpointPacer(_options.Time), (_, old) =>
                {
                    old.Drop();
                    return new CheckpointPacer(_options.Time);
                });
                _log?.Invoke($"Feed range {token} acquired by this worker.");
                return Task.CompletedTask;
            })
            .WithLeaseReleaseNotification(token =>
            {
                _acquired.TryRemove(token, out _);
                if (_checkpoints.TryRemove(token, out var pacer))
                {
                    pacer.Drop();
                }

                _log?.Invoke($"Feed range {token} released by this worker.");
                return Task.CompletedTask;
            })
            .WithErrorNotification((token, error) =>
            {
                var cause = error.InnerException ?? error;
                _log?.Invoke(cause is CosmosException { StatusCode: System.Net.HttpStatusCode.PreconditionFailed }
                    ? $"Feed range {token} went to another worker (the processor balances ranges across workers)."
                    : $"Change feed processor, feed range {token}: {CosmosErrors.FirstLine(cause.Message)}");
                return Task.CompletedTask;
            })
            .Build();

    private bool IsKnownFailure(string id)
    {
        lock (_failedIds)
        {
            return _failedIds.Contains(id);
        }
    }

    /// <summary>A batch handled, then its checkpoint owed to the lease's pacer (see
    /// <see cref="CheckpointPacer"/>): a batch that fails owes none.</summary>
    private async Task HandleAndCheckpointAsync(ChangeFeedProcessorContext context, Stream changes, Func<Task> checkpointAsync, CancellationToken processorToken)
    {
        var pacer = _checkpoints.GetOrAdd(context.LeaseToken, _ => new CheckpointPacer(_options.Time));
        var batch = pacer.Begin();
        await HandleAsync(context, changes, processorToken).ConfigureAwait(false);
        await pacer.FinishedAsync(batch, checkpointAsync).ConfigureAwait(false);
    }

    private async Task HandleAsync(ChangeFeedProcessorContext context, Stream changes, CancellationToken processorToken)
    {
        Interlocked.Exchange(ref _lastDeliveryMs, _options.Time.NowMs());
        // Ids and ETags first: echoes and known failures are never built as documents.
        using var feed = FeedPage.Read(changes);
        var documents = feed.Items.Where(i => i.IsDocument).ToList();
        if (Failure is not null)
        {
            throw Failure;
        }

        var token = context.LeaseToken;
        var range = context.FeedRange?.ToJsonString();
        // Writes go on past a lost lease or Ctrl+C only to finish documents already started.
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(processorToken, _runToken);
        var takenFromOthers = false;
        if (_acquired.TryRemove(token, out _))
        {
            takenFromOthers = await _recovery.TakeOverAsync(token, range, _planner, stopping.Token).ConfigureAwait(false);
            if (_writes?.CountsByVersion == true)
            {
                await InheritCountedVersionAsync(token, range, stopping.Token).ConfigureAwait(false);
            }
        }

        if (documents.Count == 0)
        {
            return;
        }

        var writer = _writers.GetOrAdd(token, _ => _writes?.ForRange(new ResilientSender(_gate.ForRange()), _journal, _step)
            ?? new DocumentWriter(_target, _pass, new ResilientSender(_gate.ForRange()), partialDocuments: _properties is not null, filterUnchecked: true, journal: _journal, step: _step));
        // Documents still at the version this worker wrote are its own writes coming back: no plan.
        var tried = new List<JObject>(documents.Count);
        var echoes = 0;
        foreach (var item in documents)
        {
            if (IsKnownFailure(item.Id))
            {
                continue;
            }

            if (_echoes.TryRemove(item.Id, out var written) && written == item.ETag)
            {
                echoes++;
                continue;
            }

            tried.Add(feed.Load(item, _properties));
        }

        feed.Dispose();
        if (takenFromOthers && _writes is null && tried.Count > 0)
        {
            // Read from the checkpoint before the range was fenced: its previous owner may have
            // changed some of these documents since (and counted them). Those come again later in
            // the feed, as they are now; this batch keeps only the documents still as delivered.
            tried = await StillAsDeliveredAsync(token, context.FeedRange, tried, stopping.Token).ConfigureAwait(false);
        }

        // The batch planned once (with a journal, its before-images written in one record), then
        // what it may change recorded as its intent in the range's ledger, before any write.
        var page = await writer.BeginPageAsync(tried, stopping.Token).ConfigureAwait(false);
        var intended = tried.Where((_, i) => page.MayChange(i)).Select(d => DocumentKey.Of(d, _target.PartitionKey)).ToList();
        var batch = new PageIntent { Page = Interlocked.Increment(ref _batches), Worker = _worker, Documents = intended };
        _inFlight[batch.Page] = true;
        var progress = new BatchProgress();
        try
        {
            await ProcessAsync(token, range, documents.Count, echoes, tried, page, batch, progress, processorToken, stopping.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (batch.Documents.Count > 0)
        {
            // The batch's intent may be written and never closed: close it now with what this
            // worker knows it changed (nothing more when the batch counted itself), or every
            // worker that gets the range next waits three leases for this live worker to close it.
            try
            {
                var unanswered = progress.Unanswered.Keys.Select(i => DocumentKey.Of(tried[i], _target.PartitionKey)).ToList();
                var counted = await _recovery.CloseOwnAsync(token, range, batch, progress.Changed.ToList(), unanswered, _planner, _settleToken).ConfigureAwait(false);
                _counts.Add(counted, 0);
            }
            catch (Exception settleError) when (settleError is MigrationException or OperationCanceledException)
            {
                _log?.Invoke($"Feed range {token}: a batch ended by '{CosmosErrors.FirstLine(ex.Message)}' could not be counted yet ({CosmosErrors.FirstLine(settleError.Message)}); the range's next owner counts it.");
            }

            throw;
        }
        finally
        {
            _inFlight.TryRemove(batch.Page, out _);
        }
    }

    private async Task ProcessAsync(string token, string? range, int delivered, int echoes, List<JObject> tried, PageWrites page, PageIntent batch,
        BatchProgress progress, CancellationToken processorToken, CancellationToken stopping)
    {
        RangeLedgerDocument? ledger = _known.TryGetValue(token, out var cached) ? cached : null;
        if (batch.Documents.Count > 0)
        {
            while (true)
            {
                var other = false;
                string? fencedBy = null;
                ledger = await _ledger.UpdateAsync(token, range, l =>
                {
                    if (!RangeLedger.MayOpen(l, _worker))
                    {
                        // Another worker took the range over; this one has not heard yet.
                        fencedBy = l.Owner;
                        return false;
                    }

                    if (l.Intent is { } open && !(open.Worker == _worker && open.Page == batch.Page))
                    {
                        // Never over another batch's intent: it is settled first.
                        other = true;
                        return false;
                    }

                    l.Intent = batch;
                    return true;
                }, stopping, ledger).ConfigureAwait(false);
                if (fencedBy is not null)
                {
                    // Nothing written: the batch comes again to the range's owner (the processor
                    // releases a lease whose batch fails, if this worker still holds it).
                    _known.TryRemove(token, out _);
                    throw new MigrationException(MigrationErrorKind.LeaseLost, "FeedRangeTakenOver",
                        $"Feed range {token} was taken over by {fencedBy}; this worker leaves its batch there to it.", token);
                }

                if (!other)
                {
                    break;
                }

                await _recovery.SettleAsync(token, range, _planner, stopping).ConfigureAwait(false);
                // The intent may be this worker's own earlier batch on the range, still finishing
                // (the lease was lost and taken back): give it a moment instead of spinning.
                await Task.Delay(TimeSpan.FromMilliseconds(100), _options.Time, stopping).ConfigureAwait(false);
                ledger = null;
            }

            _known[token] = ledger;
        }

        // One lane a feed range, as in a single run: a throttled range slows down alone. A write
        // starts only while this worker still holds the range and was not interrupted.
        var window = new SemaphoreSlim(Math.Max(1, _gate.Limit));
        var writes = new List<Task<WriteOutcome>>(tried.Count);
        var unstarted = 0;
        for (var i = 0; i < tried.Count; i++)
        {
            if (stopping.IsCancellationRequested)
            {
                unstarted = tried.Count - i;
                break;
            }

            try
            {
                await window.WaitAsync(stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                unstarted = tried.Count - i;
                break;
            }

            writes.Add(WriteAsync(page, i, window, progress));
        }

        var outcomes = await Task.WhenAll(writes).ConfigureAwait(false);
        await page.CompleteAsync(_settleToken).ConfigureAwait(false);
        if (_echoes.Count > EchoCap)
        {
            _echoes.Clear();
        }

        foreach (var outcome in outcomes)
        {
            if (outcome.ETagAfter is { } etag)
            {
                _echoes[outcome.Id] = etag;
            }
        }

        var changed = Enumerable.Range(0, outcomes.Length).Where(i => outcomes[i].Result == WriteResult.Changed).ToList();
        var changedIds = changed.Select(i => outcomes[i].Id).ToList();
        // Writes start in feed order and every started one has ended: the versions of
        // tried[0..outcomes.Length) were all written.
        var copied = _writes?.CountsByVersion == true
            ? new CopiedVersions(changed.Select(i => VersionOf(tried[i])).ToList(), tried.Take(outcomes.Length).Select(VersionOf).Max())
            : null;
        await CountAsync(token, range, ledger, batch, changedIds, delivered, echoes, copied).ConfigureAwait(false);

        var failed = outcomes.Where(o => o.Result == WriteResult.Failed).ToList();
        if (failed.Count > 0)
        {
            // Quarantined, not re-delivered: a failed document goes to the failure store and the
            // batch is checkpointed, so a poison document never holds its range's lease.
            await RecordFailuresAsync(failed, tried).ConfigureAwait(false);
        }

        if (unstarted > 0)
        {
            // Not checkpointed: the batch comes again (to the range's new owner, or on resume),
            // and only what is still left to change counts then.
            _log?.Invoke($"Feed range {token}: stopped after {outcomes.Length} of {tried.Count} document(s) of a batch ({(processorToken.IsCancellationRequested ? "the range went to another worker" : "interrupted")}).");
            throw new OperationCanceledException(processorToken.IsCancellationRequested ? processorToken : _runToken);
        }
    }

    private async Task<WriteOutcome> WriteAsync(PageWrites page, int index, SemaphoreSlim window, BatchProgress progress)
    {
        progress.Unanswered[index] = true;
        try
        {
            var outcome = await page.WriteAsync(index, _settleToken).ConfigureAwait(false);
            if (outcome.Result == WriteResult.Changed)
            {
                progress.Changed.Enqueue(outcome.Id);
            }

            progress.Unanswered.TryRemove(index, out _);
            return outcome;
        }
        finally
        {
            window.Release();
        }
    }

    /// <summary>What a batch's writes answered so far: if the batch ends before it counts itself,
    /// it is closed with what this worker knows it changed.</summary>
    private sealed class BatchProgress
    {
        public ConcurrentQueue<string> Changed { get; } = new();

        /// <summary>Writes started without an answer yet (by index in the batch).</summary>
        public ConcurrentDictionary<int, bool> Unanswered { get; } = new();
    }

    /// <summary>The documents of <paramref name="documents"/> still at the version the feed
    /// delivered (one query in the batch's feed range): one changed since comes again later in
    /// the feed, as it is now.</summary>
    private async Task<List<JObject>> StillAsDeliveredAsync(string token, FeedRange? range, List<JObject> documents, CancellationToken cancellationToken)
    {
        var ids = documents.Select(d => (string?)d["id"] ?? "").Distinct(StringComparer.Ordinal).ToList();
        var query = new QueryDefinition("SELECT c.id, c._etag FROM c WHERE ARRAY_CONTAINS(@ids, c.id)").WithParameter("@ids", ids);
        var current = await ResilientSender.Ungated.QueryAllAsync(_target.Container, query,
            new GiveUp("TransientFailuresExhausted", "Reading the current versions of a batch's documents kept failing.", _target.Name), cancellationToken, range).ConfigureAwait(false);
        var versions = new HashSet<string>(current.Select(c => (string?)c["id"] + "\n" + (string?)c["_etag"]), StringComparer.Ordinal);
        var still = documents.Where(d => versions.Contains((string?)d["id"] + "\n" + (string?)d["_etag"])).ToList();
        if (still.Count < documents.Count)
        {
            _log?.Invoke($"Feed range {token}, taken over: {documents.Count - still.Count} of {documents.Count} document(s) of its first batch changed since they were read; they come again as they are now.");
        }

        return still;
    }

    /// <summary>Counts the batch and removes its intent in one ledger write. If another worker took
    /// the intent over meanwhile (it judged this one dead), it counted some of these documents
    /// already: only the others are counted here.</summary>
    private async Task CountAsync(string token, string? range, RangeLedgerDocument? known, PageIntent batch, List<string> changedIds, int scanned, int echoes, CopiedVersions? copied)
    {
        long counted = changedIds.Count;
        if (batch.Documents.Count == 0 && changedIds.Count == 0)
        {
            // Nothing to change (often this run's own writes coming back through the feed): no
            // ledger write; what was read goes to this worker's record.
            _counts.Add(0, scanned, echoes);
            return;
        }

        _known[token] = await _ledger.UpdateAsync(token, range, l =>
        {
            if (copied is not null && _inheritedLsn.TryGetValue(token, out var inherited) && (l.CountedLsn is null || l.CountedLsn < inherited))
            {
                l.CountedLsn = inherited;
            }

            if (RangeLedger.Close(l, _worker, batch, changedIds, scanned - echoes, copied) is not { } added)
            {
                counted = 0;
                return false;
            }

            counted = added;
            if (counted < changedIds.Count)
            {
                _log?.Invoke($"Feed range {token}: another worker counted {changedIds.Count - counted} document(s) of this worker's batch while it was stalled; {counted} more counted now.");
            }

            return true;
        }, _settleToken, known).ConfigureAwait(false);
        _counts.Add(counted, scanned, echoes);
    }

    private static long? VersionOf(JObject document) => document["_lsn"] is JValue { Type: JTokenType.Integer } lsn ? (long)lsn : null;

    /// <summary>A split's child carries on from its parent's checkpoint, so the parent's last batch
    /// may come again on the child: the versions the parent counted are not counted again there.</summary>
    private async Task InheritCountedVersionAsync(string token, string? range, CancellationToken cancellationToken)
    {
        var inherited = (await _ledger.ListAsync(cancellationToken).ConfigureAwait(false))
            .Where(l => l.LeaseToken != token && l.CountedLsn is not null && RangeLedger.Overlap(l.Range, range))
            .Select(l => l.CountedLsn!.Value)
            .DefaultIfEmpty(long.MinValue)
            .Max();
        if (inherited != long.MinValue)
        {
            _inheritedLsn[token] = inherited;
        }
    }

    private async Task RecordFailuresAsync(List<WriteOutcome> failed, List<JObject> documents)
    {
        lock (_failedIds)
        {
            // Bounded, as a single run's: past it, a document met again is tried again and counted once by the store.
            failed.ForEach(f =>
            {
                if (_failedIds.Count < PageLedger.KnownFailureCap)
                {
                    _failedIds.Add(f.Id);
                }
            });
        }

        if (await _recordFailures(failed, documents, _settleToken).ConfigureAwait(false))
        {
            var first = failed[0];
            Interlocked.CompareExchange(ref _failure, RunEnding.TooManyFailures(first, failed.Count, _options.MaxFailures, "batch"), null);

            // Not checkpointed: the batch comes again when the migration is resumed.
            throw Failure!;
        }
    }
}

/// <summary>The few run options a distributed worker's parts need.</summary>
internal sealed record RunOptionsView(TimeSpan LeaseDuration, int FailureListCap, int MaxFailures, int BatchSize, TimeProvider Time, DateTime? FeedStartTime = null);
