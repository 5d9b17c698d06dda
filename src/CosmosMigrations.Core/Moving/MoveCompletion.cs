using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;
using CosmosMigrations.Running;
using CosmosMigrations.Scanning;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Moving;

/// <summary>What Complete-ContainerMove found and did: the counts and digests of both sides, or,
/// with a sample, the counts and the sampled documents that differ.</summary>
internal sealed record MoveVerification(long SourceDocuments, long TargetDocuments, string SourceDigest, string TargetDigest, long Deleted,
    int? Sampled = null, IReadOnlyList<string>? SampleMismatches = null)
{
    public bool Equal => SourceDocuments == TargetDocuments && (Sampled is null ? SourceDigest == TargetDigest : SampleMismatches is { Count: 0 });

    /// <summary>How the content was compared, for messages.</summary>
    public string Describe() => Sampled is { } sampled
        ? $"{sampled} document(s) sampled at random{(SampleMismatches is { Count: > 0 } bad ? $", {bad.Count} differ (e.g. {string.Join(", ", bad.Take(5))})" : ", all equal")}"
        : $"digest {TargetDigest}";
}

/// <summary>The cut-over of a move, run once the application stopped writing to the source:
/// <list type="number">
/// <item>followers are asked to stop (a following run completes) and the copy is run once more to
/// zero lag, so the target has every write the change feed carries;</item>
/// <item>deletes, which the latest-version change feed does not carry, are reconciled: the target's
/// ids are streamed a page at a time, each page asks the source which of them it still holds (under
/// the move's filter), and the others are deleted from the target (each delete conditioned on the
/// ETag read, so nothing written since is lost);</item>
/// <item>both sides are verified: the number of documents and an order-independent digest of their
/// user content (<see cref="ContentDigest"/>; the source's documents reshaped by the move's
/// operations, as the copy wrote them), streamed with flat memory;</item>
/// <item>the move is marked completed. The source is never written or deleted.</item>
/// </list></summary>
internal sealed class MoveCompletion
{
    private readonly MigrationConnection _connection;

    public MoveCompletion(MigrationConnection connection)
    {
        _connection = connection;
    }

    public Action<string>? Log { get; set; }

    public Action<string>? Warn { get; set; }

    public async Task<RunResult> CompleteAsync(string name, RunOptions options, int? sample, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        await _connection.EnsureTrackingContainerAsync(cancellationToken).ConfigureAwait(false);
        var store = TrackingStore.Of(_connection);
        var tracked = await store.GetRequiredAsync(name, cancellationToken).ConfigureAwait(false);
        var record = MoveRecord.Of(tracked) ?? throw new MigrationException(MigrationErrorKind.InvalidArgument, "MigrationNotAMove",
            $"'{name}' is a migration of '{tracked.Container}', not a move.", name, "Complete-ContainerMove completes what Start-ContainerMove started; Get-MigrationStatus lists the moves with their Target.");
        if (MovePhase.Of(tracked) == MovePhase.Completed)
        {
            var done = MigrationStatus.FromTracking(tracked);
            done.Outcome = nameof(RunOutcome.Skipped);
            done.Message = $"The move '{name}' is completed already.";
            return new RunResult(done);
        }

        await StopFollowersAsync(_connection, name, options.LeaseDuration, Log, cancellationToken).ConfigureAwait(false);

        // Drain: the copy once more, to zero lag (a followed move completed above; a copied one reopens).
        var operations = MoveRunner.ParseOperations(name, record.Source, (record.Operations ?? new JArray()).Select(o => PlainJson.ToPlain(o)).ToList());
        Log?.Invoke($"Draining '{name}': the change feed of '{record.Source}' to zero lag.");
        var drain = await new MoveRunner(_connection) { Log = Log, Warn = Warn }.StartAsync(
            new MoveRequest(name, record.Source, record.Target, record.PartitionKey, record.Filter,
                (record.Operations ?? new JArray()).Select(o => PlainJson.ToPlain(o)).ToList(),
                // Documents that fail are recorded, never a reason to stop: the cut-over copies
                // them again below, and refuses while any is missing.
                new RunOptions { MaxRUPerSecond = options.MaxRUPerSecond, LeaseDuration = options.LeaseDuration, MaxFailures = int.MaxValue }, Distributed: true),
            progress, cancellationToken).ConfigureAwait(false);
        if (drain.Error is not null || drain.Status.Status != MovePhase.Copied)
        {
            return drain.Error is not null ? drain : drain with
            {
                Error = new MigrationException(MigrationErrorKind.InvalidState, "MoveNotDrained",
                    $"The copy of '{name}' ended {drain.Status.Status} ({drain.Status.StopReason}) before its lag reached zero.", name,
                    "Run Complete-ContainerMove again: the copy resumes from its checkpoints."),
            };
        }

        var source = await _connection.GetContainerAsync(record.Source, cancellationToken, refresh: true).ConfigureAwait(false);
        var target = await _connection.GetContainerAsync(record.Target, cancellationToken, refresh: true).ConfigureAwait(false);
        var sender = new ResilientSender(new RequestGate(8, options.MaxRUPerSecond));
        var writes = new MoveWrites(source, target, operations, record.Filter);

        // The documents the copy could not write: copied now from the source, or the cut-over stops here.
        var drained = await store.GetRequiredAsync(name, cancellationToken).ConfigureAwait(false);
        if (drained.FailureCount is > 0)
        {
            var retried = await MoveFailures.RetryAsync(_connection, drained, source, writes, sender, options.FailureListCap, cancellationToken).ConfigureAwait(false);
            Log?.Invoke($"Failed documents of '{name}': {retried.Copied} copied now, {retried.Gone} gone from '{record.Source}', {retried.Remaining.Total} still failing.");
            if (retried.Remaining.Total > 0)
            {
                var refused = MigrationStatus.FromTracking(await store.GetRequiredAsync(name, cancellationToken).ConfigureAwait(false));
                refused.Outcome = nameof(RunOutcome.Failed);
                return new RunResult(refused, MoveFailures.Missing(name, record, retried.Remaining));
            }
        }

        await SetPhaseAsync(name, MovePhase.Completing, null, cancellationToken).ConfigureAwait(false);

        // With the all-versions-and-deletes feed, the drain above carried the deletes; the
        // reconciliation still runs: it removes a version the copy wrote after its delete (the copy
        // read it before), and is the whole story where the source has no such feed.
        var followed = await MoveDeletes.ReadAsync(_connection.Database.GetContainer(_connection.LeaseContainerName), name, cancellationToken).ConfigureAwait(false);
        var deleted = await ReconcileDeletesAsync(source, target, record.Filter, sender, cancellationToken).ConfigureAwait(false);
        if (followed is not null)
        {
            Log?.Invoke($"Deletes carried by the all-versions-and-deletes feed of '{record.Source}' before the cut-over: {followed.Deleted} document(s) removed from '{record.Target}'"
                + (followed.Deleted > 0 ? $", {followed.LatencyMsTotal / followed.Deleted} ms after their delete on average (at most {followed.LatencyMsMax} ms)." : "."));
        }

        Log?.Invoke($"Reconciled deletes: {deleted} document(s) gone from '{record.Source}' removed from '{record.Target}'.");
        MoveVerification verification;
        if (sample is { } size)
        {
            verification = await SampleAsync(source, target, record.Filter, writes, size, deleted, sender, cancellationToken).ConfigureAwait(false);
            Log?.Invoke($"Verified: {verification.SourceDocuments} document(s) in the source, {verification.TargetDocuments} in the target; {verification.Describe()}.");
        }
        else
        {
            var sourceDigest = await DigestAsync(source, record.Filter, writes, sender, cancellationToken).ConfigureAwait(false);
            var targetDigest = await DigestAsync(target, null, null, sender, cancellationToken).ConfigureAwait(false);
            verification = new MoveVerification(sourceDigest.Documents, targetDigest.Documents, sourceDigest.ToString(), targetDigest.ToString(), deleted);
            Log?.Invoke($"Verified: source {verification.SourceDigest}, target {verification.TargetDigest}.");
        }

        if (verification.Equal)
        {
            await AnchorReverseDeletesAsync(name, target, cancellationToken).ConfigureAwait(false);
        }

        var latest = await SetPhaseAsync(name, verification.Equal ? MovePhase.Completed : MovePhase.Copied, r =>
        {
            r.DeletesReconciled = (r.DeletesReconciled ?? 0) + deleted;
            r.DeletesCarried = followed?.Deleted ?? r.DeletesCarried;
            r.Deletes ??= followed is null ? MoveDeleteModes.Reconciled : MoveDeleteModes.AllVersionsFeed;
            r.Digest = verification.Sampled is null ? verification.TargetDigest : null;
            r.Sampled = verification.Sampled;
            r.VerifiedDocuments = verification.TargetDocuments;
        }, cancellationToken).ConfigureAwait(false);
        var status = MigrationStatus.FromTracking(latest!);
        status.Outcome = verification.Equal ? nameof(RunOutcome.Completed) : nameof(RunOutcome.Failed);
        status.Message = verification.Equal
            ? $"'{record.Target}' holds the same {verification.TargetDocuments} document(s) as '{record.Source}' ({verification.Describe()}); {(followed is null ? "" : $"{followed.Deleted} delete(s) carried by the all-versions-and-deletes feed, ")}{deleted} delete(s) reconciled. Point the application at '{record.Target}'; '{record.Source}' is left as it is."
            : null;
        return new RunResult(status, verification.Equal ? null : new MigrationException(MigrationErrorKind.RequirementNotMet, "MoveVerificationFailed",
            verification.Sampled is null
                ? $"'{record.Target}' differs from '{record.Source}': {verification.TargetDocuments} document(s), digest {verification.TargetDigest}, against {verification.SourceDocuments}, digest {verification.SourceDigest}."
                : $"'{record.Target}' differs from '{record.Source}': {verification.TargetDocuments} document(s) against {verification.SourceDocuments}; {verification.Describe()}.",
            name, "Make sure the application no longer writes to the source, then run Complete-ContainerMove again."));
    }

    /// <summary>The name of a move's reverse sync (a move of its own, from the target back into the source).</summary>
    public static string ReverseName(string name) => name + "-reverse";

    /// <summary>-ReverseSync, after the cut-over: a rollback window. What the application writes to
    /// the target from the cut-over on is copied back into the source, under the source's key, by a
    /// move of its own (<see cref="ReverseName"/>: tracked, leased, resumable, shared with
    /// -Distributed processes), reading the target's change feed from the cut-over's time (so the
    /// source's documents are not all written again), following until Stop-SchemaMigration on its
    /// name. It writes into the source, which it did not create: an undo of it leaves the source.</summary>
    public async Task<RunResult> ReverseSyncAsync(string name, RunOptions options, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        var tracked = await TrackingStore.Of(_connection).GetRequiredAsync(name, cancellationToken).ConfigureAwait(false);
        var record = MoveRecord.Of(tracked) ?? throw new MigrationException(MigrationErrorKind.InvalidArgument, "MigrationNotAMove",
            $"'{name}' is a migration of '{tracked.Container}', not a move.", name, "Complete-ContainerMove completes what Start-ContainerMove started.");
        if (MovePhase.Of(tracked) != MovePhase.Completed)
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "MoveNotCompleted",
                $"The move '{name}' is {MovePhase.Of(tracked)}: a reverse sync begins after the cut-over.", name, "Complete the move first (Complete-ContainerMove without -ReverseSync reports why it could not).");
        }

        var source = await _connection.GetContainerAsync(record.Source, cancellationToken, refresh: true).ConfigureAwait(false);
        var properties = (await source.Container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        var sourceKey = properties.PartitionKeyPaths is { Count: > 0 } ? properties.PartitionKeyPaths.ToList() : new List<string> { properties.PartitionKeyPath };
        // From a second before the cut-over's end (the feed's start time has a resolution of seconds):
        // a document the drain copied then is written back with the same content, nothing is missed.
        var cutOver = Clock.FromMs(tracked.CompletedAt ?? tracked.UpdatedAt).UtcDateTime.AddSeconds(-1);
        var reverse = ReverseName(name);
        Log?.Invoke($"Reverse sync '{reverse}': copying what is written to '{record.Target}' since {cutOver:u} back into '{record.Source}' until Stop-SchemaMigration -Name {reverse}.");
        var request = new MoveRequest(reverse, record.Target, record.Source, sourceKey, null, Array.Empty<object?>(),
            new RunOptions { Follow = true, MaxRUPerSecond = options.MaxRUPerSecond, LeaseDuration = options.LeaseDuration, FeedStartTime = cutOver }, Distributed: true, IntoExisting: true);
        return await new MoveRunner(_connection) { Log = Log, Warn = Warn }.StartAsync(request, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>At the cut-over, before the move is marked completed (the moment the application may
    /// write to the target): where the target's deletes are followed from if a reverse sync ever
    /// runs. Its copy of writes reads the target's change feed from the cut-over's time, so its
    /// deletes must start there too, not when -ReverseSync starts (a delete in between would never
    /// reach the source). Where the target has no all-versions-and-deletes feed, nothing is anchored.</summary>
    private async Task AnchorReverseDeletesAsync(string name, TargetContainer target, CancellationToken cancellationToken)
    {
        var leases = await _connection.EnsureLeaseContainerAsync(cancellationToken).ConfigureAwait(false);
        var anchor = new MoveDeletes(leases, target, Array.Empty<string>(), target, ReverseName(name),
            $"{Environment.MachineName}-{Environment.ProcessId}", TimeSpan.FromSeconds(60), (document, _) => Task.FromResult(document), Log);
        try
        {
            await anchor.AnchorAsync(cancellationToken, quiet: true).ConfigureAwait(false);
        }
        catch (MigrationException ex)
        {
            // Not a reason to hold the cut-over: a reverse sync then anchors when it starts.
            Log?.Invoke($"Could not record where a reverse sync would follow the deletes of '{target.Name}' from ({CosmosErrors.FirstLine(ex.Message)}): a reverse sync follows them from its own start.");
        }
    }

    /// <summary>A running move is asked to stop; a following one then completes its run. Waits
    /// until no worker runs it (at most two leases). The cut-over and an undo both begin with it.</summary>
    internal static async Task StopFollowersAsync(MigrationConnection connection, string name, TimeSpan lease, Action<string>? log, CancellationToken cancellationToken)
    {
        var store = TrackingStore.Of(connection);
        var current = await store.GetAsync(name, cancellationToken).ConfigureAwait(false);
        if (current?.Status != TrackingStatus.Running)
        {
            return;
        }

        log?.Invoke($"Asking the processes that follow '{name}' to stop.");
        await store.PatchAsync(name, new[] { PatchOperation.Set("/stopRequested", true) }, cancellationToken).ConfigureAwait(false);
        var deadline = DateTime.UtcNow + lease + lease;
        while (DateTime.UtcNow < deadline)
        {
            await Task.Delay(250, cancellationToken).ConfigureAwait(false);
            current = await store.GetAsync(name, cancellationToken).ConfigureAwait(false);
            if (current?.Status != TrackingStatus.Running)
            {
                return;
            }
        }

        throw new MigrationException(MigrationErrorKind.AlreadyRunning, "MoveStillRunning", $"The processes following '{name}' did not stop within {(lease + lease).TotalSeconds:0} s.", name,
            "Check them (Get-MigrationStatus -Name … shows the workers), then run Complete-ContainerMove again.");
    }

    private async Task<TrackingDocument?> SetPhaseAsync(string name, string phase, Action<MoveRecord>? change, CancellationToken cancellationToken) =>
        await TrackingStore.Of(_connection).UpdateAsync(name, document =>
        {
            if (document is null || MoveRecord.Of(document) is not { } record)
            {
                return null;
            }

            document.Phase = phase;
            change?.Invoke(record);
            record.WriteTo(document);
            return document;
        }, "move", cancellationToken).ConfigureAwait(false);

    /// <summary>Deletes from the target each document whose id the source no longer holds (under
    /// the filter): a page of target ids at a time, one source query a page. Returns how many.</summary>
    internal static async Task<long> ReconcileDeletesAsync(TargetContainer source, TargetContainer target, string? filter, ResilientSender sender, CancellationToken cancellationToken)
    {
        long deleted = 0;
        var paths = target.PartitionKey.Paths.Select(p => p.Segments[0]).Append("id").Append("_etag").Distinct(StringComparer.Ordinal);
        var projection = "SELECT VALUE {" + string.Join(", ", paths.Select(n => $"{FieldPath.SqlLiteral(n)}: c[{FieldPath.SqlLiteral(n)}]")) + "} FROM c";
        using var reader = new PageReader(target.Container, null, new QueryDefinition(projection), null, 500, sender);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false) is { } page)
        {
            var ids = page.Documents.Select(d => (string?)d["id"] ?? "").Distinct(StringComparer.Ordinal).ToArray();
            var still = new HashSet<string>(StringComparer.Ordinal);
            var query = new QueryDefinition($"SELECT c.id FROM c WHERE ARRAY_CONTAINS(@ids, c.id){(filter is null ? "" : $" AND ({filter})")}").WithParameter("@ids", ids);
            using (var present = new PageReader(source.Container, null, query, null, 1000, sender))
            {
                while (await present.ReadAsync(cancellationToken).ConfigureAwait(false) is { } found)
                {
                    still.UnionWith(found.Documents.Select(d => (string?)d["id"] ?? ""));
                }
            }

            foreach (var document in page.Documents.Where(d => !still.Contains((string?)d["id"] ?? "")))
            {
                var id = (string?)document["id"] ?? "";
                using var response = await sender.SendAsync(ct => target.Container.DeleteItemStreamAsync(id, target.PartitionKey.Read(document),
                    new ItemRequestOptions { IfMatchEtag = (string?)document["_etag"] }, ct), $"Deleting document '{id}' from the target", cancellationToken).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    deleted++;
                }
                else if (response.StatusCode is not (HttpStatusCode.NotFound or HttpStatusCode.PreconditionFailed))
                {
                    throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "DeleteFailed", $"Deleting '{id}' from '{target.Name}' failed.", id);
                }
            }
        }

        return deleted;
    }

    /// <summary>-Sample: both sides counted by the service (COUNT), and <paramref name="size"/>
    /// source documents drawn uniformly at random in one pass (reservoir sampling: at most that many
    /// documents in memory), each reshaped as the copy wrote it and compared with the target's
    /// document of that id and new key, read by a point read. The target is not scanned.</summary>
    internal static async Task<MoveVerification> SampleAsync(TargetContainer source, TargetContainer target, string? filter, MoveWrites reshape, int size, long deleted,
        ResilientSender sender, CancellationToken cancellationToken)
    {
        var sourceCount = await CountAsync(source, filter, sender, cancellationToken).ConfigureAwait(false);
        var targetCount = await CountAsync(target, null, sender, cancellationToken).ConfigureAwait(false);
        var random = new Random();
        var reservoir = new List<JObject>(Math.Min(size, 100_000));
        long seen = 0;
        var query = new QueryDefinition(filter is null ? "SELECT * FROM c" : $"SELECT * FROM c WHERE {filter}");
        using (var reader = new PageReader(source.Container, null, query, null, 500, sender))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false) is { } page)
            {
                foreach (var document in page.Documents)
                {
                    seen++;
                    if (reservoir.Count < size)
                    {
                        reservoir.Add(document);
                    }
                    else if (random.NextDouble() * seen < size)
                    {
                        reservoir[random.Next(size)] = document;
                    }
                }
            }
        }

        var mismatches = new List<string>();
        foreach (var document in reservoir)
        {
            var expected = await reshape.ReshapeAsync(document, cancellationToken).ConfigureAwait(false);
            var id = (string?)expected["id"] ?? "";
            var copy = await DocumentWriter.ReadDocumentAsync(target, sender, id, target.PartitionKey.Read(expected), cancellationToken).ConfigureAwait(false);
            if (copy is null || ContentDigest.HashOf(copy) != ContentDigest.HashOf(expected))
            {
                mismatches.Add(id);
            }
        }

        return new MoveVerification(sourceCount, targetCount, "", "", deleted, reservoir.Count, mismatches);
    }

    private static Task<long> CountAsync(TargetContainer container, string? filter, ResilientSender sender, CancellationToken cancellationToken) =>
        DocumentCount.CountAsync(container, new QueryDefinition($"SELECT VALUE COUNT(1) FROM c{(filter is null ? "" : $" WHERE {filter}")}"), sender,
            new GiveUp("TransientFailuresExhausted", $"Counting the documents of '{container.Name}' kept failing.", container.Name,
                "The service is throttling or unavailable: run Complete-ContainerMove again."), cancellationToken);

    /// <summary>The digest of a container's documents (under the filter), each reshaped first when
    /// <paramref name="reshape"/> is given.</summary>
    internal static async Task<ContentDigest> DigestAsync(TargetContainer container, string? filter, MoveWrites? reshape, ResilientSender sender, CancellationToken cancellationToken)
    {
        var digest = new ContentDigest();
        var query = new QueryDefinition(filter is null ? "SELECT * FROM c" : $"SELECT * FROM c WHERE {filter}");
        using var reader = new PageReader(container.Container, null, query, null, 500, sender);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false) is { } page)
        {
            foreach (var document in page.Documents)
            {
                digest.Add(reshape is null ? document : await reshape.ReshapeAsync(document, cancellationToken).ConfigureAwait(false));
            }
        }

        return digest;
    }
}
