using System.IO;
using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Moving;

/// <summary>How a move carries the source's deletes into the target (the move record's
/// <c>deletes</c>, <see cref="CosmosMigrations.MigrationStatus.Deletes"/>).</summary>
internal static class MoveDeleteModes
{
    /// <summary>The source's all-versions-and-deletes change feed is followed beside the copy: a
    /// delete reaches the target while the move copies or follows.</summary>
    public const string AllVersionsFeed = "AllVersionsAndDeletes feed";

    /// <summary>The account does not serve that feed (on the service it needs continuous backup and
    /// the account's opt-in): deletes are found at the cut-over by comparing ids.</summary>
    public const string Reconciled = "Reconciled at cut-over";
}

/// <summary>Carries a move's deletes while it copies, from the source's all-versions-and-deletes
/// (AVAD) change feed, which the latest-version feed the copy reads does not have.
/// <list type="bullet">
/// <item>It is anchored once, when the move first starts and before its copy reads anything: the
/// feed is read from "now" on every range until nothing is left, and that continuation (one LSN a
/// range) is stored (<see cref="CheckpointId"/>, in the lease container). It goes on from there on
/// every resume, so no delete made while no process ran is missed. (The SDK's AVAD processor starts
/// a range from "now" at its first read and checkpoints only after a delivered batch: a range
/// without changes would start anew at each resume and lose the deletes in between.)</item>
/// <item>One worker reads it at a time, the checkpoint's owner until its lease expires (deletes
/// are few); the SDK's iterator follows splits within the continuation.</item>
/// <item>A delete of id X under source key K: the target's documents of id X are read (a query by
/// id: the target key may come from an operation), the source is asked whether X/K exists again
/// (re-created since: then the copy carries it), and only then the target's document is deleted,
/// conditioned on the ETag read first, so a copy written meanwhile is never deleted.</item>
/// </list>
/// The copy may write a version it read before the delete after it (a race between the two feeds):
/// each delete is looked at again on the next two passes (about a second apart), which removes such a
/// late copy while the move runs; past that (or beyond 1,000 recent deletes), the cut-over's
/// reconciliation, which always runs, removes it.</summary>
internal sealed class MoveDeletes
{
    private readonly Container _leases;
    private readonly TargetContainer _source;
    private readonly IReadOnlyList<string> _sourcePaths;
    private readonly TargetContainer _target;
    private readonly string _move;
    private readonly string _worker;
    private readonly TimeSpan _leaseDuration;
    private readonly Action<string>? _log;
    private readonly Func<JObject, CancellationToken, Task<JObject>> _reshape;
    private readonly ResilientSender _sender = ResilientSender.Ungated;

    /// <summary>Recent deletes, looked at again on the next passes: the copy may have read the
    /// document before its delete and write it after (when it was not in the target yet, or after
    /// this worker deleted it). Bounded; the cut-over's reconciliation covers the rest.</summary>
    private readonly List<PendingDelete> _recent = new();

    private const int RecheckPasses = 2;
    private const int RecentCap = 1000;

    private sealed record PendingDelete(string Id, JObject Keyed, bool Whole, double Crts, int PassesLeft);

    /// <summary><paramref name="reshape"/> is the move's document as the copy writes it (its
    /// operations applied): with a delete's previous version, it gives the copy's key.</summary>
    public MoveDeletes(Container leases, TargetContainer source, IReadOnlyList<string> sourcePaths, TargetContainer target, string move, string worker, TimeSpan leaseDuration,
        Func<JObject, CancellationToken, Task<JObject>> reshape, Action<string>? log)
    {
        _reshape = reshape;
        _leases = leases;
        _source = source;
        _sourcePaths = sourcePaths;
        _target = target;
        _move = move;
        _worker = worker;
        _leaseDuration = leaseDuration;
        _log = log;
    }

    /// <summary>Where a warning goes (the command's warning stream); the log when null.</summary>
    public Action<string>? Warn { get; init; }

    /// <summary>Whether a cut-over reconciles the deletes this follower misses (a move: yes; a
    /// reverse sync, which has no cut-over: no).</summary>
    public bool ReconciledAtCutOver { get; init; } = true;

    /// <summary>The id of a move's AVAD checkpoint in the lease container (not under the
    /// processor's lease names, which a new run's start clears).</summary>
    public static string CheckpointId(string move) => move + "|deletes";

    private TimeSpan PollInterval => TimeSpan.FromMilliseconds(Math.Clamp(_leaseDuration.TotalMilliseconds / 6, 100, 1000));

    /// <summary>Whether the source serves the AVAD feed, anchoring the move's checkpoint at "now" when
    /// it has none yet (kept when it has: a resumed move goes on from it). A 400 means no. Quiet when
    /// anchored ahead of a follower that may never run (a reverse sync's, at the cut-over).</summary>
    public async Task<bool> AnchorAsync(CancellationToken cancellationToken, bool quiet = false)
    {
        if (await ReadCheckpointAsync(cancellationToken).ConfigureAwait(false) is not null)
        {
            return true;
        }

        var (supported, continuation, refusal) = await ReadToNowAsync(cancellationToken).ConfigureAwait(false);
        if (!supported)
        {
            if (quiet)
            {
                return false;
            }

            _log?.Invoke($"'{_source.Name}' does not serve the all-versions-and-deletes change feed ({refusal}): deletes are reconciled at the cut-over.");
            return false;
        }

        var checkpoint = new DeletesCheckpoint { Id = CheckpointId(_move), Continuation = continuation, AnchoredAt = Clock.NowMs() };
        using var response = await _sender.SendAsync(ct => _leases.CreateItemStreamAsync(DocumentJson.ToStream(JObject.FromObject(checkpoint)), new PartitionKey(checkpoint.Id), cancellationToken: ct),
            "Anchoring the move's deletes feed", cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode && response.StatusCode != HttpStatusCode.Conflict)
        {
            throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "DeletesFeedNotAnchored",
                $"Recording where the deletes of '{_source.Name}' are followed from failed.", _move);
        }

        if (!quiet)
        {
            _log?.Invoke($"Following the deletes of '{_source.Name}' from its all-versions-and-deletes change feed, from now on.");
        }

        return true;
    }

    /// <summary>Reads the whole feed from now until every range answered "nothing new": the
    /// continuation then holds one position a range. A 400 is an account without the feed.</summary>
    private async Task<(bool Supported, string? Continuation, string? Refusal)> ReadToNowAsync(CancellationToken cancellationToken)
    {
        using var iterator = _source.Container.GetChangeFeedStreamIterator(ChangeFeedStartFrom.Now(), ChangeFeedMode.AllVersionsAndDeletes);
        while (true)
        {
            using var response = await _sender.SendAsync(ct => iterator.ReadNextAsync(ct), "Reading the all-versions-and-deletes change feed", cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotModified)
            {
                return (true, response.ContinuationToken, null);
            }

            if (response.StatusCode == HttpStatusCode.BadRequest)
            {
                return (false, null, Refusal(response));
            }

            response.EnsureSuccessStatusCode();
            // Changes after "now" while anchoring: nothing is copied yet, so nothing to delete.
        }
    }

    /// <summary>Follows the feed until <paramref name="cancellationToken"/> (the copy ended), while
    /// this worker owns the checkpoint; otherwise waits to take it over when its owner's lease ends.
    /// A pass under way when the copy ends is finished (so what it deleted is counted), unless
    /// <paramref name="abort"/> (Ctrl+C) stops it.</summary>
    public async Task FollowAsync(CancellationToken cancellationToken, CancellationToken abort)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var owned = await PassAsync(abort).ConfigureAwait(false);
                await Task.Delay(owned ? PollInterval : _leaseDuration / 3, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested || abort.IsCancellationRequested)
        {
            // The copy ended: DrainAsync reads what is left.
        }
        catch (Exception ex) when (ex is MigrationException or CosmosException)
        {
            // The copy goes on; the cut-over's reconciliation finds the deletes not carried.
            _log?.Invoke($"Stopped following the deletes of '{_source.Name}' ({CosmosErrors.FirstLine(ex.Message)}): the cut-over reconciles them.");
        }
    }

    /// <summary>Reads the feed to its end once more (the copy returned at zero lag, or the cut-over
    /// drains), then releases the checkpoint. Returns false when another live worker owns it.</summary>
    public async Task<bool> DrainAsync(CancellationToken cancellationToken)
    {
        var drained = false;
        try
        {
            drained = await PassAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is MigrationException or CosmosException)
        {
            _log?.Invoke($"Could not read the deletes of '{_source.Name}' to the end ({CosmosErrors.FirstLine(ex.Message)}): the cut-over reconciles them.");
        }

        await ReleaseAsync(cancellationToken).ConfigureAwait(false);
        return drained;
    }

    /// <summary>One read of the feed to its end if this worker owns (or can take) the checkpoint.</summary>
    private async Task<bool> PassAsync(CancellationToken cancellationToken)
    {
        if (await ReadCheckpointAsync(cancellationToken).ConfigureAwait(false) is not { } found)
        {
            return false;
        }

        var checkpoint = found.Checkpoint;
        string? etag = found.ETag;

        var now = Clock.NowMs();
        if (checkpoint.Owner is { } owner && owner != _worker && checkpoint.ExpiresAt > now)
        {
            return false;
        }

        // Taken, or renewed once half of this worker's lease is gone (not on every poll).
        if (checkpoint.Owner != _worker || checkpoint.ExpiresAt - now < (long)(_leaseDuration.TotalMilliseconds / 2))
        {
            checkpoint.Owner = _worker;
            checkpoint.ExpiresAt = now + (long)_leaseDuration.TotalMilliseconds;
            if ((etag = await SaveAsync(checkpoint, etag, cancellationToken).ConfigureAwait(false)) is null)
            {
                return false; // another worker took it meanwhile
            }
        }

        if (_recent.Count > 0)
        {
            var again = _recent.ToList();
            _recent.Clear();
            foreach (var pending in again)
            {
                await DeleteCopiesAsync(pending.Id, pending.Keyed, pending.Whole, pending.Crts, checkpoint, cancellationToken).ConfigureAwait(false);
                if (pending.PassesLeft > 1)
                {
                    _recent.Add(pending with { PassesLeft = pending.PassesLeft - 1 });
                }
            }
        }

        using var iterator = _source.Container.GetChangeFeedStreamIterator(ChangeFeedStartFrom.ContinuationToken(checkpoint.Continuation), ChangeFeedMode.AllVersionsAndDeletes,
            new ChangeFeedRequestOptions { PageSizeHint = 100 });
        while (true)
        {
            using var response = await _sender.SendAsync(ct => iterator.ReadNextAsync(ct), "Reading the all-versions-and-deletes change feed", cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotModified)
            {
                if (response.ContinuationToken != checkpoint.Continuation)
                {
                    checkpoint.Continuation = response.ContinuationToken;
                    etag = await SaveAsync(checkpoint, etag, cancellationToken).ConfigureAwait(false);
                }

                return etag is not null;
            }

            if (response.StatusCode == HttpStatusCode.BadRequest)
            {
                // The feed was served when the checkpoint was anchored: a 400 now is a continuation
                // older than the feed's retention (the move or its reverse sync did not run for that long).
                return await ReanchorAsync(checkpoint, etag, Refusal(response), cancellationToken).ConfigureAwait(false);
            }

            if (!response.IsSuccessStatusCode)
            {
                throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "DeletesFeedFailed",
                    $"Reading the all-versions-and-deletes change feed of '{_source.Name}' failed.", _move,
                    "Start the move again: its deletes go on from their checkpoint, and the cut-over reconciles whatever is left.");
            }

            foreach (var change in DocumentJson.ReadPage(response.Content).OfType<JObject>())
            {
                if (change["metadata"] is JObject metadata && (string?)metadata["operationType"] == "delete")
                {
                    await ApplyAsync(change, metadata, checkpoint, cancellationToken).ConfigureAwait(false);
                }
            }

            checkpoint.Continuation = response.ContinuationToken;
            checkpoint.ExpiresAt = Clock.NowMs() + (long)_leaseDuration.TotalMilliseconds;
            if ((etag = await SaveAsync(checkpoint, etag, cancellationToken).ConfigureAwait(false)) is null)
            {
                // Taken over after this worker's lease ran out: the new owner reads the page again.
                return false;
            }
        }
    }

    /// <summary>What the service said in a 400's body (its "message"), else the SDK's summary.</summary>
    private static string Refusal(ResponseMessage response)
    {
        try
        {
            if (response.Content is { } content && DocumentJson.Read<JObject>(content)?["message"] is JValue { Type: JTokenType.String } message)
            {
                return CosmosErrors.FirstLine((string)message!);
            }
        }
        catch (Newtonsoft.Json.JsonException)
        {
            // Not JSON: the summary below.
        }

        return CosmosErrors.FirstLine(response.ErrorMessage ?? response.StatusCode.ToString());
    }

    /// <summary>Follows the feed again from now, after its continuation outlived the retention, and
    /// says what that means: for a move, the deletes in between reach the target at the cut-over's
    /// reconciliation; for a reverse sync, which has none, they were not carried.</summary>
    private async Task<bool> ReanchorAsync(DeletesCheckpoint checkpoint, string? etag, string refusal, CancellationToken cancellationToken)
    {
        var (supported, continuation, _) = await ReadToNowAsync(cancellationToken).ConfigureAwait(false);
        if (!supported)
        {
            throw new MigrationException(MigrationErrorKind.ServiceError, "DeletesFeedFailed",
                $"The all-versions-and-deletes change feed of '{_source.Name}' refused to be read ({refusal}).", _move,
                "Check the container's change feed policy; the cut-over reconciles the deletes a move did not carry.");
        }

        checkpoint.Continuation = continuation;
        checkpoint.Reanchored = (checkpoint.Reanchored ?? 0) + 1;
        checkpoint.ExpiresAt = Clock.NowMs() + (long)_leaseDuration.TotalMilliseconds;
        etag = await SaveAsync(checkpoint, etag, cancellationToken).ConfigureAwait(false);
        (Warn ?? _log)?.Invoke($"The deletes of '{_source.Name}' could not be read on from where '{_move}' left them: that position in the all-versions-and-deletes change feed is older than the feed's retention (the service answered: {refusal}). They are followed again from now. " +
            (ReconciledAtCutOver
                ? $"Those made in between reach '{_target.Name}' at the cut-over: Complete-ContainerMove reconciles them."
                : $"Those made in between were not carried into '{_target.Name}': documents deleted from '{_source.Name}' in that time may still be in '{_target.Name}'."));
        return etag is not null;
    }

    /// <summary>Deletes from the target the copy of a document deleted in the source.</summary>
    private async Task ApplyAsync(JObject change, JObject metadata, DeletesCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        var id = (string?)metadata["id"] ?? (string?)change["previous"]?["id"];
        if (string.IsNullOrEmpty(id))
        {
            return;
        }

        // The source key of the deleted version: its previous image, else the metadata's key.
        var previous = change["previous"] as JObject;
        var keyed = previous ?? KeyDocument(metadata["partitionKey"] as JObject);
        var crts = (double?)metadata["crts"] ?? 0;
        checkpoint.Seen++;
        await DeleteCopiesAsync(id!, keyed, previous is not null, crts, checkpoint, cancellationToken).ConfigureAwait(false);
        if (_recent.Count < RecentCap)
        {
            _recent.Add(new PendingDelete(id!, keyed, previous is not null, crts, RecheckPasses));
        }
    }

    private async Task DeleteCopiesAsync(string id, JObject keyed, bool whole, double crts, DeletesCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        var candidates = (whole ? await CopyOfAsync(id, keyed, cancellationToken).ConfigureAwait(false) : null)
            ?? await TargetCopiesAsync(id, keyed, cancellationToken).ConfigureAwait(false);
        if (candidates.Count == 0)
        {
            return; // not copied (yet, or the filter leaves it out)
        }

        // Re-created in the source since: the copy carries its new version.
        using (var read = await _sender.SendAsync(ct => _source.Container.ReadItemStreamAsync(id, _source.PartitionKey.Read(keyed), cancellationToken: ct),
                   $"Reading document '{id}' of the source", cancellationToken).ConfigureAwait(false))
        {
            if (read.IsSuccessStatusCode)
            {
                return;
            }
        }

        foreach (var copy in candidates)
        {
            using var response = await _sender.SendAsync(ct => _target.Container.DeleteItemStreamAsync(id, _target.PartitionKey.Read(copy),
                new ItemRequestOptions { IfMatchEtag = (string?)copy["_etag"] }, ct), $"Deleting document '{id}' from the target", cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                checkpoint.Deleted++;
                var latency = crts > 0 ? Math.Max(0, Clock.NowMs() - (long)(crts * 1000)) : 0;
                checkpoint.LatencyMsTotal += latency;
                checkpoint.LatencyMsMax = Math.Max(checkpoint.LatencyMsMax, latency);
                _log?.Invoke($"Deleted '{id}' from '{_target.Name}' ({latency} ms after its delete in '{_source.Name}').");
            }
            else if (response.StatusCode is not (HttpStatusCode.NotFound or HttpStatusCode.PreconditionFailed))
            {
                throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "DeleteFailed", $"Deleting '{id}' from '{_target.Name}' failed.", id);
            }
        }
    }

    /// <summary>With the deleted version (the feed's previous image): its copy, read by a point
    /// read under the key the copy gave it; null when the operations fail on it (then queried).</summary>
    private async Task<List<JObject>?> CopyOfAsync(string id, JObject previous, CancellationToken cancellationToken)
    {
        PartitionKey key;
        try
        {
            key = _target.PartitionKey.Read(await _reshape(previous, cancellationToken).ConfigureAwait(false));
        }
        catch (Operations.DocumentOperationException)
        {
            return null;
        }

        var copy = await Steps.DocumentWriter.ReadDocumentAsync(_target, _sender, id, key, cancellationToken).ConfigureAwait(false);
        return copy is null ? new List<JObject>() : new List<JObject> { copy };
    }

    /// <summary>The target's documents of that id that are the copy of the deleted one: those
    /// carrying its source key (a target document whose operations removed the source key's fields
    /// is taken when it is the only one of that id).</summary>
    private async Task<List<JObject>> TargetCopiesAsync(string id, JObject keyed, CancellationToken cancellationToken)
    {
        var found = new List<JObject>();
        var query = new QueryDefinition("SELECT * FROM c WHERE c.id = @id").WithParameter("@id", id);
        await _sender.RunAsync(async ct =>
        {
            found.Clear();
            using var iterator = _target.Container.GetItemQueryStreamIterator(query);
            while (iterator.HasMoreResults)
            {
                using var page = await iterator.ReadNextAsync(ct).ConfigureAwait(false);
                page.EnsureSuccessStatusCode();
                found.AddRange(DocumentJson.ReadPage(page.Content).OfType<JObject>());
            }

            return true;
        }, new GiveUp("TransientFailuresExhausted", $"Looking up document '{id}' in the target kept failing.", _target.Name), cancellationToken).ConfigureAwait(false);
        var carrying = found.Where(d => _source.PartitionKey.Paths.All(p => DocumentJson.Get(d, p) is not null)).ToList();
        return carrying.Count > 0 ? carrying.Where(d => _source.PartitionKey.SameKey(d, keyed)).ToList() : found.Count == 1 ? found : new List<JObject>();
    }

    /// <summary>A document holding only the source key's values, from the feed metadata's key
    /// (property name, or path without its leading '/', to value).</summary>
    private JObject KeyDocument(JObject? key)
    {
        var document = new JObject();
        if (key is null)
        {
            return document;
        }

        foreach (var path in _sourcePaths)
        {
            var segments = path.TrimStart('/').Split('/');
            var value = key[path.TrimStart('/')] ?? key[segments[^1]];
            if (value is null)
            {
                continue;
            }

            var node = document;
            foreach (var segment in segments[..^1])
            {
                node = (JObject)(node[segment] ??= new JObject());
            }

            node[segments[^1]] = value.DeepClone();
        }

        return document;
    }

    private async Task<(DeletesCheckpoint Checkpoint, string? ETag)?> ReadCheckpointAsync(CancellationToken cancellationToken)
    {
        var id = CheckpointId(_move);
        using var response = await _sender.SendAsync(ct => _leases.ReadItemStreamAsync(id, new PartitionKey(id), cancellationToken: ct), "Reading the deletes feed's checkpoint", cancellationToken)
            .ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(response.Content);
        var checkpoint = JsonConvert.DeserializeObject<DeletesCheckpoint>(await reader.ReadToEndAsync().ConfigureAwait(false))!;
        return (checkpoint, response.Headers.ETag);
    }

    /// <summary>Writes the checkpoint if it is still at <paramref name="etag"/>; returns its new ETag, or null when another worker wrote it.</summary>
    private async Task<string?> SaveAsync(DeletesCheckpoint checkpoint, string? etag, CancellationToken cancellationToken)
    {
        using var response = await _sender.SendAsync(ct => _leases.ReplaceItemStreamAsync(DocumentJson.ToStream(JObject.FromObject(checkpoint)), checkpoint.Id, new PartitionKey(checkpoint.Id),
            new ItemRequestOptions { IfMatchEtag = etag }, ct), "Saving the deletes feed's checkpoint", CancellationToken.None).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccessStatusCode();
        return response.Headers.ETag;
    }

    /// <summary>Gives the checkpoint up (this worker stops), so another worker may take it at once.</summary>
    public async Task ReleaseAsync(CancellationToken cancellationToken)
    {
        if (await ReadCheckpointAsync(cancellationToken).ConfigureAwait(false) is not { } found || found.Checkpoint.Owner != _worker)
        {
            return;
        }

        found.Checkpoint.Owner = null;
        found.Checkpoint.ExpiresAt = 0;
        await SaveAsync(found.Checkpoint, found.ETag, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes a move's checkpoint (its undo); returns how many documents it deleted (0 or 1).</summary>
    public static async Task<int> ForgetAsync(Container leases, string move, CancellationToken cancellationToken)
    {
        var id = CheckpointId(move);
        using var response = await ResilientSender.Ungated.SendAsync(ct => leases.DeleteItemStreamAsync(id, new PartitionKey(id), cancellationToken: ct), "Deleting the deletes feed's checkpoint",
            cancellationToken).ConfigureAwait(false);
        return response.IsSuccessStatusCode ? 1 : 0;
    }

    /// <summary>What a move's deletes feed has done so far (null when it has no checkpoint).</summary>
    public static async Task<DeletesCheckpoint?> ReadAsync(Container leases, string move, CancellationToken cancellationToken)
    {
        var id = CheckpointId(move);
        using var response = await ResilientSender.Ungated.SendAsync(ct => leases.ReadItemStreamAsync(id, new PartitionKey(id), cancellationToken: ct), "Reading the deletes feed's checkpoint",
            cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            return null;
        }

        using var reader = new StreamReader(response.Content);
        return JsonConvert.DeserializeObject<DeletesCheckpoint>(await reader.ReadToEndAsync().ConfigureAwait(false));
    }
}

/// <summary>A move's position in the source's AVAD feed and what it carried (one document in the
/// lease container, owned by one worker at a time).</summary>
internal sealed class DeletesCheckpoint
{
    [JsonProperty("id")] public string Id { get; set; } = "";

    [JsonProperty("continuation")] public string? Continuation { get; set; }

    [JsonProperty("anchoredAt")] public long AnchoredAt { get; set; }

    [JsonProperty("owner")] public string? Owner { get; set; }

    [JsonProperty("expiresAt")] public long ExpiresAt { get; set; }

    /// <summary>Deletes read from the feed.</summary>
    [JsonProperty("seen")] public long Seen { get; set; }

    /// <summary>Documents deleted from the target.</summary>
    [JsonProperty("deleted")] public long Deleted { get; set; }

    /// <summary>The time from each delete in the source to its delete in the target, summed (ms).</summary>
    [JsonProperty("latencyMsTotal")] public long LatencyMsTotal { get; set; }

    [JsonProperty("latencyMsMax")] public long LatencyMsMax { get; set; }

    /// <summary>Times the continuation had outlived the feed's retention and was anchored at "now"
    /// again (the deletes in between were not read from the feed).</summary>
    [JsonProperty("reanchored", NullValueHandling = NullValueHandling.Ignore)] public int? Reanchored { get; set; }
}
