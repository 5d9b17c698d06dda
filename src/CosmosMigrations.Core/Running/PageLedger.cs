using CosmosMigrations.Errors;
using CosmosMigrations.Scanning;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Running;

/// <summary>Accounts for finished pages: counts what changed, records failed documents (skipped
/// afterwards) and documents an undo left alone (conflicts, with a few ids), fails the run past
/// -MaxFailures, and only then moves the range's checkpoint past the page; after each checkpoint it
/// decides whether the run should stop.</summary>
internal sealed class PageLedger
{
    /// <summary>At most this many conflicting ids are kept in the tracking document.</summary>
    public const int ConflictListCap = 20;

    private readonly LeasedCheckpoint _checkpoint;
    private readonly RunOptions _options;
    private readonly StopSignal _stop;
    private readonly ProgressCounters _counters;
    private readonly Func<double> _requestCharge;
    private readonly Action _report;
    private readonly Func<int, Task>? _afterCheckpoint;
    private readonly Action<string>? _log;
    private readonly HashSet<string> _failedIds = new(StringComparer.Ordinal);

    /// <summary>Ids of documents failed in this run that later scans skip: bounded, so that memory
    /// stays flat with millions of failures (past it, a document met again is tried again, and the
    /// failure store counts it once).</summary>
    public const int KnownFailureCap = 100_000;

    private readonly Failures.FailureStore? _failures;
    private readonly string _migration;
    private int _step;
    private readonly CancellationToken _cancellationToken;
    private long _changedThisScan;
    private int _pages;
    private long _intents;
    private int _pagesOfDocuments;

    public PageLedger(LeasedCheckpoint checkpoint, RunOptions options, StopSignal stop, ProgressCounters counters, Func<double> requestCharge,
        Action report, Func<int, Task>? afterCheckpoint, Action<string>? log, CancellationToken cancellationToken, Failures.FailureStore? failures = null)
    {
        _failures = failures;
        _migration = checkpoint.Document.Name;
        _checkpoint = checkpoint;
        _options = options;
        _stop = stop;
        _counters = counters;
        _requestCharge = requestCharge;
        _report = report;
        _afterCheckpoint = afterCheckpoint;
        _log = log;
        _cancellationToken = cancellationToken;
        foreach (var failure in checkpoint.Document.Failures ?? new List<DocumentFailure>())
        {
            _failedIds.Add(failure.Id);
        }

        // Intent numbers stay unique beside those an earlier run left (settled before any page starts).
        _intents = checkpoint.Document.Cursor?.Ranges?.SelectMany(r => r.Intents ?? new List<PageIntent>()).Select(i => i.Page).DefaultIfEmpty(0).Max() ?? 0;
    }

    /// <summary>Pages checkpointed in this run.</summary>
    public int Pages => Volatile.Read(ref _pages);

    /// <summary>Pages with documents checkpointed in this run: what -MaxBatches counts (an empty
    /// page, such as a range's empty last page, is no batch of work).</summary>
    public int PagesOfDocuments => Volatile.Read(ref _pagesOfDocuments);

    /// <summary>Documents changed since the current scan of a pass began (catch-up scans go on while it is not 0).</summary>
    public long ChangedThisScan => Interlocked.Read(ref _changedThisScan);

    public void StartScan() => Interlocked.Exchange(ref _changedThisScan, 0);

    /// <summary>The step whose pages are being accounted for (what failure entries name).</summary>
    public int Step
    {
        get => Volatile.Read(ref _step);
        set => Volatile.Write(ref _step, value);
    }

    /// <summary>Already recorded as failed in this migration: not tried (or counted) again.</summary>
    public bool IsKnownFailure(string id)
    {
        lock (_failedIds)
        {
            return _failedIds.Contains(id);
        }
    }

    /// <summary>Records, before a page's first write, the documents it is about to change (see
    /// <see cref="ChangeIntents"/>); returns the intent's page number, which the page's count
    /// removes. Durable when this returns.</summary>
    public async Task<long> OpenIntentAsync(RangeCursor range, List<JObject> documents)
    {
        var number = Interlocked.Increment(ref _intents);
        await _checkpoint.UpdateAsync(d =>
        {
            range.Intents ??= new List<PageIntent>();
            range.Intents.Add(new PageIntent { Page = number, Documents = documents });
        }, _cancellationToken).ConfigureAwait(false);
        return number;
    }

    private static void CloseIntent(RangeCursor range, long? intent)
    {
        if (intent is { } number && range.Intents is { } intents)
        {
            intents.RemoveAll(i => i.Page == number);
            if (intents.Count == 0)
            {
                range.Intents = null;
            }
        }
    }

    /// <summary>Every write of <paramref name="page"/> is done: count, then checkpoint, in one write
    /// that also removes the page's intent.</summary>
    public async Task CompleteAsync(RangeCursor range, Page page, IReadOnlyList<WriteOutcome> outcomes, long? intent)
    {
        var changed = outcomes.LongCount(o => o.Result == WriteResult.Changed);
        var failed = outcomes.Where(o => o.Result == WriteResult.Failed).ToList();
        var conflicts = outcomes.Where(o => o.Result == WriteResult.Conflict).ToList();
        // Each failed document's entry is durable before the checkpoint moves past its page.
        var recorded = _failures is null || failed.Count == 0 ? null : await RecordAsync(page, failed).ConfigureAwait(false);
        Interlocked.Add(ref _changedThisScan, changed);
        _counters.AddScanned(page.Documents.Count);
        MigrationException? fatal = null;
        await _checkpoint.UpdateAsync(d =>
        {
            d.Processed += changed;
            CloseIntent(range, intent);
            d.RequestCharge = _requestCharge();
            if (conflicts.Count > 0)
            {
                RecordConflicts(d, conflicts.Select(c => c.Id));
            }

            for (var i = 0; i < failed.Count; i++)
            {
                var failure = failed[i];
                lock (_failedIds)
                {
                    if (_failedIds.Count < KnownFailureCap)
                    {
                        _failedIds.Add(failure.Id);
                    }
                }

                if (recorded is not null && !Count(d, failure, recorded[i]))
                {
                    continue;
                }

                d.FailureCount = (d.FailureCount ?? 0) + 1;
                d.Failures ??= new List<DocumentFailure>();
                if (d.Failures.Count < _options.FailureListCap)
                {
                    d.Failures.Add(new DocumentFailure { Id = failure.Id, PartitionKey = failure.PartitionKey, Error = failure.Error ?? "" });
                }
            }

            if (failed.Count > 0 && RunEnding.PastThresholdsMidRun(_migration, failed, d.FailureCount ?? 0, d.Scanned + page.Documents.Count, _options, "page") is { } past)
            {
                fatal = past;
                return;
            }

            // Only now, with every write of the page done, does the checkpoint move past it.
            d.Scanned += page.Documents.Count;
            d.DocumentsPerSecond = _counters.DocumentsPerSecond;
            range.Continuation = page.ContinuationAfter;
            range.Done = page.ContinuationAfter is null;
        }, _cancellationToken).ConfigureAwait(false);

        if (fatal is not null)
        {
            throw fatal;
        }

        var pages = Interlocked.Increment(ref _pages);
        if (page.Documents.Count > 0)
        {
            Interlocked.Increment(ref _pagesOfDocuments);
        }

        _report();
        if (_afterCheckpoint is { } hook)
        {
            await hook(pages).ConfigureAwait(false);
        }

        _stop.AfterCheckpoint(_checkpoint.Document.StopRequested == true);
    }

    /// <summary>Writes the store's entries of a page's failed documents (side by side); returns what
    /// each write found, in the order of <paramref name="failed"/>.</summary>
    private async Task<Failures.RecordedFailure[]> RecordAsync(Page page, List<WriteOutcome> failed)
    {
        var documents = new Dictionary<string, JObject>(StringComparer.Ordinal);
        foreach (var document in page.Documents)
        {
            documents[(string?)document["id"] ?? ""] = document;
        }

        var epoch = _checkpoint.Document.FailureEpoch ?? 0;
        var ttl = _checkpoint.Document.Journal?.Ttl;
        var step = Step;
        return await Task.WhenAll(failed.Select(f =>
        {
            var document = documents.TryGetValue(f.Id, out var found) ? found : new JObject { ["id"] = f.Id };
            var entry = Failures.FailureEntry.For(_migration, step, document, _partitionKey!, f.Class ?? FailureClass.Transform, f.Error ?? "", epoch, Clock.NowMs(), ttl);
            entry.Attempts = f.Attempts;
            return _failures!.RecordAsync(entry, _cancellationToken);
        })).ConfigureAwait(false);
    }

    /// <summary>Counts one recorded failure by class: a document new to the store counts (returns
    /// true); one already there only moves between classes when its class changed.</summary>
    public static bool Count(TrackingDocument document, WriteOutcome failure, Failures.RecordedFailure recorded)
    {
        var failureClass = failure.Class ?? FailureClass.Transform;
        document.Failed ??= new FailureCounts();
        if (recorded.New)
        {
            document.Failed.Add(failureClass, 1);
            return true;
        }

        if (recorded.PreviousClass is { } previous && previous != failureClass)
        {
            document.Failed.Add(previous, -1);
            document.Failed.Add(failureClass, 1);
        }

        return false;
    }

    private Documents.PartitionKeyReader? _partitionKey;

    /// <summary>The target's partition key (failure entries keep each document's key values).</summary>
    public Documents.PartitionKeyReader? PartitionKey
    {
        get => _partitionKey;
        set => _partitionKey = value;
    }

    /// <summary>Counts documents left alone because they changed since the migration (an undo).</summary>
    public static void RecordConflicts(TrackingDocument document, IEnumerable<string> ids)
    {
        foreach (var id in ids)
        {
            document.Conflicts = (document.Conflicts ?? 0) + 1;
            document.ConflictIds ??= new List<string>();
            if (document.ConflictIds.Count < ConflictListCap && !document.ConflictIds.Contains(id))
            {
                document.ConflictIds.Add(id);
            }
        }
    }

    /// <summary>A page finished its writes after an earlier page failed: the checkpoint stays
    /// before the failure, but these changes are counted all the same, with the removal of the
    /// page's intent, so that `processed` stays exact (the page read again later finds them done).
    /// Goes through even while the run is being cancelled (bounded).</summary>
    public async Task CountWithoutCheckpointAsync(RangeCursor range, IReadOnlyList<WriteOutcome> outcomes, long? intent)
    {
        var changed = outcomes.LongCount(o => o.Result == WriteResult.Changed);
        if (changed == 0 && intent is null)
        {
            return;
        }

        try
        {
            await _checkpoint.UpdateBoundedAsync(d =>
            {
                d.Processed += changed;
                CloseIntent(range, intent);
            }).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            _log?.Invoke($"Could not record {changed} change(s) of an unfinished page: {CosmosErrors.FirstLine(ex.Message)}");
        }
    }
}
