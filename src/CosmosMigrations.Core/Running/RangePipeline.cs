using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Operations;
using CosmosMigrations.Requests;
using CosmosMigrations.Scanning;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

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
            // starts; the pages already writing finish and are counted (see SettleToken).
            while (page is not null && !_cancellationToken.IsCancellationRequested && (page.Documents.Count == 0 || _stop.MayStartPage()))
            {
                // Read ahead: the next page travels while this page's writes run.
                next = reader.Finished ? Task.FromResult<Page?>(null) : reader.ReadAsync(scanStop.Token);
                var current = page;
                var writes = WritePageAsync(range, current.Documents);
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
    private sealed record PageWrites(WriteOutcome[] Outcomes, long? Intent);

    /// <summary>Plans the page (a document writer's pages), records what it is about to change,
    /// then starts each write through the range's <see cref="WriteWindow"/> with its planned edit.
    /// Every write of a page starts once the page has begun, even after Ctrl+C: a page is counted
    /// whole (the settle token ends writes only when they outlast the grace).</summary>
    private async Task<PageWrites> WritePageAsync(RangeCursor range, IReadOnlyList<JObject> documents)
    {
        var edits = new DocumentEdit?[documents.Count];
        long? intent = null;
        if (_writer is DocumentWriter planner)
        {
            var intended = new List<JObject>();
            for (var i = 0; i < documents.Count; i++)
            {
                if (_ledger.IsKnownFailure((string?)documents[i]["id"] ?? ""))
                {
                    continue;
                }

                try
                {
                    edits[i] = await planner.PlanAsync(documents[i], _settleToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is DocumentOperationException or DocumentConflictException)
                {
                    // The write plans it again and reports the failure.
                }

                if (edits[i] is { Changed: true })
                {
                    intended.Add(ChangeIntents.KeyOf(documents[i], _source.PartitionKey));
                }
            }

            if (intended.Count > 0)
            {
                intent = await _ledger.OpenIntentAsync(range, intended).ConfigureAwait(false);
            }
        }

        var writes = new Task<WriteOutcome>[documents.Count];
        var started = 0;
        try
        {
            for (; started < writes.Length; started++)
            {
                var document = documents[started];
                var edit = edits[started];
                writes[started] = await _window.StartAsync(() => WriteOneAsync(document, edit), _settleToken).ConfigureAwait(false);
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

        return new PageWrites(await Task.WhenAll(writes).ConfigureAwait(false), intent);
    }

    private Task<WriteOutcome> WriteOneAsync(JObject document, DocumentEdit? edit) =>
        _ledger.IsKnownFailure((string?)document["id"] ?? "")
            ? Task.FromResult(_writer.Skip(document))
            : _writer is DocumentWriter writer ? writer.WriteAsync(document, edit, _settleToken) : _writer.WriteAsync(document, _settleToken);

    private async Task CheckpointAfterAsync(Task? previous, Task<PageWrites> writes, RangeCursor range, Page page)
    {
        var done = await writes.ConfigureAwait(false);
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
                await _ledger.CountWithoutCheckpointAsync(range, done.Outcomes, done.Intent).ConfigureAwait(false);
                throw;
            }
        }

        await _ledger.CompleteAsync(range, page, done.Outcomes, done.Intent).ConfigureAwait(false);
    }
}
