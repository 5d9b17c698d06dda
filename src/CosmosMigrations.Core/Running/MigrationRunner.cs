using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Distributed;
using CosmosMigrations.Journal;
using CosmosMigrations.Requests;
using CosmosMigrations.Scanning;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Running;

/// <summary>Runs migrations over a connection: <see cref="RunAsync"/> takes the lease (by the rules
/// of <see cref="MigrationLifecycle"/>) and runs from the checkpoint (<see cref="MigrationRun"/>);
/// <see cref="PreviewAsync"/> is the dry run (<see cref="DryRun"/>); <see cref="UndoAsync"/> and
/// <see cref="PreviewUndoAsync"/> do the same for an undo. Only the caller's thread
/// writes to PowerShell: the runner reports through <see cref="IProgress{T}"/> and the log
/// callbacks.</summary>
internal sealed class MigrationRunner
{
    private readonly MigrationConnection _connection;
    private readonly LeaseOwner _owner = LeaseOwners.Current();

    public MigrationRunner(MigrationConnection connection)
    {
        _connection = connection;
    }

    /// <summary>Verbose messages (the cmdlet's WriteVerbose).</summary>
    public Action<string>? Log { get; set; }

    /// <summary>Warnings (the cmdlet's WriteWarning).</summary>
    public Action<string>? Warn { get; set; }

    /// <summary>Test hook: called after each checkpoint with the number of pages done this run.</summary>
    internal Func<int, Task>? AfterCheckpoint { get; set; }

    public async Task<RunResult> RunAsync(MigrationDefinition definition, RunOptions options, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        options.Validate();
        var target = await _connection.GetContainerAsync(definition.Container, cancellationToken).ConfigureAwait(false);
        await _connection.EnsureTrackingContainerAsync(cancellationToken).ConfigureAwait(false);
        var sender = RunSender(options);
        await ValidateQueriesAsync(target, definition, SideSender(sender), cancellationToken).ConfigureAwait(false);
        if (options.RetryFailures)
        {
            return await RetryAsync(definition, options, target, sender, progress, cancellationToken).ConfigureAwait(false);
        }

        // A lease container that cannot be used is an error before anything is written.
        var leases = options.Distributed ? await _connection.EnsureLeaseContainerAsync(cancellationToken).ConfigureAwait(false) : null;

        // Before-images: the journal container exists before the tracking document says it is used.
        JournalRequest? journalRequest = null;
        TargetContainer? journalContainer = null;
        if (options.Journal)
        {
            journalRequest = new JournalRequest(_connection.JournalContainerName, (int?)options.JournalRetention?.TotalSeconds, target.ResourceId);
            if (definition.Steps.OfType<DocumentPass>().Any())
            {
                journalContainer = await JournalStore.OpenContainerAsync(_connection, journalRequest.Container, create: true, cancellationToken).ConfigureAwait(false);
            }
        }

        var start = await new MigrationLifecycle(TrackingStore.Of(_connection)).StartAsync(new StartRequest(
            definition.Name, definition.Container, definition.Checksum, definition.Description, definition.SourcePath, definition.Steps.Count,
            _owner, options.LeaseDuration, options.Force, options.Strict, journalRequest, options.Distributed ? DistributedRun.WorkerName(_owner) : null, definition.Stored,
            Move: options.Writes?.IsMove == true), cancellationToken).ConfigureAwait(false);
        if (start.Outcome == StartOutcome.Skipped)
        {
            var skipped = MigrationStatus.FromTracking(start.Document, definition.SourcePath);
            skipped.Outcome = nameof(RunOutcome.Skipped);
            skipped.ChecksumMismatch = start.Warning is not null;
            skipped.Message = $"Already completed{(skipped.CompletedAt is null ? "" : " at " + skipped.CompletedAt.Value.ToString("u", CultureInfo.InvariantCulture))}; use -Force to run it again.";
            return new RunResult(skipped, Warning: start.Warning);
        }

        if (start.Warning is not null)
        {
            Warn?.Invoke(start.Warning + " Continuing with the new definition.");
        }

        if (start.TakesOverExpiredLease)
        {
            Log?.Invoke($"The lease of {start.PreviousOwner} on '{definition.Name}' has expired; taking over and resuming from the checkpoint.");
        }

        var journal = RunJournal.None;
        if (options.Journal && start.Document.Journal is { Complete: true } info)
        {
            journal = new RunJournal(true, journalContainer is null ? null
                : new JournalStore(journalContainer, new JournalScope(info.Id, definition.Name, definition.Container), info.Ttl, SideSender(sender))
                {
                    // A run that is not the first of its migration may change documents that already have an image.
                    LaterImages = start.Outcome != StartOutcome.Started || info.Passes is { Count: > 0 },
                });
        }
        else if (options.Journal && definition.Steps.Any(s => s is DocumentPass or AddIndexStep))
        {
            Warn?.Invoke($"'{definition.Name}' already changed documents without before-images (-NoJournal, or before the journal existed): it cannot be undone, so this run keeps none either.");
        }

        // Failed documents go to the failure store, created at the first failure.
        var failures = definition.Steps.OfType<DocumentPass>().Any() ? FailureStoreOf(SideSender(sender)) : null;
        if (leases is not null)
        {
            if (start.Outcome is StartOutcome.Started or StartOutcome.Rerun)
            {
                await ProcessorLeases.DeleteAsync(leases, definition.Name, start.Document.Generation, cancellationToken).ConfigureAwait(false);
            }

            return await new DistributedRun(_connection, definition, options, target, leases, sender.Gate!, DistributedRun.WorkerName(_owner), _owner, progress, Log, cancellationToken, journal, failures)
                .ExecuteAsync(start.Outcome, start.Warning).ConfigureAwait(false);
        }

        var checkpoint = new LeasedCheckpoint(TrackingStore.Of(_connection), start.Document, _owner, options.LeaseDuration, options.Time);
        var run = new MigrationRun(definition, options, target, sender, checkpoint, progress, Log, Warn, AfterCheckpoint, cancellationToken, journal, failures);
        return await run.ExecuteAsync(start.Outcome, start.Warning).ConfigureAwait(false);
    }

    /// <summary>-RetryFailures: takes the lease of a migration that went through its steps and runs
    /// them over its failed documents only (<see cref="FailureRetry"/>).</summary>
    private async Task<RunResult> RetryAsync(MigrationDefinition definition, RunOptions options, TargetContainer target, ResilientSender sender, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        string? previousChecksum = null;
        var decision = await new MigrationLifecycle(TrackingStore.Of(_connection)).StartRetryAsync(definition.Name, (existing, now) =>
        {
            previousChecksum = existing?.Checksum;
            return FailureRetry.Decide(existing, definition, _owner, options.LeaseDuration, now);
        }, cancellationToken).ConfigureAwait(false);
        if (decision.Outcome == StartOutcome.Skipped)
        {
            var skipped = MigrationStatus.FromTracking(decision.Document, definition.SourcePath);
            skipped.Outcome = nameof(RunOutcome.Skipped);
            skipped.Message = "No failed documents to retry.";
            return new RunResult(skipped);
        }

        if (previousChecksum is not null && previousChecksum != definition.Checksum)
        {
            Log?.Invoke($"'{definition.Name}' is retried with a changed definition (checksum {previousChecksum.Substring(0, Math.Min(12, previousChecksum.Length))} → {definition.Checksum.Substring(0, Math.Min(12, definition.Checksum.Length))}).");
        }

        JournalStore? journal = null;
        if (options.Journal && decision.Document.Journal is { Complete: true } info)
        {
            var journalContainer = await JournalStore.OpenContainerAsync(_connection, info.Container, create: true, cancellationToken).ConfigureAwait(false);
            // A retried document may have an image already (a change the run made before it failed at a later step).
            journal = new JournalStore(journalContainer, new JournalScope(info.Id, definition.Name, definition.Container), info.Ttl, SideSender(sender)) { LaterImages = true };
        }

        var checkpoint = new LeasedCheckpoint(TrackingStore.Of(_connection), decision.Document, _owner, options.LeaseDuration, options.Time);
        var retry = new FailureRetry(definition, options, target, sender, checkpoint, FailureStoreOf(SideSender(sender)), journal, progress, Log, cancellationToken);
        return await retry.ExecuteAsync(null).ConfigureAwait(false);
    }

    /// <summary>The failure store of this connection, opened (and created) at its first use.</summary>
    public Failures.FailureStore FailureStoreOf(ResilientSender sender, bool create = true) =>
        new(_connection.FailureContainerName, ct => Failures.FailureStore.OpenContainerAsync(_connection, create, ct), sender);

    /// <summary>A dry run: reads and plans every selected document, writes nothing (no tracking
    /// document either), and reports how many would change with a few before/after samples.</summary>
    public async Task<MigrationPreview> PreviewAsync(MigrationDefinition definition, RunOptions options, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        options.Validate();
        var target = await _connection.GetContainerAsync(definition.Container, cancellationToken).ConfigureAwait(false);
        var sender = new ResilientSender(new RequestGate(options.MaxDegreeOfParallelism, options.MaxRUPerSecond));
        return await new DryRun(definition, options, target, sender, progress).ExecuteAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Undoes a migration: returns every document it changed to what it was, from the
    /// before-images in its journal, then the indexing policies it replaced (the steps in reverse
    /// order, <see cref="UndoPlan"/>). A tracked, leased, resumable run of the same engine, whose
    /// pages restore instead of change. Every refusal (unknown, running, not journaled, expired,
    /// another container) comes before anything is written. <paramref name="container"/> is the
    /// container a migration file names (null when undone by name).</summary>
    public async Task<RunResult> UndoAsync(string name, string? container, RunOptions options, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        options.Validate();
        var sender = RunSender(options);
        var (_, target, journal, request) = await PrepareUndoAsync(name, container, options, sender, cancellationToken).ConfigureAwait(false);
        var start = await new MigrationLifecycle(TrackingStore.Of(_connection)).StartUndoAsync(request, cancellationToken).ConfigureAwait(false);
        if (start.Outcome == StartOutcome.Skipped)
        {
            // An undo ended before its failure entries were removed leaves them to this one.
            await RemoveUndoneFailuresAsync(start.Document, cancellationToken).ConfigureAwait(false);
            var skipped = MigrationStatus.FromTracking(start.Document);
            skipped.Outcome = nameof(RunOutcome.Skipped);
            skipped.Message = $"Already undone{(skipped.CompletedAt is null ? "" : " at " + skipped.CompletedAt.Value.ToString("u", CultureInfo.InvariantCulture))}; Start-SchemaMigration runs it again.";
            return new RunResult(skipped);
        }

        if (start.TakesOverExpiredLease)
        {
            Log?.Invoke($"The lease of {start.PreviousOwner} on '{name}' has expired; taking over{(start.Outcome == StartOutcome.Resumed ? " the undo, from its checkpoint" : " to undo it")}.");
        }

        var plan = UndoPlan.Build(start.Document, journal, options.Force);
        Log?.Invoke($"Undoing '{name}' ({start.Document.Undo?.Migrated ?? 0} document(s) changed by the migration): {(plan.Steps.Count == 0 ? "nothing to restore" : string.Join("; ", plan.Steps.Select(s => s.Describe())))}.");
        var checkpoint = new LeasedCheckpoint(TrackingStore.Of(_connection), start.Document, _owner, options.LeaseDuration, options.Time);
        var run = new MigrationRun(plan, options, target, sender, checkpoint, progress, Log, Warn, AfterCheckpoint, cancellationToken);
        var result = await run.ExecuteAsync(start.Outcome, null).ConfigureAwait(false);
        if (result.Status.Status == TrackingStatus.Undone)
        {
            await RemoveUndoneFailuresAsync(start.Document, cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>An undone migration leaves no failure entries: its runs' failed documents were never
    /// changed, and a run again is a new run (entries up to the undo's epoch are removed; the undo's
    /// own failures and conflicts are on its tracking document).</summary>
    private async Task RemoveUndoneFailuresAsync(TrackingDocument undone, CancellationToken cancellationToken)
    {
        var removed = await Failures.FailureStore.DeleteForMigrationAsync(_connection, undone.Name, undone.FailureEpoch ?? 0, cancellationToken).ConfigureAwait(false);
        if (removed > 0)
        {
            Log?.Invoke($"Removed {removed} failure store entr(ies) of '{undone.Name}' (undone).");
        }
    }

    /// <summary>An undo's dry run: the same checks, then every journal entry judged against its
    /// document as it is now (would be restored, already is, or is a conflict), writing nothing.</summary>
    public async Task<MigrationPreview> PreviewUndoAsync(string name, string? container, RunOptions options, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        options.Validate();
        var sender = new ResilientSender(new RequestGate(options.MaxDegreeOfParallelism, options.MaxRUPerSecond));
        var (tracked, target, journal, request) = await PrepareUndoAsync(name, container, options, sender, cancellationToken).ConfigureAwait(false);
        var decision = MigrationLifecycle.DecideUndo(tracked, request, Clock.NowMs());
        if (decision.Outcome == StartOutcome.Skipped)
        {
            return new MigrationPreview { Name = name, Container = tracked.Container, Notes = new[] { "Already undone: nothing to restore." } };
        }

        var plan = UndoPlan.Build(decision.Document, journal, options.Force);
        return await new DryRun(plan, options, target, sender, progress).ExecuteAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>What an undo needs, checked before anything is written: the tracking document (else
    /// MigrationNotFound), the target container, the undo rules (<see cref="MigrationLifecycle.DecideUndo"/>,
    /// which leaves what it read as read), and the journal container when documents are to be restored.</summary>
    private async Task<(TrackingDocument Tracked, TargetContainer Target, JournalStore? Journal, UndoRequest Request)> PrepareUndoAsync(
        string name, string? container, RunOptions options, ResilientSender sender, CancellationToken cancellationToken)
    {
        await _connection.EnsureTrackingContainerAsync(cancellationToken).ConfigureAwait(false);
        var tracked = await TrackingStore.Of(_connection).GetRequiredAsync(name, cancellationToken).ConfigureAwait(false);
        var target = await _connection.GetContainerAsync(tracked.Container, cancellationToken, refresh: true).ConfigureAwait(false);
        var request = new UndoRequest(name, container, _owner, options.LeaseDuration, options.Force, target.ResourceId);
        var decision = MigrationLifecycle.DecideUndo(tracked, request, Clock.NowMs());
        JournalStore? journal = null;
        if (decision.Outcome != StartOutcome.Skipped && tracked.Journal is { Passes.Count: > 0 } info)
        {
            var journalContainer = await JournalStore.OpenContainerAsync(_connection, info.Container, create: false, cancellationToken).ConfigureAwait(false);
            journal = new JournalStore(journalContainer, new JournalScope(info.Id, tracked.Name, tracked.Container), null, SideSender(sender));
        }

        return (tracked, target, journal, request);
    }

    /// <summary>A run's sender (a migration's or an undo's): its gate adapts the concurrency,
    /// starting low, never past -MaxDegreeOfParallelism, within the RU budget.</summary>
    private ResilientSender RunSender(RunOptions options)
    {
        var gate = RequestGate.Adaptive(options.MaxDegreeOfParallelism, options.MaxRUPerSecond, Math.Min(options.MaxDegreeOfParallelism, RunOptions.StartingConcurrency));
        gate.ConcurrencyChanged = (limit, reason) => Log?.Invoke($"Concurrency {limit}: {reason}.");
        return new ResilientSender(gate);
    }

    /// <summary>A sender for a run's traffic beside its data lanes (journal records, query checks):
    /// the run's budget, totals and retries, a limit of its own as wide as the cap, and no say in
    /// the controller's limit (<see cref="RequestGate.ForSideTraffic"/>).</summary>
    private static ResilientSender SideSender(ResilientSender run) =>
        run.Gate is { } gate ? new ResilientSender(gate.ForSideTraffic(RunOptions.StartingConcurrency)) : run;

    /// <summary>Asks the service to run each pass's query once (TOP 1), so that a filter it rejects
    /// is reported before anything is written, tracking document included.</summary>
    private static async Task ValidateQueriesAsync(TargetContainer target, MigrationDefinition definition, ResilientSender sender, CancellationToken cancellationToken)
    {
        foreach (var pass in definition.Steps.OfType<DocumentPass>().Where(p => p.ScanCondition is not null))
        {
            using var reader = new PageReader(target.Container, null, new QueryDefinition($"SELECT TOP 1 VALUE 1 FROM c WHERE {pass.ScanCondition}"), null, 1, sender);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
