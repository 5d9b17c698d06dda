using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Distributed;

/// <summary>One feed range's counts in a distributed pass, stored beside the change feed
/// processor's lease of that range (in the lease container): what the range's batches changed and
/// read, and the intent of the batch being written now (<see cref="Running.ChangeIntents"/>). A
/// batch's count and the removal of its intent are one ETag-conditioned write, done before the
/// processor checkpoints the batch; so a batch is counted once however often it is delivered. Only
/// the worker holding a range's lease writes its ledger, except to recover the intent of a worker
/// that died (then the ids it counted are kept in <see cref="Recovered"/>, so that a worker that was
/// only stalled and comes back counts only the rest).</summary>
internal sealed class RangeLedgerDocument
{
    public const string KindName = "cosmosMigrations.rangeLedger";

    [JsonProperty("id")] public string Id { get; set; } = "";

    [JsonProperty("kind")] public string Kind { get; set; } = KindName;

    [JsonProperty("migration")] public string Migration { get; set; } = "";

    [JsonProperty("generation")] public int Generation { get; set; }

    [JsonProperty("step")] public int Step { get; set; }

    [JsonProperty("leaseToken")] public string LeaseToken { get; set; } = "";

    /// <summary>The feed range (as the SDK serialises it): a split's children find their parent's intent by it.</summary>
    [JsonProperty("range", NullValueHandling = NullValueHandling.Ignore)] public string? Range { get; set; }

    /// <summary>The worker that took this range over last (its first batch there writes it): only
    /// it opens batches here. A worker that lost the range and has not noticed yet (its lease
    /// renewal comes later) finishes the batch it has open, and opens no other. A split's parent
    /// is fenced by its children's owners.</summary>
    [JsonProperty("owner", NullValueHandling = NullValueHandling.Ignore)] public string? Owner { get; set; }

    [JsonProperty("processed")] public long Processed { get; set; }

    /// <summary>The documents this range's counted batches delivered to migrate (the run's own
    /// writes coming back left out): the pass's share for -MaxFailureRate.</summary>
    [JsonProperty("scanned")] public long Scanned { get; set; }

    [JsonProperty("intent", NullValueHandling = NullValueHandling.Ignore)] public PageIntent? Intent { get; set; }

    [JsonProperty("recovered", NullValueHandling = NullValueHandling.Ignore)] public List<RecoveredIntent>? Recovered { get; set; }

    /// <summary>The latest batches counted here ("worker#batch"): a count whose write went through
    /// although its answer was lost (a timeout, then a retry) is not counted a second time.</summary>
    [JsonProperty("closed", NullValueHandling = NullValueHandling.Ignore)] public List<string>? Closed { get; set; }

    /// <summary>For a copy (<see cref="Steps.IPassWrites.CountsByVersion"/>): every source version
    /// (<c>_lsn</c>) of this range at or below it was copied and counted, or set aside as failed.
    /// A batch delivered again counts only the versions above it.</summary>
    [JsonProperty("countedLsn", NullValueHandling = NullValueHandling.Ignore)] public long? CountedLsn { get; set; }

    [JsonProperty("updatedAt")] public long UpdatedAt { get; set; }

    [JsonProperty("_etag", NullValueHandling = NullValueHandling.Ignore)] public string? ETag { get; set; }
}

/// <summary>An intent counted by another worker than its own: whose, which batch, which ids.</summary>
internal sealed class RecoveredIntent
{
    [JsonProperty("worker")] public string Worker { get; set; } = "";

    [JsonProperty("page")] public long Page { get; set; }

    [JsonProperty("ids")] public List<string> Ids { get; set; } = new();
}

/// <summary>What a copy's batch wrote, by source version (<c>_lsn</c>): the version of each changed
/// document (in the order of the changed ids; null when the feed gave none), and the highest version
/// of the documents it started. The feed delivers a range in version order and a batch starts its
/// writes in that order, so every version of the batch up to <see cref="StartedThrough"/> was written.</summary>
internal sealed record CopiedVersions(IReadOnlyList<long?> Changed, long? StartedThrough);

/// <summary>The range ledgers of one pass of one distributed run (see <see cref="RangeLedgerDocument"/>).</summary>
internal sealed class RangeLedger
{
    /// <summary>Recovered intents kept per range (a stalled worker comes back within a few leases, or not at all).</summary>
    private const int RecoveredCap = 8;

    /// <summary>Batches remembered as counted per range (a retried write comes within seconds).</summary>
    private const int ClosedCap = 16;

    private const int MaxConflicts = 16;

    private readonly Container _container;
    private readonly string _migration;
    private readonly int _generation;
    private readonly int _step;
    private readonly ResilientSender _sender;

    public RangeLedger(Container container, string migration, int generation, int step, ResilientSender? sender = null)
    {
        _container = container;
        _migration = migration;
        _generation = generation;
        _step = step;
        _sender = sender ?? ResilientSender.Ungated;
    }

    /// <summary>The prefix of every ledger id of a migration (not the processor's lease prefix, so the SDK never reads them as leases).</summary>
    public static string Prefix(string migration) => migration + "|ledger|";

    public string IdOf(string leaseToken) => $"{Prefix(_migration)}g{_generation}|s{_step}|{leaseToken}";

    public async Task<RangeLedgerDocument?> GetAsync(string id, CancellationToken cancellationToken)
    {
        using var response = await _sender.SendAsync(ct => _container.ReadItemStreamAsync(id, new PartitionKey(id), cancellationToken: ct), $"Reading '{id}'", cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        Ensure(response, id);
        var document = DocumentJson.Read<RangeLedgerDocument>(response.Content);
        document.ETag = response.Headers.ETag;
        return document;
    }

    /// <summary>Every ledger of this pass (a query over the lease container's ledger ids).</summary>
    public async Task<IReadOnlyList<RangeLedgerDocument>> ListAsync(CancellationToken cancellationToken)
    {
        var query = new QueryDefinition("SELECT * FROM c WHERE STARTSWITH(c.id, @prefix) AND c.kind = @kind")
            .WithParameter("@prefix", $"{Prefix(_migration)}g{_generation}|s{_step}|").WithParameter("@kind", RangeLedgerDocument.KindName);
        var ledgers = await _sender.QueryAllAsync(_container, query, new GiveUp("TransientFailuresExhausted", "Reading the feed ranges' counts kept failing.", _migration),
            cancellationToken).ConfigureAwait(false);
        return ledgers.Select(o => o.ToObject<RangeLedgerDocument>(DocumentJson.Serializer)!).ToList();
    }

    /// <summary>Changes one ledger under its ETag (created when missing): <paramref name="apply"/> gets
    /// the latest copy and returns false to write nothing; on a conflict it decides again on a fresh
    /// read. Returns the ledger as written (or as last read when declined).</summary>
    public async Task<RangeLedgerDocument> UpdateAsync(string leaseToken, string? range, Func<RangeLedgerDocument, bool> apply, CancellationToken cancellationToken,
        RangeLedgerDocument? known = null, string? id = null)
    {
        id ??= IdOf(leaseToken);
        var latest = known ?? await GetAsync(id, cancellationToken).ConfigureAwait(false);
        for (var attempt = 0; attempt < MaxConflicts; attempt++)
        {
            var next = latest ?? new RangeLedgerDocument { Id = id, Migration = _migration, Generation = _generation, Step = _step, LeaseToken = leaseToken, Range = range };
            var etag = latest?.ETag;
            if (!apply(next))
            {
                return next;
            }

            next.UpdatedAt = Clock.NowMs();
            var json = JObject.FromObject(next, DocumentJson.Serializer);
            json.Remove("_etag");
            using var response = await _sender.SendAsync(() => DocumentJson.ToStream(json), (body, ct) => etag is null
                    ? _container.CreateItemStreamAsync(body, new PartitionKey(id), new ItemRequestOptions { EnableContentResponseOnWrite = false }, ct)
                    : _container.ReplaceItemStreamAsync(body, id, new PartitionKey(id), new ItemRequestOptions { IfMatchEtag = etag, EnableContentResponseOnWrite = false }, ct),
                $"Recording counts in '{id}'", cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                next.ETag = response.Headers.ETag;
                return next;
            }

            if (response.StatusCode is not (HttpStatusCode.PreconditionFailed or HttpStatusCode.Conflict or HttpStatusCode.NotFound))
            {
                Ensure(response, id);
            }

            latest = await GetAsync(id, cancellationToken).ConfigureAwait(false);
        }

        throw new MigrationException(MigrationErrorKind.ServiceError, "TrackingUpdateContended",
            $"The counts of feed range {leaseToken} of '{_migration}' kept changing; they were not recorded.", _migration, "Start the migration again: it resumes from its checkpoints.");
    }

    /// <summary>Whether serialised feed range <paramref name="outer"/> holds all of <paramref name="inner"/> (a split's parent holds its children).</summary>
    public static bool Contains(string? outer, string? inner)
    {
        if (outer is null || inner is null)
        {
            return false;
        }

        var (outerMin, outerMax) = Bounds(outer);
        var (innerMin, innerMax) = Bounds(inner);
        return string.CompareOrdinal(outerMin, innerMin) <= 0 && string.CompareOrdinal(innerMax, outerMax) <= 0;
    }

    /// <summary>Whether two serialised feed ranges overlap (a split's child lies inside its parent).</summary>
    public static bool Overlap(string? a, string? b)
    {
        if (a is null || b is null)
        {
            return false;
        }

        var (aMin, aMax) = Bounds(a);
        var (bMin, bMax) = Bounds(b);
        return string.CompareOrdinal(aMin, bMax) < 0 && string.CompareOrdinal(bMin, aMax) < 0;
    }

    private static (string Min, string Max) Bounds(string range)
    {
        var json = JObject.Parse(range);
        var bounds = json["Range"] as JObject ?? json;
        return ((string?)bounds["min"] ?? "", (string?)bounds["max"] ?? "FF");
    }

    private static void Ensure(ResponseMessage response, string id)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "LeaseStoreFailed", $"Recording counts in '{id}' failed.", id);
        }
    }

    /// <summary>The count rule of a batch's end: its changes go to the range's count in the write that
    /// removes its intent. When another worker settled the intent meanwhile (it judged this one dead
    /// while it was only stalled), the documents it counted are not counted again. Returns what this
    /// batch adds (the ledger is changed in place), or null when this batch was counted already.</summary>
    /// <remarks>With <paramref name="copied"/> (a copy), a changed document counts only if its source
    /// version is above the range's <see cref="RangeLedgerDocument.CountedLsn"/>, which then rises to
    /// what the batch started: a copy cannot tell from the target that a delivery was written before.</remarks>
    public static long? Close(RangeLedgerDocument ledger, string worker, PageIntent batch, IReadOnlyList<string> changedIds, long scanned, CopiedVersions? copied = null)
    {
        var key = worker + "#" + batch.Page.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (ledger.Closed?.Contains(key) == true)
        {
            // Counted already: this is the same write again.
            return null;
        }

        ledger.Closed ??= new List<string>();
        ledger.Closed.Add(key);
        if (ledger.Closed.Count > ClosedCap)
        {
            ledger.Closed.RemoveRange(0, ledger.Closed.Count - ClosedCap);
        }

        var floor = ledger.CountedLsn;
        var counts = Enumerable.Range(0, changedIds.Count)
            .Where(i => copied is null || floor is null || copied.Changed[i] is not { } version || version > floor);
        if (ledger.Intent is { } open && open.Worker == worker && open.Page == batch.Page)
        {
            ledger.Intent = null;
        }
        else if (batch.Documents.Count > 0 && ledger.Recovered?.FirstOrDefault(r => r.Worker == worker && r.Page == batch.Page) is { } taken)
        {
            var already = new HashSet<string>(taken.Ids, StringComparer.Ordinal);
            counts = counts.Where(i => !already.Contains(changedIds[i]));
        }

        long counted = counts.Count();
        if (copied?.StartedThrough is { } through && (floor is null || through > floor))
        {
            ledger.CountedLsn = through;
        }

        ledger.Processed += counted;
        ledger.Scanned += scanned;
        return counted;
    }

    /// <summary>The fence of a takeover: <paramref name="worker"/> is the range's owner from now on
    /// (false when it already was: nothing to write).</summary>
    public static bool Fence(RangeLedgerDocument ledger, string worker)
    {
        if (ledger.Owner == worker)
        {
            return false;
        }

        ledger.Owner = worker;
        return true;
    }

    /// <summary>Whether <paramref name="worker"/> may open a batch on this range: no other worker took it over since.</summary>
    public static bool MayOpen(RangeLedgerDocument ledger, string worker) => ledger.Owner is null || ledger.Owner == worker;

    /// <summary>The count rule of a takeover: another worker's intent, still the one that was read,
    /// is counted (the documents found changed) and removed; anything else declines (false), so an
    /// intent is never counted twice.</summary>
    public static bool Settle(RangeLedgerDocument ledger, PageIntent intent, IReadOnlyList<string> changedIds)
    {
        if (ledger.Intent is not { } still || still.Worker != intent.Worker || still.Page != intent.Page)
        {
            return false;
        }

        ledger.Processed += changedIds.Count;
        NoteRecovered(ledger, intent, changedIds);
        ledger.Intent = null;
        return true;
    }

    /// <summary>Adds a recovered intent, keeping the newest few.</summary>
    public static void NoteRecovered(RangeLedgerDocument ledger, PageIntent intent, IReadOnlyList<string> ids)
    {
        ledger.Recovered ??= new List<RecoveredIntent>();
        ledger.Recovered.Add(new RecoveredIntent { Worker = intent.Worker ?? "", Page = intent.Page, Ids = ids.ToList() });
        if (ledger.Recovered.Count > RecoveredCap)
        {
            ledger.Recovered.RemoveRange(0, ledger.Recovered.Count - RecoveredCap);
        }
    }
}
