using System.Diagnostics.CodeAnalysis;
using CosmosMigrations.Errors;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Distributed;

internal sealed partial class DistributedRun
{
    /// <summary>How often an idle worker looks whether its pass is caught up (the estimator: one
    /// query of the leases and one change feed read a range).</summary>
    private static readonly TimeSpan CatchUpTick = TimeSpan.FromMilliseconds(250);

    /// <summary>How often a worker that holds no range reads the tracking document between beats,
    /// to return once the pass has moved on.</summary>
    private static readonly TimeSpan RangelessLook = TimeSpan.FromSeconds(1);

    /// <summary>How long a batch under way may go on after Ctrl+C to finish and be counted.</summary>
    private static readonly TimeSpan SettleGrace = TimeSpan.FromSeconds(20);

    /// <summary>Runs this worker's share of a document pass until the pass is caught up (then moves
    /// the cursor on), the run ends or moves on, or this worker leaves (the reason). Every beat,
    /// this worker's record gets its heartbeat and counts, and the migration's totals the sum of the
    /// ranges' ledgers: one patch a beat, whatever the batches.</summary>
    private async Task<string?> RunPassAsync(DocumentPass pass, int step, TrackingDocument document)
    {
        _counters.Step = step;
        _counters.Activity = $"{pass.Describe()} (distributed)";
        _log?.Invoke($"Step {step + 1} of {_definition.Steps.Count}: {pass.Describe()}, shared through the change feed.");
        var generation = document.Generation ?? 1;
        var processorName = ProcessorName(_definition.Name, generation, step);
        var ledger = new RangeLedger(_leases, _definition.Name, generation, step);
        var failedIds = (document.Failures ?? new List<DocumentFailure>()).Select(f => f.Id);
        if (_journal.Store is not null && document.Journal?.Passes?.Contains(step) != true)
        {
            // The journal notes the pass before any worker writes a before-image for it.
            await _store.UpdateAsync(_definition.Name, latest =>
            {
                if (latest is null || latest.Journal?.Passes?.Contains(step) == true)
                {
                    return null;
                }

                MigrationLifecycle.NoteJournaledPass(latest, step, _time.NowMs());
                return latest;
            }, "journal", _cancellationToken).ConfigureAwait(false);
        }

        if (document.Cursor?.BaseProcessed is null)
        {
            // The totals before this pass (the sum of its ranges is added to them).
            await _store.UpdateAsync(_definition.Name, latest =>
            {
                if (latest is null || latest.Status != TrackingStatus.Running || (latest.Cursor?.Step ?? 0) != step || latest.Cursor?.BaseProcessed is not null)
                {
                    return null;
                }

                latest.Cursor ??= new MigrationCursor { Step = step };
                latest.Cursor.BaseProcessed = latest.Processed;
                return latest;
            }, "checkpoint", _cancellationToken).ConfigureAwait(false);
        }

        using var settle = new CancellationTokenSource();
        using var settleAfterCancel = _cancellationToken.Register(() => settle.CancelAfter(SettleGrace));
        var handler = new PassProcessor(_target, pass, _gate, ledger, _store, _definition.Name, _beat.Counts, _view, _worker, failedIds, (failed, documents, ct) => _batchFailures.RecordAsync(step, failed, documents, ct),
            _log, _cancellationToken, settle.Token, _journal.Store, step, _options.Writes);
        var processor = handler.Build(processorName, _leases, _options.LeaseDuration);
        var watch = new CatchUpWatch(_target.Container, _leases, processorName);
        // One worker initializes the processor's lease store, the others start once it has (the
        // SDK would make them sleep 15 s on its initialization lock).
        await new ProcessorStart(_leases, processorName, _worker, _time, _log).StartAsync(() => StartProcessorAsync(processor), _cancellationToken).ConfigureAwait(false);
        var nextBeat = _time.NowMs() + (long)_beat.Interval.TotalMilliseconds;
        var nextLook = 0L;
        var following = false;
        try
        {
            while (true)
            {
                await Task.Delay(CatchUpTick, _time, _cancellationToken).ConfigureAwait(false);
                if (handler.Failure is { } failure)
                {
                    // The error by the rule a single run fails by (past -MaxFailures, or -MaxFailureRate).
                    throw _batchFailures.PastThresholdsError ?? failure;
                }

                // Between beats, only an idle worker (no batch for a tick) that holds a range looks
                // whether the pass is caught up: the run ends a tick after its last batch, not a beat
                // (up to 5 s) after. A worker without a range (more workers than ranges, or one
                // still waiting for its share) cannot be the last to finish one: it reads the
                // tracking document once a second to return when the pass moves on, instead of the
                // estimator's 1 + ranges requests every tick, and looks at the lag once a beat.
                var now = _time.NowMs();
                long? lag = null;
                if (now < nextBeat && !following && now - handler.LastDeliveryMs >= CatchUpTick.TotalMilliseconds && !handler.HoldsRanges)
                {
                    if (now >= nextLook)
                    {
                        nextLook = now + (long)RangelessLook.TotalMilliseconds;
                        if (!StillOnPass(await _store.GetAsync(_definition.Name, _cancellationToken).ConfigureAwait(false), step))
                        {
                            return null;
                        }
                    }

                    continue;
                }

                if (now < nextBeat && (following || now - handler.LastDeliveryMs < CatchUpTick.TotalMilliseconds || (lag = await LagAsync(watch).ConfigureAwait(false)) != 0))
                {
                    continue;
                }

                nextBeat = now + (long)_beat.Interval.TotalMilliseconds;
                var ledgers = await ledger.ListAsync(_cancellationToken).ConfigureAwait(false);
                var current = await _beat.BeatAsync(step, ledgers).ConfigureAwait(false);
                if (!StillOnPass(current, step))
                {
                    return null;
                }

                Report(current);
                if (_options.MaxDuration is { } slice && _counters.Clock.Elapsed >= slice)
                {
                    return "MaxDuration";
                }

                if ((lag ?? await LagAsync(watch).ConfigureAwait(false)) != 0)
                {
                    continue;
                }

                // Caught up: every batch is checkpointed, so every intent left open is a dead
                // worker's (or being closed right now): settle what can be, then look again.
                if (ledgers.Any(l => l.Intent is not null)
                    && await handler.Recovery.SettleOrphansAsync(handler.Planner, _cancellationToken).ConfigureAwait(false) >= 0)
                {
                    continue;
                }

                if (_options.Follow && step == _definition.Steps.Count - 1)
                {
                    // Following: the application's writes are picked up by the processor; the
                    // tracking document hears from this worker once a beat, no more.
                    following = true;
                    if (current.Phase != Following)
                    {
                        await _store.PatchAsync(_definition.Name, new[] { PatchOperation.Set("/phase", Following) }, _cancellationToken).ConfigureAwait(false);
                        _log?.Invoke($"Every document of '{_definition.Container}' has been seen; following the application's writes until Stop-SchemaMigration.");
                    }

                    continue;
                }

                await AdvanceAsync(step, ledger).ConfigureAwait(false);
                return null;
            }
        }
        finally
        {
            await processor.StopAsync().ConfigureAwait(false);
            await _beat.ReportCountsAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Starts the change feed processor. Workers that start together all bootstrap the
    /// lease store; the SDK serialises that with a lock document, but one that loses the race can
    /// still meet the other's marker document (409 Conflict) and give up. The store is then
    /// initialised, so starting again is what the SDK itself would do next.</summary>
    private async Task StartProcessorAsync(ChangeFeedProcessor processor)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await processor.StartAsync().ConfigureAwait(false);
                return;
            }
            catch (CosmosException ex) when (ex.StatusCode == System.Net.HttpStatusCode.Conflict && attempt < 5)
            {
                _log?.Invoke($"The change feed processor's lease store was being initialised by another worker (409); starting again ({attempt}).");
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), _time, _cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Whether the run is still running this pass (not ended, moved on or asked to stop).</summary>
    private static bool StillOnPass([NotNullWhen(true)] TrackingDocument? current, int step) =>
        current is not null && current.Status == TrackingStatus.Running && (current.Cursor?.Step ?? 0) == step && current.StopRequested != true;

    /// <summary>The lag, or null when it could not be read this time (a split under way, the
    /// service busy): completion is only ever decided on a lag read, never on a failure.</summary>
    private async Task<long?> LagAsync(CatchUpWatch watch)
    {
        try
        {
            return await watch.LagAsync(_cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException && ex is CosmosException or MigrationException)
        {
            _log?.Invoke($"Could not estimate the change feed's lag this time: {CosmosErrors.FirstLine(ex.Message)}");
            return null;
        }
    }
}
