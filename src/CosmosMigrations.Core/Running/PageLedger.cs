using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
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
    private readonly CancellationToken _cancellationToken;
    private long _changedThisScan;
    private int _pages;
    private int _pagesOfDocuments;

    public PageLedger(LeasedCheckpoint checkpoint, RunOptions options, StopSignal stop, ProgressCounters counters, Func<double> requestCharge,
        Action report, Func<int, Task>? afterCheckpoint, Action<string>? log, CancellationToken cancellationToken)
    {
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
    }

    /// <summary>Pages checkpointed in this run.</summary>
    public int Pages => Volatile.Read(ref _pages);

    /// <summary>Pages with documents checkpointed in this run: what -MaxBatches counts (an empty
    /// page, such as a range's empty last page, is no batch of work).</summary>
    public int PagesOfDocuments => Volatile.Read(ref _pagesOfDocuments);

    /// <summary>Documents changed since the current scan of a pass began (catch-up scans go on while it is not 0).</summary>
    public long ChangedThisScan => Interlocked.Read(ref _changedThisScan);

    public void StartScan() => Interlocked.Exchange(ref _changedThisScan, 0);

    /// <summary>Already recorded as failed in this migration: not tried (or counted) again.</summary>
    public bool IsKnownFailure(string id)
    {
        lock (_failedIds)
        {
            return _failedIds.Contains(id);
        }
    }

    /// <summary>Every write of <paramref name="page"/> is done: count, then checkpoint.</summary>
    public async Task CompleteAsync(RangeCursor range, Page page, IReadOnlyList<WriteOutcome> outcomes)
    {
        var changed = outcomes.LongCount(o => o.Result == WriteResult.Changed);
        var failed = outcomes.Where(o => o.Result == WriteResult.Failed).ToList();
        var conflicts = outcomes.Where(o => o.Result == WriteResult.Conflict).ToList();
        Interlocked.Add(ref _changedThisScan, changed);
        _counters.AddScanned(page.Documents.Count);
        MigrationException? fatal = null;
        await _checkpoint.UpdateAsync(d =>
        {
            d.Processed += changed;
            d.RequestCharge = _requestCharge();
            if (conflicts.Count > 0)
            {
                RecordConflicts(d, conflicts.Select(c => c.Id));
            }

            foreach (var failure in failed)
            {
                d.FailureCount = (d.FailureCount ?? 0) + 1;
                lock (_failedIds)
                {
                    _failedIds.Add(failure.Id);
                }

                d.Failures ??= new List<DocumentFailure>();
                if (d.Failures.Count < _options.FailureListCap)
                {
                    d.Failures.Add(new DocumentFailure { Id = failure.Id, PartitionKey = failure.PartitionKey, Error = failure.Error ?? "" });
                }
            }

            if (failed.Count > 0 && d.FailureCount > _options.MaxFailures)
            {
                var first = failed[0];
                fatal = new MigrationException(MigrationErrorKind.DocumentFailed, "DocumentMigrationFailed",
                    $"Document '{first.Id}' (partition key {first.PartitionKey}) could not be migrated: {first.Error}." +
                    (failed.Count > 1 ? $" {failed.Count - 1} more document(s) of the same page failed too." : "") +
                    " The checkpoint stays before this page.",
                    first.Id,
                    _options.MaxFailures == 0
                        ? "Fix the document (or the migration), then start again: it resumes from the checkpoint. To record such documents and go on, pass -MaxFailures N."
                        : $"More than {_options.MaxFailures} document(s) failed (-MaxFailures); see the failures in Get-MigrationStatus, fix them, and start again.");
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
    /// before the failure, but these changes are counted all the same, so that `processed` stays
    /// exact. Goes through even while the run is being cancelled (bounded).</summary>
    public async Task CountWithoutCheckpointAsync(IReadOnlyList<WriteOutcome> outcomes)
    {
        var changed = outcomes.LongCount(o => o.Result == WriteResult.Changed);
        if (changed == 0)
        {
            return;
        }

        try
        {
            await _checkpoint.UpdateBoundedAsync(d => d.Processed += changed).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            _log?.Invoke($"Could not record {changed} change(s) of an unfinished page: {CosmosErrors.FirstLine(ex.Message)}");
        }
    }
}
