using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Errors;
using CosmosMigrations.Journal;
using CosmosMigrations.Requests;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Running;

/// <summary>One run of one migration, from the step its checkpoint names to the end: each step in
/// turn, the checkpoint moved past each finished step, the lease kept alive by a heartbeat, and
/// every way a run ends mapped to its outcome and its last tracking write.</summary>
internal sealed class MigrationRun
{
    private readonly MigrationDefinition _definition;
    private readonly RunOptions _options;
    private readonly TargetContainer _target;
    private readonly ResilientSender _sender;
    private readonly LeasedCheckpoint _checkpoint;
    private readonly IProgress<MigrationProgress>? _progress;
    private readonly Action<string>? _log;
    private readonly Action<string>? _warn;
    private readonly CancellationToken _cancellationToken;
    private readonly double _chargeAtStart;
    private readonly ProgressCounters _counters;
    private readonly StopSignal _stop;
    private readonly PageLedger _ledger;
    private readonly RunJournal _journal;

    /// <summary>How long pages already writing may go on after Ctrl+C to finish and be counted.</summary>
    private static readonly TimeSpan SettleGrace = TimeSpan.FromSeconds(20);

    private readonly CancellationTokenSource _settle = new();
    private PassScan? _passes;
    private (ScanStep Pass, int Index)? _scanning;

    public MigrationRun(MigrationDefinition definition, RunOptions options, TargetContainer target, ResilientSender sender, LeasedCheckpoint checkpoint,
        IProgress<MigrationProgress>? progress, Action<string>? log, Action<string>? warn, Func<int, Task>? afterCheckpoint, CancellationToken cancellationToken,
        RunJournal? journal = null, Failures.FailureStore? failures = null)
    {
        _journal = journal ?? RunJournal.None;
        _definition = definition;
        _options = options;
        _target = target;
        _sender = sender;
        _checkpoint = checkpoint;
        _progress = progress;
        _log = log;
        _warn = warn;
        _cancellationToken = cancellationToken;
        _chargeAtStart = checkpoint.Document.RequestCharge;
        _counters = new ProgressCounters(definition.Name, definition.Steps.Count) { Budget = options.MaxRUPerSecond, EstimateSkipped = options.NoEstimate };
        _stop = new StopSignal(options, _counters.Clock);
        _ledger = new PageLedger(checkpoint, options, _stop, _counters, RequestCharge, Report, afterCheckpoint, log, _settle.Token, failures) { PartitionKey = target.PartitionKey };
    }

    private TrackingDocument Document => _checkpoint.Document;

    public async Task<RunResult> ExecuteAsync(StartOutcome start, string? warning)
    {
        using var heartbeatStop = CancellationTokenSource.CreateLinkedTokenSource(_cancellationToken);
        var heartbeat = LeaseRenewal.RunAsync(_options.Time, _options.LeaseDuration, () => _checkpoint.LastWriteMs, _checkpoint.RenewAsync, _log, heartbeatStop.Token);
        // Ctrl+C stops the scans at once; the pages already writing get a grace period to finish.
        using var settleAfterCancel = _cancellationToken.Register(() => _settle.CancelAfter(SettleGrace));
        RunOutcome outcome;
        MigrationException? error;
        try
        {
            (outcome, error) = await RunEnding.EndAsync(async () =>
            {
                await RunStepsAsync(start).ConfigureAwait(false);
                if (RunEnding.PastThresholds(Document, _options, Document.Scanned) is { } past)
                {
                    throw past;
                }

                await FinishAsync(d => MigrationLifecycle.Complete(d, Clock.NowMs())).ConfigureAwait(false);
                return RunEnding.Finished(start);
            }, FinishAsync, SettleOpenIntentsAsync, _definition.Name, _cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _settle.Dispose();
            heartbeatStop.Cancel();
            try
            {
                await heartbeat.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        return Result(outcome, error, warning);
    }

    private async Task RunStepsAsync(StartOutcome start)
    {
        if (start == StartOutcome.Resumed)
        {
            _log?.Invoke($"Resuming '{_definition.Name}' at step {Document.Cursor!.Step + 1} of {_definition.Steps.Count} ({Document.Processed} document(s) changed so far).");
        }

        var passes = _passes = new PassScan(_target, _options, _sender, _checkpoint, _ledger, _stop, _counters, _log, _journal.Store, _cancellationToken, _settle.Token);
        for (var index = Document.Cursor!.Step; index < _definition.Steps.Count; index++)
        {
            _stop.ThrowIfStopped();
            var step = _definition.Steps[index];
            _counters.Step = index;
            _ledger.Step = index;
            _counters.Activity = step.Describe();
            _log?.Invoke($"Step {index + 1} of {_definition.Steps.Count}: {_counters.Activity}");
            switch (step)
            {
                case ScanStep pass:
                    _scanning = (pass, index);
                    await passes.RunAsync(pass, index).ConfigureAwait(false);
                    _scanning = null;
                    break;
                case IContainerStep containerStep:
                    await containerStep.ExecuteAsync(ContainerContext(index), _cancellationToken).ConfigureAwait(false);
                    break;
            }

            var next = index + 1;
            await _checkpoint.UpdateAsync(d =>
            {
                d.Cursor = new MigrationCursor { Step = next };
                d.EstimatedTotal = null;
            }, _cancellationToken).ConfigureAwait(false);
        }
    }

    private ContainerStepContext ContainerContext(int step) => new(_target, ReportStep, _log)
    {
        Step = step,
        RecordIndexImage = _journal.Keeps
            ? (image, ct) => _checkpoint.UpdateAsync(d => MigrationLifecycle.NoteIndexImage(d, image), ct)
            : null,
        ReportConflict = (what, ct) => _checkpoint.UpdateAsync(d => PageLedger.RecordConflicts(d, new[] { what }), ct),
    };

    /// <summary>A run that ends before its scan finished may leave pages whose writes were cut short
    /// (their intents still open): what they changed is counted before the last write, so that the
    /// status says what this run changed. Bounded in time; when it cannot, the next run counts them.</summary>
    private async Task SettleOpenIntentsAsync()
    {
        if (_passes is null || _scanning is not { } scanning)
        {
            return;
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _passes.SettleIntentsAsync(scanning.Pass, scanning.Index, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not LeaseLostException)
        {
            _log?.Invoke($"Could not count the pages cut short now ({CosmosErrors.FirstLine(ex.Message)}); the next run counts them before it goes on.");
        }
    }

    private Task FinishAsync(Action<TrackingDocument> end) =>
        _checkpoint.FinishAsync(d =>
        {
            end(d);
            d.RequestCharge = RequestCharge();
            d.Concurrency = _sender.Gate!.Limit;
            d.ConcurrencyReason = _sender.Gate.ConcurrencyReason;
        }, _definition.Name, _warn);

    private RunResult Result(RunOutcome outcome, MigrationException? error, string? warning)
    {
        var status = MigrationStatus.FromTracking(Document, _definition.SourcePath);
        var gate = _sender.Gate!;
        status.Throttled = gate.Throttles;
        status.Concurrency = gate.Limit;
        status.ConcurrencyReason = gate.ConcurrencyReason;
        if (gate.Throttles > 0 || gate.Retries > 0)
        {
            _log?.Invoke($"This run: {gate.Throttles} request(s) throttled (429) and {gate.Retries} transient failure(s) retried; concurrency went down to {gate.LowestLimit} of {_options.MaxDegreeOfParallelism}.");
        }

        status.Outcome = outcome.ToString();
        status.ChecksumMismatch = warning is not null;
        status.Message = outcome switch
        {
            RunOutcome.Stopped => $"Stopped ({Document.StopReason}) after {_ledger.PagesOfDocuments} page(s) in this run; start it again to resume from the checkpoint.",
            RunOutcome.LeaseLost => "Another runner took over this migration; this run stopped without writing.",
            _ => null,
        };
        return new RunResult(status, error, warning);
    }

    private double RequestCharge() => _chargeAtStart + _sender.Gate!.TotalCharge;

    private void ReportStep(string activity, int? percent)
    {
        if (_progress is null)
        {
            return;
        }

        var snapshot = Snapshot();
        snapshot.Activity = activity;
        snapshot.StepPercent = percent;
        _progress.Report(snapshot);
    }

    private void Report() => _progress?.Report(Snapshot());

    private MigrationProgress Snapshot() =>
        _counters.Snapshot(Document, RequestCharge(), _sender.Gate!.TotalCharge);
}

/// <summary>What a run does about before-images: whether it keeps them (a forward run without
/// -NoJournal, on a migration whose journal is complete), and where its documents' entries go (null
/// when it has no document step, or keeps nothing).</summary>
internal sealed record RunJournal(bool Keeps, JournalStore? Store)
{
    public static RunJournal None { get; } = new(false, null);
}
