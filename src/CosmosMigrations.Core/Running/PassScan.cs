using CosmosMigrations.Connection;
using CosmosMigrations.Journal;
using CosmosMigrations.Requests;
using CosmosMigrations.Scanning;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Running;

/// <summary>Runs one scan step (a document pass, or an undo's restore pass over the journal): records
/// the scanned container's feed ranges in the cursor (once per step, so a resumed run continues each
/// range from its own continuation; a journaled pass also notes itself in the journal section, before
/// its first before-image), estimates the total, scans the ranges side by side, then runs catch-up
/// scans while a scan still changed something: live applications may write documents in the old
/// shape behind the cursor.</summary>
internal sealed class PassScan
{
    private readonly TargetContainer _target;
    private readonly RunOptions _options;
    private readonly ResilientSender _sender;
    private readonly LeasedCheckpoint _checkpoint;
    private readonly PageLedger _ledger;
    private readonly StopSignal _stop;
    private readonly ProgressCounters _counters;
    private readonly Action<string>? _log;
    private readonly JournalStore? _journal;
    private readonly CancellationToken _cancellationToken;
    private readonly CancellationToken _settleToken;

    /// <summary><paramref name="cancellationToken"/> stops the scan (Ctrl+C); <paramref name="settleToken"/>,
    /// which outlives it by a grace period, lets pages already writing finish and be counted.</summary>
    public PassScan(TargetContainer target, RunOptions options, ResilientSender sender, LeasedCheckpoint checkpoint, PageLedger ledger,
        StopSignal stop, ProgressCounters counters, Action<string>? log, JournalStore? journal, CancellationToken cancellationToken, CancellationToken settleToken)
    {
        _settleToken = settleToken;
        _journal = journal;
        _target = target;
        _options = options;
        _sender = sender;
        _checkpoint = checkpoint;
        _ledger = ledger;
        _stop = stop;
        _counters = counters;
        _log = log;
        _cancellationToken = cancellationToken;
    }

    public async Task RunAsync(ScanStep pass, int step)
    {
        var plan = pass.Plan(new ScanContext(_target, _sender, step, _journal));
        if (_checkpoint.Document.Cursor!.Ranges is null)
        {
            var ranges = await FeedRanges.GetAsync(plan.Source, _cancellationToken).ConfigureAwait(false);
            await _checkpoint.UpdateAsync(d =>
            {
                d.Cursor = new MigrationCursor
                {
                    Step = step,
                    CatchUpScans = 0,
                    Ranges = ranges.Select(r => new RangeCursor { Range = FeedRanges.Serialize(r) }).ToList(),
                };
                if (plan.Journaled)
                {
                    MigrationLifecycle.NoteJournaledPass(d, step, Clock.NowMs(), plan.UndoRecomputes);
                }
            }, _cancellationToken).ConfigureAwait(false);
        }

        if (plan.UndoRecomputes)
        {
            _log?.Invoke("Before-images: none needed (fields added with a constant where there were none): the journal keeps each page's ids and partition keys, and the undo recomputes the rest.");
        }

        var cursor = _checkpoint.Document.Cursor!;
        // Pages an earlier run began and never counted: count what they changed before scanning.
        await SettleIntentsAsync(pass, step, _cancellationToken).ConfigureAwait(false);
        var estimate = _options.NoEstimate ? null
            : await DocumentCount.EstimateAsync(plan.Source, pass.CountText, pass.ScanCondition, _sender.Gate!, _log, _cancellationToken).ConfigureAwait(false);
        _counters.Estimate = estimate;
        if (estimate is not null)
        {
            await _checkpoint.UpdateAsync(d => d.EstimatedTotal = d.Scanned + estimate, _cancellationToken).ConfigureAwait(false);
        }

        var query = new QueryDefinition(plan.QueryText);
        // One lane a range: a range that is throttled (a hot physical partition) slows down alone.
        // Writes start within the run's limit and their lane's, so none waits inside the gate.
        var runGate = _sender.Gate!;
        var writes = new WriteWindow(() => runGate.Limit);
        var pipelines = cursor.Ranges!.ToDictionary(r => r, _ =>
        {
            var laneGate = runGate.ForRange();
            var lane = new ResilientSender(laneGate);
            var lanePlan = pass.Plan(new ScanContext(_target, lane, step, _journal));
            return new RangePipeline(lanePlan.Source, lanePlan.Writer, query, _options.BatchSize, lane, writes.ForRange(() => laneGate.Limit),
                _ledger, _stop, _cancellationToken, _settleToken);
        });
        while (true)
        {
            _ledger.StartScan();
            var pending = cursor.Ranges!.Where(r => !r.Done).ToList();
            // Feed ranges are independent: scan them side by side (a few at a time); writes share
            // the gate's concurrency and RU budget.
            using var ranges = new SemaphoreSlim(Math.Max(1, Math.Min(4, _options.MaxDegreeOfParallelism / 4)));
            await Task.WhenAll(pending.Select(async r =>
            {
                await ranges.WaitAsync(_cancellationToken).ConfigureAwait(false);
                try
                {
                    await pipelines[r].ScanAsync(r).ConfigureAwait(false);
                }
                finally
                {
                    ranges.Release();
                }
            })).ConfigureAwait(false);

            if (!pass.CanCatchUp || _ledger.ChangedThisScan == 0 || (cursor.CatchUpScans ?? 0) >= _options.MaxCatchUpScans)
            {
                return;
            }

            _stop.ThrowIfStopped();
            if (_journal is not null)
            {
                // A catch-up scan changes documents written behind the cursor: some had an image already.
                _journal.LaterImages = true;
            }

            _log?.Invoke($"The last scan changed {_ledger.ChangedThisScan} document(s); catch-up scan {(cursor.CatchUpScans ?? 0) + 1} looks for documents written meanwhile.");
            await _checkpoint.UpdateAsync(d =>
            {
                d.Cursor!.CatchUpScans = (d.Cursor.CatchUpScans ?? 0) + 1;
                foreach (var r in d.Cursor.Ranges!)
                {
                    r.Continuation = null;
                    r.Done = false;
                }
            }, _cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Counts the pages of <paramref name="pass"/> that began writing and were never counted
    /// (their intents in the cursor, see <see cref="ChangeIntents"/>), and removes those intents, in
    /// one checkpoint. At a run's start they are what a run that died left; at its end, pages whose
    /// writes were cut short. Returns the documents counted.</summary>
    public async Task<long> SettleIntentsAsync(ScanStep pass, int step, CancellationToken cancellationToken)
    {
        var open = _checkpoint.Document.Cursor?.Ranges?.Where(r => r.Intents is { Count: > 0 }).ToList();
        if (open is null || open.Count == 0 || _checkpoint.Document.Cursor!.Step != step)
        {
            return 0;
        }

        var settled = new List<(RangeCursor Range, long Page)>();
        long changed = 0;
        if (pass.Plan(new ScanContext(_target, _sender, step, null)).Writer is DocumentWriter planner)
        {
            foreach (var range in open)
            {
                foreach (var intent in range.Intents!.ToList())
                {
                    changed += (await ChangeIntents.ChangedAsync(intent.Documents, _target, planner, _sender, cancellationToken).ConfigureAwait(false)).Count;
                    settled.Add((range, intent.Page));
                }
            }
        }

        await _checkpoint.UpdateAsync(d =>
        {
            d.Processed += changed;
            foreach (var (range, page) in settled)
            {
                range.Intents?.RemoveAll(i => i.Page == page);
                if (range.Intents is { Count: 0 })
                {
                    range.Intents = null;
                }
            }
        }, cancellationToken).ConfigureAwait(false);
        _log?.Invoke($"{settled.Count} page(s) had begun writing without being counted (a run stopped mid-page): {changed} document(s) they changed are counted now.");
        return changed;
    }
}
