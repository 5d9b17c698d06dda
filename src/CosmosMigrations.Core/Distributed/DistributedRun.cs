using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;
using CosmosMigrations.Running;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Distributed;

/// <summary>One worker of a distributed run. Every process that runs the migration with
/// -Distributed joins the same run: the tracking document's cursor says which step the run is
/// on; a document pass is shared through the change feed processor (<see cref="PassProcessor"/>),
/// a container step is run by one worker under the tracking document's lease. The worker that
/// sees a pass caught up (<see cref="CatchUpWatch"/>) moves the cursor on, and marks the
/// migration completed after the last step; every worker's command then returns. A worker that
/// leaves (time slice, Ctrl+C) leaves the run to the others; the last to leave ends it cancelled.
/// One job a file: this one is the worker's step loop and what it reports; a pass is in
/// <c>.Pass.cs</c>, a container step in <c>.ContainerStep.cs</c>, the cursor moving on and the run's
/// end in <c>.Ending.cs</c>; the worker's beat is <see cref="WorkerBeat"/>, a batch's failed
/// documents <see cref="BatchFailures"/>.</summary>
internal sealed partial class DistributedRun
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
    private readonly WorkerBeat _beat;
    private readonly TimeProvider _time;
    private readonly RunJournal _journal;
    private readonly BatchFailures _batchFailures;

    public DistributedRun(MigrationConnection connection, MigrationDefinition definition, RunOptions options, TargetContainer target, Container leases,
        RequestGate gate, string worker, LeaseOwner owner, IProgress<MigrationProgress>? progress, Action<string>? log, CancellationToken cancellationToken,
        RunJournal? journal = null, Failures.FailureStore? failures = null)
    {
        _journal = journal ?? RunJournal.None;
        _connection = connection;
        _store = TrackingStore.Of(connection);
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
        _beat = new WorkerBeat(_store, definition.Name, worker, gate, options.LeaseDuration, options.Time, log, cancellationToken);
        _batchFailures = new BatchFailures(_store, definition.Name, target, failures, options);
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
            ? $"Worker {_worker} left ({leaving}) after changing {_beat.Counts.Processed} document(s); the others go on, or a start with -Distributed resumes the run."
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
