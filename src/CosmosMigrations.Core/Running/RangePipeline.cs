using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Requests;
using CosmosMigrations.Scanning;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Running;

/// <summary>Pages through one feed range with two pages in flight: while page N's last writes
/// finish and its checkpoint is written, page N+1 is already being written and page N+2 read.
/// Checkpoints still land strictly in page order, each only after every write of its page
/// finished, so a crash resumes before any unfinished page.</summary>
internal sealed class RangePipeline
{
    private readonly TargetContainer _source;
    private readonly IItemWriter _writer;
    private readonly QueryDefinition _query;
    private readonly int _pageSize;
    private readonly ResilientSender _sender;
    private readonly PageLedger _ledger;
    private readonly StopSignal _stop;
    private readonly CancellationToken _cancellationToken;
    private readonly CancellationToken _settleToken;
    private readonly WriteWindow _window;

    /// <summary>Pages of <paramref name="source"/> (the target, or an undo's journal) go to <paramref name="writer"/>,
    /// whose writes start through the range's <paramref name="window"/>. <paramref name="cancellationToken"/>
    /// (Ctrl+C) stops reading and starting pages; <paramref name="settleToken"/>, which outlives it by a
    /// grace period, is what writes and checkpoints of pages already started run under.</summary>
    public RangePipeline(TargetContainer source, IItemWriter writer, QueryDefinition query, int pageSize, ResilientSender sender,
        WriteWindow window, PageLedger ledger, StopSignal stop, CancellationToken cancellationToken, CancellationToken settleToken)
    {
        _settleToken = settleToken;
        _source = source;
        _writer = writer;
        _query = query;
        _pageSize = pageSize;
        _sender = sender;
        _ledger = ledger;
        _stop = stop;
        _cancellationToken = cancellationToken;
        _window = window;
    }

    public async Task ScanAsync(RangeCursor range)
    {
        using var reader = new PageReader(_source.Container, FeedRanges.Deserialize(range.Range), _query, range.Continuation, _pageSize, _sender);
        using var scanStop = CancellationTokenSource.CreateLinkedTokenSource(_cancellationToken);
        var page = await reader.ReadAsync(_cancellationToken).ConfigureAwait(false);
        Task? previous = null;
        Task<Page?> next = Task.FromResult<Page?>(null);
        try
        {
            // An empty page (an empty feed range, or a range's empty last page) is no batch of work:
            // it does not count toward -MaxBatches, so N ranges slice like one. After Ctrl+C no page
            // starts; the pages already writing finish and are counted (the settle token).
            while (page is not null && !_cancellationToken.IsCancellationRequested && (page.Documents.Count == 0 || _stop.MayStartPage()))
            {
                // Read ahead: the next page travels while this page's writes run.
                next = reader.Finished ? Task.FromResult<Page?>(null) : reader.ReadAsync(scanStop.Token);
                var current = page;
                var writes = WriteAllAsync(range, current.Documents);
                var before = previous;
                previous = CheckpointAfterAsync(before, writes, range, current);
                if (before is not null)
                {
                    await before.ConfigureAwait(false);
                }

                page = await next.ConfigureAwait(false);
            }

            if (previous is not null)
            {
                await previous.ConfigureAwait(false);
            }

            _cancellationToken.ThrowIfCancellationRequested();
            if (page is not null || (_stop.Reason is not null && !range.Done))
            {
                // Stopped before the end of the range: resumable from the last checkpoint.
                throw new StopRunException(_stop.Reason ?? "MaxBatches");
            }
        }
        catch
        {
            scanStop.Cancel();
            // Let what is in flight settle (its writes are idempotent; its checkpoint is not taken
            // past a failure), so nothing outlives the run.
            foreach (var pending in new Task?[] { previous, next })
            {
                try
                {
                    if (pending is not null)
                    {
                        await pending.ConfigureAwait(false);
                    }
                }
                catch (Exception)
                {
                }
            }

            throw;
        }
    }

    /// <summary>A page's writes and the intent recorded before them (null when it changes nothing).</summary>
    private sealed record PageOutcomes(WriteOutcome[] Outcomes, long? Intent);

    /// <summary>The page's writes, started through the range's <see cref="WriteWindow"/> once the
    /// writer prepared the page (planned it; a journaled pass writes the page's before-images) and
    /// the page's intent is recorded (what it may change, see <see cref="ChangeIntents"/>). Once a
    /// page has begun, all its writes start, even after Ctrl+C: a page is counted whole (the settle
    /// token ends writes only when they outlast the grace period).</summary>
    private async Task<PageOutcomes> WriteAllAsync(RangeCursor range, IReadOnlyList<JObject> documents)
    {
        var writes = new Task<WriteOutcome>[documents.Count];
        var tried = documents.Where(d => !_ledger.IsKnownFailure((string?)d["id"] ?? "")).ToList();
        var page = await _writer.BeginPageAsync(tried, _settleToken).ConfigureAwait(false);
        long? intent = null;
        if (_writer is DocumentWriter)
        {
            var intended = tried.Where((_, i) => page.MayChange(i)).Select(d => DocumentKey.Of(d, _source.PartitionKey)).ToList();
            if (intended.Count > 0)
            {
                intent = await _ledger.OpenIntentAsync(range, intended).ConfigureAwait(false);
            }
        }

        var started = 0;
        try
        {
            for (var next = 0; started < writes.Length; started++)
            {
                var document = documents[started];
                if (next < tried.Count && ReferenceEquals(tried[next], document))
                {
                    var index = next++;
                    writes[started] = await _window.StartAsync(() => page.WriteAsync(index, _settleToken), _settleToken).ConfigureAwait(false);
                }
                else
                {
                    writes[started] = Task.FromResult(_writer.Skip(document));
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Let the started writes settle before the page fails, so nothing outlives the run
            // (its intent stays: the run's end counts what it changed).
            try
            {
                await Task.WhenAll(writes.Take(started)).ConfigureAwait(false);
            }
            catch (Exception)
            {
            }

            throw;
        }

        var outcomes = await Task.WhenAll(writes).ConfigureAwait(false);
        await page.CompleteAsync(_settleToken).ConfigureAwait(false);
        return new PageOutcomes(outcomes, intent);
    }

    private async Task CheckpointAfterAsync(Task? previous, Task<PageOutcomes> writes, RangeCursor range, Page page)
    {
        var (outcomes, intent) = await writes.ConfigureAwait(false);
        if (previous is not null)
        {
            try
            {
                // In order: page N+1's checkpoint never lands before page N's.
                await previous.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not LeaseLostException)
            {
                // Page N failed, so the checkpoint stays before it; this page's writes are done all
                // the same, and counted (its intent closed), so that `processed` stays exact.
                await _ledger.CountWithoutCheckpointAsync(range, outcomes, intent).ConfigureAwait(false);
                throw;
            }
        }

        await _ledger.CompleteAsync(range, page, outcomes, intent).ConfigureAwait(false);
    }
}
