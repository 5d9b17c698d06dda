using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;
using CosmosMigrations.Running;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Moving;

/// <summary>What Start-ContainerMove is given.</summary>
internal sealed record MoveRequest(string Name, string Container, string Target, IReadOnlyList<string> PartitionKey, string? Filter,
    IReadOnlyList<object?> Operations, RunOptions Options, int? Throughput = null, int? AutoscaleMaxThroughput = null, bool Distributed = false,
    bool IntoExisting = false);

/// <summary>Moves a container to a new partition key: creates the target with the source's settings
/// and the new key, then copies through the distributed engine (the change feed processor,
/// <see cref="Distributed.DistributedRun"/>) with writes going to the target
/// (<see cref="MoveWrites"/>). The move is a migration: its tracking document (named by the move,
/// container = the source) keeps the leases' name, the counts and the phase, so any process that
/// starts it joins it, and a copy that returned at zero lag resumes from the change feed's
/// checkpoints when started again.</summary>
internal sealed class MoveRunner
{
    private readonly MigrationConnection _connection;

    public MoveRunner(MigrationConnection connection)
    {
        _connection = connection;
    }

    public Action<string>? Log { get; set; }

    public Action<string>? Warn { get; set; }

    public async Task<RunResult> StartAsync(MoveRequest request, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        // Every move runs on the distributed engine (-Distributed only decides whether it joins
        // other processes): the options are checked as such, before anything is written.
        request.Options.Distributed = true;
        request.Options.Validate();
        var operations = ParseOperations(request.Name, request.Container, request.Operations);
        var (source, properties, key, filter) = await PrepareAsync(request.Container, request.PartitionKey, request.Filter, cancellationToken).ConfigureAwait(false);
        ResourceName.Validate(request.Target, "target container");
        if (string.Equals(request.Target, request.Container, StringComparison.Ordinal))
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "TargetIsSource", $"The target '{request.Target}' is the source container: a move writes a new container.",
                request.Target, "Name a new container with -Target; after the cut-over, point the application at it.");
        }

        await _connection.EnsureTrackingContainerAsync(cancellationToken).ConfigureAwait(false);
        var store = TrackingStore.Of(_connection);
        var tracked = await store.GetAsync(request.Name, cancellationToken).ConfigureAwait(false);
        var record = MoveRecord.Of(tracked);
        if (tracked is not null && (record is null || record.Source != request.Container || record.Target != request.Target || !record.PartitionKey.SequenceEqual(key.Paths)))
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "MigrationNameInUse",
                $"'{request.Name}' already tracks {(record is null ? $"a migration of '{tracked.Container}'" : $"the move of '{record.Source}' to '{record.Target}' by {string.Join(", ", record.PartitionKey)}")}.",
                request.Name, "Choose another -Name, or start the move with the container, target and key it was started with.");
        }

        if (tracked is not null && tracked.Phase == MovePhase.Undoing)
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "MoveBeingUndone",
                $"The move '{request.Name}' is being undone: its target and state are being removed.", request.Name,
                "Run Undo-SchemaMigration -Name " + request.Name + " again to finish the undo, then start the move anew.");
        }

        if (!request.Distributed && tracked is { Status: TrackingStatus.Running }
            && MigrationLifecycle.LiveWorkers(tracked, Clock.NowMs(), request.Options.LeaseDuration) is { Count: > 0 } workers)
        {
            // The engine would join them; a process asked to copy alone does not, as a single run would not.
            throw new MigrationException(MigrationErrorKind.AlreadyRunning, "MoveAlreadyRunning",
                $"The move '{request.Name}' is being copied by {string.Join(", ", workers)}.", request.Name,
                "Add -Distributed to share the copy with them, or wait for them (Get-MigrationStatus -Name " + request.Name + ").");
        }

        if (tracked is not null && MovePhase.Of(tracked) == MovePhase.Completed)
        {
            var done = MigrationStatus.FromTracking(tracked);
            done.Outcome = nameof(RunOutcome.Skipped);
            done.Message = $"The move '{request.Name}' is completed: '{request.Target}' was verified equal to '{request.Container}'.";
            return new RunResult(done);
        }

        var created = await EnsureTargetAsync(request, properties, key, record, cancellationToken).ConfigureAwait(false);
        var target = await _connection.GetContainerAsync(request.Target, cancellationToken, refresh: true).ConfigureAwait(false);
        record ??= new MoveRecord { Source = request.Container, Target = request.Target, PartitionKey = key.Paths.ToList(), Filter = filter, CreatedTarget = created };
        record.Operations = new Newtonsoft.Json.Linq.JArray(request.Operations.Select(o => o is null ? Newtonsoft.Json.Linq.JValue.CreateNull() : Newtonsoft.Json.Linq.JToken.FromObject(o)));
        if (tracked is not null && tracked.Status == TrackingStatus.Completed)
        {
            // Copied at zero lag earlier: reopened on the same leases, it goes on from their checkpoints.
            await ReopenAsync(request.Name, cancellationToken).ConfigureAwait(false);
        }

        // Deletes: followed from the source's all-versions-and-deletes feed where it serves one,
        // anchored before the copy reads anything (MoveDeletes); else reconciled at the cut-over.
        var deletes = await DeletesOfAsync(request, source, properties, target, record, new MoveWrites(source, target, operations, filter), cancellationToken).ConfigureAwait(false);
        var definition = Definition(request.Name, request.Container, request.Target, key, filter, operations);
        var options = request.Options;
        options.Journal = false;
        options.Writes = new MoveWrites(source, target, operations, filter);
        Log?.Invoke($"Moving '{request.Container}' to '{request.Target}' (partition key {key}){(filter is null ? "" : $", documents where {filter}")}: copying through the change feed.");
        var runner = new MigrationRunner(_connection) { Log = Log, Warn = Warn };
        using var running = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var recording = RecordWhenStartedAsync(request.Name, record, running.Token);
        var sampling = SampleRateAsync(request.Name, running.Token);
        var following = deletes?.FollowAsync(running.Token, cancellationToken) ?? Task.CompletedTask;
        RunResult result;
        try
        {
            result = await runner.RunAsync(definition, options, progress, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            running.Cancel();
            await recording.ConfigureAwait(false);
            await sampling.ConfigureAwait(false);
            await following.ConfigureAwait(false);
        }

        if (deletes is not null)
        {
            // The copy returned (at zero lag, or stopped): the deletes up to now go too, then another
            // process may take the feed over at once.
            if (result.Error is null && !cancellationToken.IsCancellationRequested)
            {
                await deletes.DrainAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await deletes.ReleaseAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }

        var latest = await store.UpdateAsync(request.Name, document =>
        {
            if (document is null)
            {
                return null;
            }

            if (MoveRecord.Of(document) is not { } written)
            {
                // Written once: a later writer (the cut-over) may have added to it since.
                record.WriteTo(document);
            }
            else if (written.Deletes is null && record.Deletes is not null)
            {
                // A move recorded before deletes were followed: how they go from now on.
                written.Deletes = record.Deletes;
                written.WriteTo(document);
            }

            if (document.Status == TrackingStatus.Completed && document.Phase is null or MovePhase.Following)
            {
                document.Phase = MovePhase.Copied;
            }

            return document;
        }, "move", CancellationToken.None).ConfigureAwait(false);
        if (latest is null)
        {
            return result;
        }

        var status = MigrationStatus.FromTracking(latest);
        await MoveLiveStatus.AddAsync(_connection, status, latest, cancellationToken).ConfigureAwait(false);
        status.Outcome = result.Status.Outcome;
        status.Throttled = result.Status.Throttled;
        status.Concurrency = result.Status.Concurrency;
        status.Message = status.Status != MovePhase.Copied ? result.Status.Message
            : status.Failed > 0
                ? $"'{request.Target}' has caught up with '{request.Container}' (lag 0) but for {status.Failed} document(s) that could not be copied ({status.FailedByClass}): " +
                  $"Get-MigrationFailure -Name {request.Name} lists them. Fix them in '{request.Container}', then stop the application's writes and run Complete-ContainerMove -Name {request.Name}: " +
                  "it copies them again first, and does not complete the move while any is missing."
                : $"'{request.Target}' has caught up with '{request.Container}' (lag 0). Start the move again to catch up later, or stop the application's writes and run Complete-ContainerMove -Name {request.Name}.";
        return result with { Status = status };
    }

    /// <summary>Adds the move's record to its tracking document as soon as the run created it (a
    /// followed move runs until the cut-over, which needs the record): a patch that adds one field,
    /// which the engine's ETag-conditioned writes then read back and keep.</summary>
    private async Task RecordWhenStartedAsync(string name, MoveRecord record, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var document = await TrackingStore.Of(_connection).GetAsync(name, cancellationToken).ConfigureAwait(false);
                if (MoveRecord.Of(document) is not null)
                {
                    return;
                }

                if (document is not null)
                {
                    await TrackingStore.Of(_connection).PatchAsync(name, new[] { PatchOperation.Set("/" + MoveRecord.Field, Newtonsoft.Json.Linq.JObject.FromObject(record)) }, cancellationToken)
                        .ConfigureAwait(false);
                    return;
                }

                await Task.Delay(200, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // The run ended first: the record is written after it.
        }
        catch (MigrationException ex)
        {
            Log?.Invoke($"Could not record the move in '{name}' yet ({CosmosErrors.FirstLine(ex.Message)}); it is recorded when the copy returns.");
        }
    }

    /// <summary>The move's delete follower when the source serves the all-versions-and-deletes feed
    /// (asked once, when the move first starts: the record keeps the answer), else null.</summary>
    private async Task<MoveDeletes?> DeletesOfAsync(MoveRequest request, TargetContainer source, ContainerProperties properties, TargetContainer target, MoveRecord record,
        MoveWrites writes, CancellationToken cancellationToken)
    {
        if (record.Deletes == MoveDeleteModes.Reconciled)
        {
            return null;
        }

        var leases = await _connection.EnsureLeaseContainerAsync(cancellationToken).ConfigureAwait(false);
        var paths = properties.PartitionKeyPaths is { Count: > 0 } ? properties.PartitionKeyPaths.ToList() : new List<string> { properties.PartitionKeyPath };
        var worker = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N").Substring(0, 6)}";
        var deletes = new MoveDeletes(leases, source, paths, target, request.Name, worker, request.Options.LeaseDuration, writes.ReshapeAsync, Log)
        {
            Warn = Warn,
            ReconciledAtCutOver = !request.IntoExisting,
        };
        var followed = await deletes.AnchorAsync(cancellationToken).ConfigureAwait(false);
        record.Deletes = followed ? MoveDeleteModes.AllVersionsFeed : MoveDeleteModes.Reconciled;
        return followed ? deletes : null;
    }

    /// <summary>Samples the copy's progress for its rate (<see cref="MoveLiveStatus"/>) while it
    /// runs: one conditioned write every few seconds, shared by the move's workers.</summary>
    private async Task SampleRateAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await Task.Delay(MoveLiveStatus.SampleInterval, cancellationToken).ConfigureAwait(false);
                try
                {
                    await TrackingStore.Of(_connection).UpdateAsync(name, document => document is not null && MoveLiveStatus.Sample(document, Clock.NowMs()) ? document : null,
                        "move rate", cancellationToken).ConfigureAwait(false);
                }
                catch (MigrationException ex)
                {
                    Log?.Invoke($"Could not sample the copy's rate this time ({CosmosErrors.FirstLine(ex.Message)}).");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The run ended.
        }
    }

    /// <summary>The document operations a move applies on the way (as -Operation hashtables, or as
    /// its tracking document keeps them); container steps are refused.</summary>
    internal static IReadOnlyList<DocumentOperation> ParseOperations(string name, string container, IReadOnlyList<object?> operations)
    {
        if (operations.Count == 0)
        {
            return Array.Empty<DocumentOperation>();
        }

        var definition = new DefinitionParser().ParseInline(name, container, null, operations);
        if (definition.Steps.Any(s => s is not DocumentPass))
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "MoveOperationNotSupported",
                "A move applies document operations (AddField, RemoveField, RenameField, ConvertField) on the way; AddIndex and RequireField are container steps.", name,
                "Leave them out: the target gets the source's indexing policy; check requirements with Test-SchemaConformance after the move.");
        }

        return definition.Steps.OfType<DocumentPass>().SelectMany(p => p.Operations).ToList();
    }

    /// <summary>The source, its properties, the new key (refused when it is the source's own or
    /// not a path) and the validated filter.</summary>
    internal async Task<(TargetContainer Source, ContainerProperties Properties, MoveKey Key, string? Filter)> PrepareAsync(string container, IReadOnlyList<string> partitionKey,
        string? filter, CancellationToken cancellationToken)
    {
        var source = await _connection.GetContainerAsync(container, cancellationToken, refresh: true).ConfigureAwait(false);
        var properties = (await source.Container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        var sourcePaths = properties.PartitionKeyPaths is { Count: > 0 } ? properties.PartitionKeyPaths.ToList() : new List<string> { properties.PartitionKeyPath };
        var key = MoveKey.Parse(partitionKey, sourcePaths);
        var trimmed = string.IsNullOrWhiteSpace(filter) ? null : filter!.Trim();
        DefinitionParser.ValidateFilter(trimmed, container);
        return (source, properties, key, trimmed);
    }

    /// <summary>The move as a migration: one document pass over the source (its filter "true" when
    /// the move takes every document: the pass's query is only probed, the change feed is read).
    /// The checksum covers the target and the key.</summary>
    internal static MigrationDefinition Definition(string name, string source, string target, MoveKey key, string? filter, IReadOnlyList<DocumentOperation> operations) =>
        new(name, source, $"Move to '{target}' by {key}", new MigrationStep[] { new DocumentPass(operations, filter ?? "true") });

    /// <summary>Creates the target (the source's settings, the new key, the throughput asked for or
    /// the source's); an existing one is accepted when it is this move's, or empty with the new key.
    /// Returns whether this move created it.</summary>
    private async Task<bool> EnsureTargetAsync(MoveRequest request, ContainerProperties source, MoveKey key, MoveRecord? record, CancellationToken cancellationToken)
    {
        var container = _connection.Database.GetContainer(request.Target);
        try
        {
            var existing = (await container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
            var paths = existing.PartitionKeyPaths is { Count: > 0 } ? existing.PartitionKeyPaths.ToList() : new List<string> { existing.PartitionKeyPath };
            if (!paths.SequenceEqual(key.Paths, StringComparer.Ordinal))
            {
                throw new MigrationException(MigrationErrorKind.InvalidArgument, "TargetKeyMismatch",
                    $"The target '{request.Target}' exists, partitioned by {string.Join(", ", paths)}, not by {key}.", request.Target,
                    "Name a container that does not exist yet (the move creates it with the source's settings), or delete this one.");
            }

            if (record is not null)
            {
                return record.CreatedTarget;
            }

            if (request.IntoExisting)
            {
                // A reverse sync writes back into the move's source, which holds its documents.
                return false;
            }

            using var count = container.GetItemQueryIterator<long>(new QueryDefinition("SELECT VALUE COUNT(1) FROM c"));
            long documents = 0;
            while (count.HasMoreResults)
            {
                documents += (await count.ReadNextAsync(cancellationToken).ConfigureAwait(false)).Sum();
            }

            if (documents > 0)
            {
                throw new MigrationException(MigrationErrorKind.InvalidArgument, "TargetNotEmpty",
                    $"The target '{request.Target}' already holds {documents} document(s) and is not this move's: a move writes only into a new or empty container.", request.Target,
                    "Name a new container with -Target, or empty this one first.");
            }

            return false;
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
        }

        var properties = MoveSettings.ForTarget(source, request.Target, key);
        var throughput = request.AutoscaleMaxThroughput is { } max ? ThroughputProperties.CreateAutoscaleThroughput(max)
            : request.Throughput is { } manual ? ThroughputProperties.CreateManualThroughput(manual)
            : await SourceThroughputAsync(request.Container, cancellationToken).ConfigureAwait(false);
        try
        {
            await _connection.Database.CreateContainerAsync(properties, throughput, cancellationToken: cancellationToken).ConfigureAwait(false);
            Log?.Invoke($"Created '{request.Target}' (partition key {key}) with the settings of '{request.Container}'{(throughput is null ? "" : $" and {throughput.AutoscaleMaxThroughput?.ToString() ?? throughput.Throughput?.ToString()} RU/s{(throughput.AutoscaleMaxThroughput is null ? "" : " autoscale")}")}.");
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.Conflict)
        {
            // Created by another worker of this move meanwhile.
        }
        catch (CosmosException ex)
        {
            throw CosmosErrors.Wrap(ex, MigrationErrorKind.ServiceError, "TargetNotCreated", $"Creating the target '{request.Target}' failed: {CosmosErrors.FirstLine(ex.Message)}", request.Target,
                "Check the settings the service refused (Test-ContainerMove lists them) and the account's limits.");
        }

        return true;
    }

    /// <summary>The source's own throughput (manual or autoscale), or null when it has none (shared, serverless).</summary>
    private async Task<ThroughputProperties?> SourceThroughputAsync(string container, CancellationToken cancellationToken)
    {
        try
        {
            var response = await _connection.Database.GetContainer(container).ReadThroughputAsync(new RequestOptions(), cancellationToken).ConfigureAwait(false);
            return response.Resource?.AutoscaleMaxThroughput is { } max ? ThroughputProperties.CreateAutoscaleThroughput(max)
                : response.Resource?.Throughput is { } manual ? ThroughputProperties.CreateManualThroughput(manual) : null;
        }
        catch (CosmosException ex) when (ex.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.BadRequest or HttpStatusCode.Forbidden)
        {
            return null;
        }
    }

    /// <summary>Reopens a move whose copy run completed: cancelled (resumable) at its one pass, on
    /// the same generation, so the same leases resume from their checkpoints and the ranges'
    /// ledgers keep counting (the pass's base is 0: the move has no other step).</summary>
    internal async Task ReopenAsync(string name, CancellationToken cancellationToken)
    {
        await TrackingStore.Of(_connection).UpdateAsync(name, document =>
        {
            if (document is null || document.Status != TrackingStatus.Completed)
            {
                return null;
            }

            document.Status = TrackingStatus.Cancelled;
            document.CompletedAt = null;
            document.StopRequested = null;
            document.Phase = null;
            document.Cursor = new MigrationCursor { Step = 0, BaseProcessed = 0 };
            return document;
        }, "move", cancellationToken).ConfigureAwait(false);
    }
}
