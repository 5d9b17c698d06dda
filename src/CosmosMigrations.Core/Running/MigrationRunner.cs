using System;
using System.Globalization;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Distributed;
using CosmosMigrations.Requests;
using CosmosMigrations.Scanning;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;
using Microsoft.Azure.Cosmos;

namespace CosmosMigrations.Running;

/// <summary>Runs migrations over a connection: <see cref="RunAsync"/> takes the lease (by the rules
/// of <see cref="MigrationLifecycle"/>) and runs from the checkpoint (<see cref="MigrationRun"/>);
/// <see cref="PreviewAsync"/> is the dry run (<see cref="DryRun"/>). Only the caller's thread
/// writes to PowerShell: the runner reports through <see cref="IProgress{T}"/> and the log
/// callbacks.</summary>
public sealed class MigrationRunner
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
        var gate = RequestGate.Adaptive(options.MaxDegreeOfParallelism, options.MaxRUPerSecond, Math.Min(options.MaxDegreeOfParallelism, RunOptions.StartingConcurrency));
        gate.ConcurrencyChanged = (limit, reason) => Log?.Invoke($"Concurrency {limit}: {reason}.");
        var sender = new ResilientSender(gate);
        await ValidateQueriesAsync(target, definition, sender, cancellationToken).ConfigureAwait(false);
        // A lease container that cannot be used is an error before anything is written.
        var leases = options.Distributed ? await _connection.EnsureLeaseContainerAsync(cancellationToken).ConfigureAwait(false) : null;

        var start = await new MigrationLifecycle(_connection.TrackingStore).StartAsync(new StartRequest(
            definition.Name, definition.Container, definition.Checksum, definition.Description, definition.SourcePath, definition.Steps.Count,
            _owner, options.LeaseDuration, options.Force, options.Strict, options.Distributed ? DistributedRun.WorkerName(_owner) : null), cancellationToken).ConfigureAwait(false);
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

        if (leases is not null)
        {
            if (start.Outcome is StartOutcome.Started or StartOutcome.Rerun)
            {
                await ProcessorLeases.DeleteAsync(leases, definition.Name, start.Document.Generation, cancellationToken).ConfigureAwait(false);
            }

            return await new DistributedRun(_connection, definition, options, target, leases, gate, DistributedRun.WorkerName(_owner), _owner, progress, Log, cancellationToken)
                .ExecuteAsync(start.Outcome, start.Warning).ConfigureAwait(false);
        }

        var checkpoint = new LeasedCheckpoint(_connection.TrackingStore, start.Document, _owner, options.LeaseDuration);
        var run = new MigrationRun(definition, options, target, sender, checkpoint, progress, Log, Warn, AfterCheckpoint, cancellationToken);
        return await run.ExecuteAsync(start.Outcome, start.Warning).ConfigureAwait(false);
    }

    /// <summary>A dry run: reads and plans every selected document, writes nothing (no tracking
    /// document either), and reports how many would change with a few before/after samples.</summary>
    public async Task<MigrationPreview> PreviewAsync(MigrationDefinition definition, RunOptions options, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        options.Validate();
        var target = await _connection.GetContainerAsync(definition.Container, cancellationToken).ConfigureAwait(false);
        var sender = new ResilientSender(new RequestGate(options.MaxDegreeOfParallelism, options.MaxRUPerSecond));
        return await new DryRun(definition, options, target, sender, progress).ExecuteAsync(cancellationToken).ConfigureAwait(false);
    }

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
