using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;
using CosmosMigrations.Running;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Distributed;

/// <summary>One worker of a distributed run. Every process that runs the migration with
/// -Distributed joins the same run: the tracking document's cursor says which step the run is
/// on; a document pass is shared through the change feed processor (<see cref="PassProcessor"/>),
/// a container step is run by one worker under the tracking document's lease. The worker that
/// sees a pass caught up (<see cref="CatchUpWatch"/>) moves the cursor on, and marks the
/// migration completed after the last step; every worker's command then returns. A worker that
/// leaves (time slice, Ctrl+C) leaves the run to the others; the last to leave ends it cancelled.</summary>
internal sealed class DistributedRun
{
    /// <summary>The phase of a run with -Follow once it has seen every document.</summary>
    public const string Following = "following";

    private readonly MigrationConnection _connection;
    private readonly TrackingStore _store;
    private readonly MigrationDefinition _definition;
    private readonly RunOptions _options;
    private readonly TargetContainer _target;
    private readonly Container _leases;
    private readonly RequestGate _gate;
    private readonly string _worker;
    private readonly LeaseOwner _owner;
    private readonly IProgress<MigrationProgress>? _progress;
    private readonly Action<string>? _log;
    private readonly CancellationToken _cancellationToken;
    private readonly ProgressCounters _counters;
    private readonly RunOptionsView _view;
    private readonly TimeSpan _beat;
    private readonly TimeProvider _time;
    private readonly RunJournal _journal;
    private readonly Failures.FailureStore? _failures;
    private readonly WorkerCounts _workerCounts = new();
    private readonly object _chargeSync = new();
    private double _chargeReported;
    private MigrationException? _pastThresholds;

    /// <summary>How often an idle worker looks whether its pass is caught up (the estimator: one
    /// query of the leases and one change feed read a range).</summary>
    private static readonly TimeSpan CatchUpTick = TimeSpan.FromMilliseconds(250);

    /// <summary>How long a batch under way may go on after Ctrl+C to finish and be counted.</summary>
    private static readonly TimeSpan SettleGrace = TimeSpan.FromSeconds(20);

    public DistributedRun(MigrationConnection connection, MigrationDefinition definition, RunOptions options, TargetContainer target, Container leases,
        RequestGate gate, string worker, LeaseOwner owner, IProgress<MigrationProgress>? progress, Action<string>? log, CancellationToken cancellationToken,
        RunJournal? journal = null, Failures.FailureStore? failures = null)
    {
        _journal = journal ?? RunJournal.None;
        _failures = failures;
        _connection = connection;
        _store = connection.TrackingStore;
        _definition = definition;
        _options = options;
        _target = target;
        _leases = leases;
        _gate = gate;
        _worker = worker;
        _owner = owner;
        _progress = progress;
        _log = log;
        _cancellationToken = cancellationToken;
        _counters = new ProgressCounters(definition.Name, definition.Steps.Count) { Budget = options.MaxRUPerSecond, EstimateSkipped = true };
        _time = options.Time;
        _view = new RunOptionsView(options.LeaseDuration, options.FailureListCap, options.MaxFailures, options.BatchSize, options.Time, options.FeedStartTime);
        // A heartbeat six times per lease: a worker is dead for the others after a lease without one.
        _beat = TimeSpan.FromMilliseconds(Math.Max(250, Math.Min(5000, options.LeaseDuration.TotalMilliseconds / 6)));
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

    /// <summary>The name of a worker: its host, process and run.</summary>
    public static string WorkerName(LeaseOwner owner) => $"{owner.Host}-{owner.ProcessId}-{owner.RunId.Substring(0, Math.Min(6, owner.RunId.Length))}";

    public async Task<RunResult> ExecuteAsync(StartOutcome start, string? warning)
    {
        _log?.Invoke(start == StartOutcome.Joined
            ? $"Worker {_worker} joins the distributed run of '{_definition.Name}'."
            : $"Worker {_worker} starts the distributed run of '{_definition.Name}' (change feed leases in '{_connection.LeaseContainerName}').");
        RunOutcome outcome;
        MigrationException? error = null;
        string? leaving = null;
        try
        {
            (outcome, error, leaving) = await RunStepsAsync(start).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_cancellationToken.IsCancellationRequested)
        {
            (outcome, leaving) = (RunOutcome.Stopped, "Interrupted");
        }
        catch (Exception ex)
        {
            error = RunEnding.Failure(ex, _definition.Name);
            var message = error.Message;
            await EndAsync((d, _) => MigrationLifecycle.Fail(d, message, error.ErrorId), onlyIfLast: false).ConfigureAwait(false);
            outcome = RunOutcome.Failed;
        }

        await LeaveAsync(leaving).ConfigureAwait(false);
        var document = await BoundedAsync(ct => _store.GetAsync(_definition.Name, ct)).ConfigureAwait(false);
        var status = document is null ? new MigrationStatus { Name = _definition.Name, Container = _definition.Container, Status = TrackingStatus.Cancelled } : MigrationStatus.FromTracking(document, _definition.SourcePath);
        status.Throttled = _gate.Throttles;
        status.Concurrency = _gate.Limit;
        status.ConcurrencyReason = _gate.ConcurrencyReason;
        status.Outcome = outcome.ToString();
        status.ChecksumMismatch = warning is not null;
        status.Message = leaving is not null
            ? $"Worker {_worker} left ({leaving}) after changing {_workerCounts.Processed} document(s); the others go on, or a start with -Distributed resumes the run."
            : null;
        return new RunResult(status, error, warning);
    }

    private async Task<(RunOutcome, MigrationException?, string?)> RunStepsAsync(StartOutcome start)
    {
        while (true)
        {
            var document = await _store.GetAsync(_definition.Name, _cancellationToken).ConfigureAwait(false)
                ?? throw new MigrationException(MigrationErrorKind.LeaseLost, "LeaseLost",
                    $"The tracking document of '{_definition.Name}' was deleted while it ran (Reset-SchemaMigration?); this worker stopped.", _definition.Name);
            switch (document.Status)
            {
                case TrackingStatus.Completed:
                case TrackingStatus.CompletedWithFailures:
                    return (RunEnding.Finished(start), null, null);
                case TrackingStatus.Cancelled:
                    return (RunOutcome.Stopped, null, null);
                case TrackingStatus.Failed:
                    // Every worker reports the error the run ended with (past -MaxFailureRate: the same as a single run's).
                    return (RunOutcome.Failed, RunEnding.Recorded(document), null);
            }

            if (document.StopRequested == true)
            {
                // With -Follow, a stop after every document was seen ends the run's live phase:
                // the migration is done. Otherwise it is cancelled, resumable.
                if (document.Phase == Following)
                {
                    await EndAsync(Conclude, onlyIfLast: false).ConfigureAwait(false);
                }
                else
                {
                    await EndAsync((d, _) => MigrationLifecycle.Cancel(d, "StopRequested"), onlyIfLast: false).ConfigureAwait(false);
                }

                continue;
            }

            var step = document.Cursor?.Step ?? 0;
            if (step >= _definition.Steps.Count)
            {
                await EndAsync(Conclude, onlyIfLast: false).ConfigureAwait(false);
                continue;
            }

            var leaving = _definition.Steps[step] switch
            {
                DocumentPass pass => await RunPassAsync(pass, step, document).ConfigureAwait(false),
                IContainerStep containerStep => await RunContainerStepAsync(containerStep, step).ConfigureAwait(false),
                _ => null,
            };
            if (leaving is not null)
            {
                return (RunOutcome.Stopped, null, leaving);
            }
        }
    }

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
        var handler = new PassProcessor(_target, pass, _gate, ledger, _store, _definition.Name, _workerCounts, _view, _worker, failedIds, (failed, documents, ct) => RecordFailuresAsync(step, failed, documents, ct),
            _log, _cancellationToken, settle.Token, _journal.Store, step, _options.Writes);
        var processor = handler.Build(processorName, _leases, _options.LeaseDuration);
        var watch = new CatchUpWatch(_target.Container, _leases, processorName);
        await StartProcessorAsync(processor).ConfigureAwait(false);
        var nextBeat = _time.NowMs() + (long)_beat.TotalMilliseconds;
        var following = false;
        try
        {
            while (true)
            {
                await Task.Delay(CatchUpTick, _time, _cancellationToken).ConfigureAwait(false);
                if (handler.Failure is { } failure)
                {
                    // The error by the rule a single run fails by (past -MaxFailures, or -MaxFailureRate).
                    throw Volatile.Read(ref _pastThresholds) ?? failure;
                }

                // Between beats, only an idle worker (no batch for a tick) looks whether the pass is
                // caught up: the run ends a tick after its last batch, not a beat (up to 5 s) after.
                var now = _time.NowMs();
                long? lag = null;
                if (now < nextBeat && (following || now - handler.LastDeliveryMs < CatchUpTick.TotalMilliseconds || (lag = await LagAsync(watch).ConfigureAwait(false)) != 0))
                {
                    continue;
                }

                nextBeat = now + (long)_beat.TotalMilliseconds;
                var ledgers = await ledger.ListAsync(_cancellationToken).ConfigureAwait(false);
                var current = await BeatAsync(step, ledgers).ConfigureAwait(false);
                if (current is null || current.Status != TrackingStatus.Running || (current.Cursor?.Step ?? 0) != step || current.StopRequested == true)
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
            await ReportCountsAsync().ConfigureAwait(false);
        }
    }

    /// <summary>This worker's beat: its heartbeat and the counts it made since the last beat, and,
    /// when the sum of the ranges' ledgers is ahead of the migration's totals, the totals (never
    /// moved back by a slower worker's older sum). Returns the tracking document as it is now.</summary>
    private async Task<TrackingDocument?> BeatAsync(int step, IReadOnlyList<RangeLedgerDocument> ledgers)
    {
        var counts = _workerCounts.Take();
        var charge = TakeCharge();
        var worker = MigrationLifecycle.WorkerPath(_worker);
        // The worker's own record takes absolute values: a patch retried after a lost answer
        // cannot count twice.
        var own = new List<PatchOperation>
        {
            PatchOperation.Set(worker + "/heartbeat", _time.NowMs()),
            PatchOperation.Set(worker + "/processed", _workerCounts.Processed),
            PatchOperation.Set(worker + "/scanned", _workerCounts.Scanned),
            PatchOperation.Set(worker + "/requestCharge", Math.Round(_gate.TotalCharge, 2)),
            PatchOperation.Increment("/requestCharge", charge),
            PatchOperation.Increment("/scanned", counts.Scanned),
        };
        try
        {
            var current = await _store.GetAsync(_definition.Name, _cancellationToken).ConfigureAwait(false);
            if (current?.Cursor is { } cursor && cursor.Step == step && current.Status == TrackingStatus.Running)
            {
                var processed = (cursor.BaseProcessed ?? 0) + ledgers.Sum(l => l.Processed);
                if (processed > current.Processed)
                {
                    var totals = own.Concat(new[]
                    {
                        PatchOperation.Set("/processed", processed),
                        PatchOperation.Set("/pending", PendingOf(ledgers)),
                    }).ToList();
                    var written = await _store.TryPatchAsync(_definition.Name, totals,
                        $"FROM c WHERE c.status = 'running' AND c.cursor.step = {step} AND c.processed < {processed}", _cancellationToken).ConfigureAwait(false);
                    if (written is not null)
                    {
                        return written;
                    }
                }
            }

            await _store.PatchAsync(_definition.Name, own, _cancellationToken).ConfigureAwait(false);
            return await _store.GetAsync(_definition.Name, _cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _workerCounts.Restore(counts);
            RestoreCharge(charge);
            throw;
        }
    }

    /// <summary>The last counts of this worker go to its record even when it leaves on Ctrl+C.</summary>
    private async Task ReportCountsAsync()
    {
        var counts = _workerCounts.Take();
        var charge = TakeCharge();
        if (counts.Processed == 0 && counts.Scanned == 0 && charge == 0)
        {
            return;
        }

        var worker = MigrationLifecycle.WorkerPath(_worker);
        try
        {
            await BoundedAsync(ct => _store.PatchAsync(_definition.Name, new[]
            {
                PatchOperation.Set(worker + "/processed", _workerCounts.Processed),
                PatchOperation.Set(worker + "/scanned", _workerCounts.Scanned),
                PatchOperation.Set(worker + "/requestCharge", Math.Round(_gate.TotalCharge, 2)),
                PatchOperation.Increment("/requestCharge", charge),
                PatchOperation.Increment("/scanned", counts.Scanned),
            }, ct)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is MigrationException or OperationCanceledException)
        {
            _log?.Invoke($"Could not record this worker's last counts ({CosmosErrors.FirstLine(ex.Message)}); the migration's total is the ranges' sum all the same.");
        }
    }

    private static Dictionary<string, PendingBatch> PendingOf(IEnumerable<RangeLedgerDocument> ledgers) =>
        ledgers.Where(l => l.Intent is not null).ToDictionary(
            l => l.LeaseToken + "|" + l.Intent!.Worker,
            l => new PendingBatch { Worker = l.Intent!.Worker ?? "", Documents = l.Intent.Documents },
            StringComparer.Ordinal);

    private double TakeCharge()
    {
        lock (_chargeSync)
        {
            var total = _gate.TotalCharge;
            var charge = Math.Round(total - _chargeReported, 2);
            _chargeReported = total;
            return charge;
        }
    }

    private void RestoreCharge(double charge)
    {
        lock (_chargeSync)
        {
            _chargeReported -= charge;
        }
    }

    /// <summary>Records documents that could not be migrated: an entry each in the failure store
    /// (with its document as delivered), then one patch of the migration's counts (documents new to
    /// the store only, so a batch delivered again counts nothing twice) and the capped list; returns
    /// whether the failures are past the run's thresholds.</summary>
    private async Task<bool> RecordFailuresAsync(int step, IReadOnlyList<WriteOutcome> failed, IReadOnlyList<JObject> documents, CancellationToken cancellationToken)
    {
        var current = await _store.GetAsync(_definition.Name, cancellationToken).ConfigureAwait(false);
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
                var entry = Failures.FailureEntry.For(_definition.Name, step, byId.TryGetValue(f.Id, out var d) ? d : new JObject { ["id"] = f.Id }, _target.PartitionKey,
                    f.Class ?? Failures.FailureClass.Transform, f.Error ?? "", current?.FailureEpoch ?? 0, _time.NowMs(), current?.Journal?.Ttl);
                entry.Attempts = f.Attempts;
                return _failures.RecordAsync(entry, cancellationToken);
            })).ConfigureAwait(false);
            counted = failed.Where((_, i) => recorded[i].New).ToList();
            foreach (var f in counted)
            {
                byClass.Add(f.Class ?? Failures.FailureClass.Transform, 1);
            }
        }

        if (counted.Count == 0)
        {
            return PastThresholds(failed, current?.FailureCount ?? 0, current?.Scanned ?? 0);
        }

        var room = Math.Max(0, _options.FailureListCap - (current?.Failures?.Count ?? 0));
        var operations = new List<PatchOperation> { PatchOperation.Increment("/failureCount", counted.Count) };
        if (current?.Failures is null && room > 0)
        {
            operations.Add(PatchOperation.Set("/failures", new List<DocumentFailure>()));
        }

        foreach (var failure in counted.Take(Math.Min(room, 6)))
        {
            operations.Add(PatchOperation.Add("/failures/-", new DocumentFailure { Id = failure.Id, PartitionKey = failure.PartitionKey, Error = failure.Error ?? "" }));
        }

        if (_failures is not null)
        {
            // A patch takes at most 10 operations: the classes go as one set when new, else as up to three increments.
            if (current?.Failed is null)
            {
                operations.Add(PatchOperation.Set("/failed", byClass));
            }
            else
            {
                foreach (var (path, value) in new[] { ("/failed/transform", byClass.Transform), ("/failed/refused", byClass.Refused), ("/failed/exhausted", byClass.Exhausted) })
                {
                    if (value > 0)
                    {
                        operations.Add(PatchOperation.Increment(path, value));
                    }
                }
            }
        }

        await _store.PatchAsync(_definition.Name, operations, cancellationToken).ConfigureAwait(false);
        return PastThresholds(failed, (current?.FailureCount ?? 0) + counted.Count, current?.Scanned ?? 0);
    }

    /// <summary>Whether the run's failures are past its thresholds (the error kept for the run to fail with).</summary>
    private bool PastThresholds(IReadOnlyList<WriteOutcome> failed, long failures, long seen)
    {
        if (RunEnding.PastThresholdsMidRun(_definition.Name, failed, failures, seen, _options, "batch") is not { } past)
        {
            return false;
        }

        Interlocked.CompareExchange(ref _pastThresholds, past, null);
        return true;
    }

    /// <summary>A container step runs once, in the worker that takes the tracking document's lease
    /// for it (another takes over if that one dies); the others wait for the cursor to move on.</summary>
    private async Task<string?> RunContainerStepAsync(IContainerStep containerStep, int step)
    {
        _counters.Step = step;
        _counters.Activity = ((MigrationStep)containerStep).Describe();
        while (true)
        {
            var current = await _store.GetAsync(_definition.Name, _cancellationToken).ConfigureAwait(false);
            if (current is null || current.Status != TrackingStatus.Running || (current.Cursor?.Step ?? 0) != step || current.StopRequested == true)
            {
                return null;
            }

            if (_options.MaxDuration is { } slice && _counters.Clock.Elapsed >= slice)
            {
                return "MaxDuration";
            }

            var claimed = await _store.UpdateAsync(_definition.Name, latest =>
            {
                if (latest is null || latest.Status != TrackingStatus.Running || (latest.Cursor?.Step ?? 0) != step || (latest.Lease is { } held && held.ExpiresAt > _time.NowMs()))
                {
                    return null;
                }

                latest.Lease = new Lease { Owner = _owner, ExpiresAt = _time.NowMs() + (long)_options.LeaseDuration.TotalMilliseconds };
                return latest;
            }, "step lease", _cancellationToken).ConfigureAwait(false);
            if (claimed?.Lease?.Owner.RunId == _owner.RunId)
            {
                _log?.Invoke($"Step {step + 1} of {_definition.Steps.Count}: {_counters.Activity}, run by this worker for all.");
                using var renewal = CancellationTokenSource.CreateLinkedTokenSource(_cancellationToken);
                var renewing = RenewStepLeaseAsync(renewal.Token);
                try
                {
                    await containerStep.ExecuteAsync(new ContainerStepContext(_target, ReportStep, _log)
                    {
                        Step = step,
                        RecordIndexImage = _journal.Keeps
                            ? (image, ct) => _store.UpdateAsync(_definition.Name, latest =>
                            {
                                if (latest is null)
                                {
                                    return null;
                                }

                                MigrationLifecycle.NoteIndexImage(latest, image);
                                return latest;
                            }, "journal", ct)
                            : null,
                    }, _cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    renewal.Cancel();
                    await renewing.ConfigureAwait(false);
                }

                await AdvanceAsync(step).ConfigureAwait(false);
                return null;
            }

            await HeartbeatAsync().ConfigureAwait(false);
            await Task.Delay(_beat, _time, _cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The step lease of a container step this worker runs for all (only while it holds
    /// it: the patch's filter), and this worker's heartbeat with it.</summary>
    private Task RenewStepLeaseAsync(CancellationToken cancellationToken) =>
        LeaseRenewal.RunAsync(_time, _options.LeaseDuration, null, async ct =>
        {
            await _store.TryPatchAsync(_definition.Name, new[] { PatchOperation.Set("/lease/expiresAt", _time.NowMs() + (long)_options.LeaseDuration.TotalMilliseconds) },
                $"FROM c WHERE c.lease.owner.runId = '{_owner.RunId}'", ct).ConfigureAwait(false);
            await HeartbeatAsync().ConfigureAwait(false);
        }, _log, cancellationToken);

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
            await ReportCountsAsync().ConfigureAwait(false);
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
    /// The documents seen are the migration's count, or the current pass's ledgers when they
    /// already know more (the other workers' last batches, not yet reported on a beat).</summary>
    private void Conclude(TrackingDocument document, long passScanned) =>
        RunEnding.Conclude(document, _options, Math.Max(document.Scanned, passScanned), _time.NowMs());

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

    private Task HeartbeatAsync() =>
        _store.PatchAsync(_definition.Name, new[] { PatchOperation.Set(MigrationLifecycle.WorkerPath(_worker) + "/heartbeat", _time.NowMs()) }, _cancellationToken);

    /// <summary>The last writes of a worker go through after Ctrl+C, bounded in time.</summary>
    private static async Task<T> BoundedAsync<T>(Func<CancellationToken, Task<T>> call)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        return await call(timeout.Token).ConfigureAwait(false);
    }

    private void Report(TrackingDocument document)
    {
        if (_progress is null)
        {
            return;
        }

        var snapshot = _counters.Snapshot(document, document.RequestCharge, _gate.TotalCharge);
        var live = MigrationLifecycle.LiveWorkers(document, _time.NowMs(), _options.LeaseDuration).Count;
        snapshot.Activity = $"{_counters.Activity}: {live} worker(s){(document.Phase == Following ? ", following" : "")}";
        _progress.Report(snapshot);
    }

    private void ReportStep(string activity, int? percent)
    {
        if (_progress is null)
        {
            return;
        }

        var snapshot = _counters.Snapshot(0, 0, 0, _gate.TotalCharge, _gate.TotalCharge);
        snapshot.Activity = activity;
        snapshot.StepPercent = percent;
        _progress.Report(snapshot);
    }

    /// <summary>The change feed processor of one pass of one run of a migration (its leases are
    /// named after it): a rerun gets new leases, a resume the same.</summary>
    public static string ProcessorName(string migration, int generation, int step) => $"{migration}|g{generation}|s{step}|";
}
