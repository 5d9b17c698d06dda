using CosmosMigrations.Errors;
using CosmosMigrations.Running;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Distributed;

internal sealed partial class DistributedRun
{
    /// <summary>Moves the cursor past a finished step (once, whoever sees it first), completing
    /// the migration after the last one; the step lease, if any, is released. After a document
    /// pass, the totals are its ranges' sum, read now that every batch is counted.</summary>
    private async Task AdvanceAsync(int step, RangeLedger? ledger = null)
    {
        long? processed = null;
        long passScanned = 0;
        var last = step + 1 >= _definition.Steps.Count;
        if (last)
        {
            // The end-of-run rule reads the documents seen: this worker's are written first.
            await _beat.ReportCountsAsync().ConfigureAwait(false);
        }

        if (ledger is not null)
        {
            var ledgers = await ledger.ListAsync(_cancellationToken).ConfigureAwait(false);
            var document = await _store.GetAsync(_definition.Name, _cancellationToken).ConfigureAwait(false);
            processed = (document?.Cursor?.BaseProcessed ?? 0) + ledgers.Sum(l => l.Processed);
            passScanned = ledgers.Sum(l => l.Scanned);
        }

        await _store.UpdateAsync(_definition.Name, latest =>
        {
            if (latest is null || latest.Status != TrackingStatus.Running || (latest.Cursor?.Step ?? 0) != step)
            {
                return null;
            }

            if (processed is { } total)
            {
                latest.Processed = total;
                latest.Pending = new Dictionary<string, PendingBatch>();
            }

            latest.Cursor = new MigrationCursor { Step = step + 1, BaseProcessed = latest.Processed };
            latest.Lease = null;
            if (last)
            {
                Conclude(latest, passScanned);
                RecordConcurrency(latest);
                _log?.Invoke($"Every document of '{_definition.Container}' has been seen: '{_definition.Name}' is {latest.Status}.");
            }

            return latest;
        }, "checkpoint", _cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The worker that ends the run says where its controller stood, as a single run does
    /// (Get-MigrationStatus shows it).</summary>
    private void RecordConcurrency(TrackingDocument document)
    {
        document.Concurrency = _gate.Limit;
        document.ConcurrencyReason = _gate.ConcurrencyReason;
    }

    /// <summary>The end of a run that went through its steps, by the rule every engine ends by
    /// (<see cref="RunEnding.Conclude"/>): completed, or failed past -MaxFailures / -MaxFailureRate.
    /// The documents seen are the migration's deliveries less its own writes coming back (its
    /// <see cref="TrackingDocument.Seen"/>), or the current pass's ledgers when they already know more (the other workers' last batches, not yet reported on a beat).</summary>
    private void Conclude(TrackingDocument document, long passScanned) =>
        RunEnding.Conclude(document, _options, Math.Max(document.Seen, passScanned), _time.NowMs());

    /// <summary>Ends the run for every worker (while it still runs); with <paramref name="onlyIfLast"/>,
    /// only when no other worker lives. Mid-pass, the totals become the sum of the pass's ledgers;
    /// <paramref name="end"/> is given the documents the pass's ledgers saw.</summary>
    private async Task EndAsync(Action<TrackingDocument, long> end, bool onlyIfLast)
    {
        var totals = await BoundedAsync(PassTotalAsync).ConfigureAwait(false);
        await BoundedAsync(ct => _store.UpdateAsync(_definition.Name, latest =>
        {
            if (latest is null || latest.Status != TrackingStatus.Running)
            {
                return null;
            }

            if (onlyIfLast && MigrationLifecycle.LiveWorkers(latest, _time.NowMs(), _options.LeaseDuration).Any(w => w != _worker))
            {
                return null;
            }

            var passScanned = 0L;
            if (totals is { } pass && (latest.Cursor?.Step ?? 0) == pass.Step)
            {
                latest.Processed = pass.Processed;
                passScanned = pass.Scanned;
            }

            end(latest, passScanned);
            RecordConcurrency(latest);
            latest.Lease = null;
            return latest;
        }, "end of the run", ct)).ConfigureAwait(false);
    }

    /// <summary>The step and the migration's total while a document pass is under way (what came
    /// before it, plus its ranges' ledgers); null outside a pass.</summary>
    private async Task<(int Step, long Processed, long Scanned)?> PassTotalAsync(CancellationToken cancellationToken)
    {
        var document = await _store.GetAsync(_definition.Name, cancellationToken).ConfigureAwait(false);
        var step = document?.Cursor?.Step ?? 0;
        if (document?.Cursor?.BaseProcessed is not { } before || step >= _definition.Steps.Count || _definition.Steps[step] is not DocumentPass)
        {
            return null;
        }

        var ledgers = await new RangeLedger(_leases, _definition.Name, document.Generation ?? 1, step).ListAsync(cancellationToken).ConfigureAwait(false);
        return (step, before + ledgers.Sum(l => l.Processed), ledgers.Sum(l => l.Scanned));
    }

    /// <summary>This worker leaves: its record says so; if it was the last one of a run that goes
    /// on, the run ends cancelled (resumable) with the reason.</summary>
    private async Task LeaveAsync(string? reason)
    {
        try
        {
            await BoundedAsync(ct => _store.PatchAsync(_definition.Name, new[]
            {
                PatchOperation.Set(MigrationLifecycle.WorkerPath(_worker) + "/state", WorkerStates.Stopped),
                PatchOperation.Set(MigrationLifecycle.WorkerPath(_worker) + "/heartbeat", _time.NowMs()),
            }, ct)).ConfigureAwait(false);
            if (reason is not null)
            {
                await EndAsync((d, _) => MigrationLifecycle.Cancel(d, reason), onlyIfLast: true).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is MigrationException or OperationCanceledException)
        {
            _log?.Invoke($"Could not record that worker {_worker} left ({CosmosErrors.FirstLine(ex.Message)}); the others see it by its heartbeat.");
        }
    }

    /// <summary>The last writes of a worker go through after Ctrl+C, bounded in time.</summary>
    internal static async Task<T> BoundedAsync<T>(Func<CancellationToken, Task<T>> call)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        return await call(timeout.Token).ConfigureAwait(false);
    }
}
