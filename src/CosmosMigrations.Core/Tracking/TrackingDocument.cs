using CosmosMigrations.Errors;
using CosmosMigrations.Journal;

namespace CosmosMigrations.Tracking;

/// <summary>Statuses of a migration as stored (lower case, as in the seed, plus <c>cancelled</c>,
/// and <c>undone</c> once Undo-SchemaMigration returned its documents to what they were).</summary>
internal static class TrackingStatus
{
    public const string Running = "running";
    public const string Completed = "completed";

    /// <summary>Went through every step, with documents that could not be migrated (in the failure
    /// store) within -MaxFailures and -MaxFailureRate: done, but not clean.</summary>
    public const string CompletedWithFailures = "completedWithFailures";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
    public const string Undone = "undone";
}

/// <summary>One document per migration in the tracking container (partition key <c>/id</c>,
/// <c>id</c> = the migration name). The seed's fields come first (name, status, startedAt,
/// completedAt, error, processed); absent values are not written at all (no nulls).</summary>
internal sealed class TrackingDocument
{
    [JsonProperty("id")] public string Id { get; set; } = "";

    [JsonProperty("name")] public string Name { get; set; } = "";

    [JsonProperty("status")] public string Status { get; set; } = TrackingStatus.Running;

    [JsonProperty("startedAt")] public long StartedAt { get; set; }

    [JsonProperty("completedAt")] public long? CompletedAt { get; set; }

    [JsonProperty("error")] public string? Error { get; set; }

    /// <summary>The stable id of <see cref="Error"/> (e.g. FailureRateExceeded), so that every
    /// process of a distributed run reports the same error as the one that ended it.</summary>
    [JsonProperty("errorId", NullValueHandling = NullValueHandling.Ignore)] public string? ErrorId { get; set; }

    [JsonProperty("processed")] public long Processed { get; set; }

    [JsonProperty("scanned")] public long Scanned { get; set; }

    /// <summary>Of <see cref="Scanned"/>, the deliveries of a distributed run that were its own
    /// writes coming back through the change feed (nothing to do).</summary>
    [JsonProperty("echoes", NullValueHandling = NullValueHandling.Ignore)] public long? Echoes { get; set; }

    /// <summary>The documents the run read to migrate: what -MaxFailureRate is a share of (a
    /// distributed run's own writes coming back are not documents it could fail on).</summary>
    [JsonIgnore] public long Seen => Math.Max(0, Scanned - (Echoes ?? 0));

    [JsonProperty("container")] public string Container { get; set; } = "";

    [JsonProperty("description")] public string? Description { get; set; }

    /// <summary>The migration file it was run from (so a failed one can be resumed by name).</summary>
    [JsonProperty("source")] public string? Source { get; set; }

    /// <summary>An inline migration's or a backfill's definition, to resume it by name.</summary>
    [JsonProperty("definition", NullValueHandling = NullValueHandling.Ignore)] public Definitions.StoredDefinition? Definition { get; set; }

    [JsonProperty("checksum")] public string? Checksum { get; set; }

    [JsonProperty("cursor")] public MigrationCursor? Cursor { get; set; }

    [JsonProperty("lease")] public Lease? Lease { get; set; }

    [JsonProperty("requestCharge")] public double RequestCharge { get; set; }

    [JsonProperty("failures")] public List<DocumentFailure>? Failures { get; set; }

    /// <summary>Total failures seen (the list is capped): documents in the failure store now.</summary>
    [JsonProperty("failureCount")] public long? FailureCount { get; set; }

    /// <summary>The same documents by class (<see cref="FailureClass"/>).</summary>
    [JsonProperty("failed", NullValueHandling = NullValueHandling.Ignore)] public FailureCounts? Failed { get; set; }

    /// <summary>Which run from the first document the failure store's entries belong to (epoch ms
    /// of that start): entries of an earlier one (before a -Force rerun) are not this run's.</summary>
    [JsonProperty("failureEpoch", NullValueHandling = NullValueHandling.Ignore)] public long? FailureEpoch { get; set; }

    /// <summary>A -RetryFailures batch under way: its documents as read, recorded before their
    /// writes, so that a retry killed between its writes and its count is counted by the next.</summary>
    [JsonProperty("retryIntent", NullValueHandling = NullValueHandling.Ignore)] public List<RetryIntent>? RetryIntent { get; set; }

    /// <summary>Set by Stop-SchemaMigration; the runner reads it at every checkpoint.</summary>
    [JsonProperty("stopRequested")] public bool? StopRequested { get; set; }

    /// <summary>Why a run ended before completion: StopRequested, MaxDuration, MaxBatches, Interrupted.</summary>
    [JsonProperty("stopReason")] public string? StopReason { get; set; }

    /// <summary>Epoch ms of the last write (checkpoint, lease renewal, status change).</summary>
    [JsonProperty("updatedAt")] public long UpdatedAt { get; set; }

    /// <summary>How many times the migration has been started (resumes included).</summary>
    [JsonProperty("runs")] public int Runs { get; set; }

    /// <summary>A total estimated at the start of a run (a server-side count), for percentages.</summary>
    [JsonProperty("estimatedTotal")] public long? EstimatedTotal { get; set; }

    /// <summary>Documents read per second by the latest run, at its last checkpoint (for rates and
    /// time remaining in Get-MigrationStatus).</summary>
    [JsonProperty("documentsPerSecond")] public double? DocumentsPerSecond { get; set; }

    /// <summary>Requests in flight the latest run's controller settled on, when the run ended.</summary>
    [JsonProperty("concurrency")] public int? Concurrency { get; set; }

    /// <summary>The controller's last decision in the latest run (why <see cref="Concurrency"/> is what it is).</summary>
    [JsonProperty("concurrencyReason")] public string? ConcurrencyReason { get; set; }

    /// <summary>"distributed" when worker processes share the run through the change feed
    /// processor; absent for a single runner.</summary>
    [JsonProperty("mode")] public string? Mode { get; set; }

    /// <summary>Distributed runs: which run of the migration (a new one on a first start or a
    /// -Force rerun, the same on a resume); part of the change feed processor's name, so that a
    /// rerun starts from the beginning while a resume continues from the leases' checkpoints.</summary>
    [JsonProperty("generation")] public int? Generation { get; set; }

    /// <summary>Distributed runs: the workers, by name, with their counts and heartbeats (changed
    /// by atomic patches, so that no count is lost).</summary>
    [JsonProperty("workers")] public Dictionary<string, WorkerRecord>? Workers { get; set; }

    /// <summary>Distributed runs: per feed range (lease token), the documents a worker is changing
    /// right now. Counted and cleared in one patch when the batch is done; a worker that died in
    /// between leaves them here, and the worker that takes the range over counts what it finds
    /// changed, so that `processed` stays exact.</summary>
    [JsonProperty("pending")] public Dictionary<string, PendingBatch>? Pending { get; set; }

    /// <summary>Distributed runs with -Follow: "following" once every document has been seen and
    /// the workers keep converting what the application writes.</summary>
    [JsonProperty("phase")] public string? Phase { get; set; }

    /// <summary>Where the before-images of this migration are kept, and what an undo needs to know
    /// about them (see <see cref="JournalInfo"/>); absent for migrations tracked before the journal.</summary>
    [JsonProperty("journal")] public JournalInfo? Journal { get; set; }

    /// <summary>Present while (and after) the migration is being undone: the run that owns the
    /// tracking document restores documents instead of changing them.</summary>
    [JsonProperty("undo")] public UndoInfo? Undo { get; set; }

    /// <summary>Documents an undo left alone because they changed after the migration wrote them.</summary>
    [JsonProperty("conflicts")] public long? Conflicts { get; set; }

    /// <summary>A few of their ids (capped).</summary>
    [JsonProperty("conflictIds")] public List<string>? ConflictIds { get; set; }

    [JsonProperty("_etag", NullValueHandling = NullValueHandling.Ignore)] public string? ETag { get; set; }

    [JsonExtensionData] public IDictionary<string, JToken>? Extra { get; set; }

    /// <summary>A deep copy through the stored form (ETag included), for decisions that must leave
    /// what was read as it was read.</summary>
    internal TrackingDocument Copy()
    {
        var copy = JObject.FromObject(this, Documents.DocumentJson.Serializer).ToObject<TrackingDocument>(Documents.DocumentJson.Serializer)!;
        copy.ETag = ETag;
        return copy;
    }
}

/// <summary>States of a distributed worker as stored.</summary>
internal static class WorkerStates
{
    public const string Running = "running";
    public const string Stopped = "stopped";
}

/// <summary>One worker of a distributed run.</summary>
internal sealed class WorkerRecord
{
    [JsonProperty("host")] public string Host { get; set; } = "";

    [JsonProperty("processId")] public int ProcessId { get; set; }

    [JsonProperty("processed")] public long Processed { get; set; }

    [JsonProperty("scanned")] public long Scanned { get; set; }

    [JsonProperty("requestCharge")] public double RequestCharge { get; set; }

    /// <summary>Epoch ms of its last sign of life.</summary>
    [JsonProperty("heartbeat")] public long Heartbeat { get; set; }

    /// <summary>running, or stopped (it left: finished, time slice over, interrupted).</summary>
    [JsonProperty("state")] public string State { get; set; } = "running";
}

/// <summary>The documents of one feed range that a worker is changing now: each as its id and
/// the properties that hold its partition key, enough to read it again.</summary>
internal sealed class PendingBatch
{
    [JsonProperty("worker")] public string Worker { get; set; } = "";

    [JsonProperty("documents")] public List<JObject> Documents { get; set; } = new();
}

/// <summary>Who holds a running migration, until when.</summary>
internal sealed class Lease
{
    [JsonProperty("owner")] public LeaseOwner Owner { get; set; } = new();

    [JsonProperty("expiresAt")] public long ExpiresAt { get; set; }
}

internal sealed class LeaseOwner
{
    [JsonProperty("host")] public string Host { get; set; } = "";

    [JsonProperty("processId")] public int ProcessId { get; set; }

    [JsonProperty("user")] public string User { get; set; } = "";

    /// <summary>Unique per run, so two runners in one process are told apart.</summary>
    [JsonProperty("runId")] public string RunId { get; set; } = "";

    public override string ToString() => $"{User}@{Host} (process {ProcessId})";
}

/// <summary>Checkpoint: which step of the migration, and per feed range the continuation token
/// after the last page whose writes all finished.</summary>
internal sealed class MigrationCursor
{
    [JsonProperty("step")] public int Step { get; set; }

    [JsonProperty("ranges")] public List<RangeCursor>? Ranges { get; set; }

    /// <summary>How many catch-up scans this step has done (re-scans for documents written behind
    /// the cursor while it ran). Stored as "pass", its name in earlier versions.</summary>
    [JsonProperty("pass")] public int? CatchUpScans { get; set; }

    /// <summary>Distributed runs: the documents changed before this step began; the migration's
    /// `processed` is this plus the sum of the step's range ledgers.</summary>
    [JsonProperty("baseProcessed", NullValueHandling = NullValueHandling.Ignore)] public long? BaseProcessed { get; set; }
}

internal sealed class RangeCursor
{
    /// <summary>The feed range, as the SDK serialises it.</summary>
    [JsonProperty("range")] public string Range { get; set; } = "";

    [JsonProperty("continuation")] public string? Continuation { get; set; }

    [JsonProperty("done")] public bool Done { get; set; }

    /// <summary>Pages of this range whose writes have started and whose changes are not counted
    /// yet: written before the page's first write, removed in the same write that counts the page
    /// (its checkpoint). A run that dies leaves them here; the next run counts what they changed
    /// before it scans (<see cref="Running.ChangeIntents"/>), so that `processed` stays exact.</summary>
    [JsonProperty("intents", NullValueHandling = NullValueHandling.Ignore)] public List<PageIntent>? Intents { get; set; }
}

/// <summary>The documents one page (or change feed batch) is about to change: each as its id, the
/// properties that hold its partition key (enough to read it again) and its <c>_etag</c> when it was
/// read. A document counts as changed by that page when its ETag moved since and it no longer needs
/// the change.</summary>
internal sealed class PageIntent
{
    /// <summary>Which page of the run (unique within one run).</summary>
    [JsonProperty("page")] public long Page { get; set; }

    /// <summary>Who wrote it (a distributed worker's name; absent for a single run).</summary>
    [JsonProperty("worker", NullValueHandling = NullValueHandling.Ignore)] public string? Worker { get; set; }

    [JsonProperty("documents")] public List<JObject> Documents { get; set; } = new();
}

/// <summary>Documents in the failure store, by class.</summary>
internal sealed class FailureCounts
{
    [JsonProperty("transform")] public long Transform { get; set; }

    [JsonProperty("refused")] public long Refused { get; set; }

    [JsonProperty("exhausted")] public long Exhausted { get; set; }

    public long Total => Transform + Refused + Exhausted;

    public void Add(FailureClass failureClass, long delta)
    {
        switch (failureClass)
        {
            case FailureClass.Transform: Transform = Math.Max(0, Transform + delta); break;
            case FailureClass.Refused: Refused = Math.Max(0, Refused + delta); break;
            default: Exhausted = Math.Max(0, Exhausted + delta); break;
        }
    }
}

/// <summary>One document of a -RetryFailures batch: its failure entry, its class when the batch
/// began, and its ETag as read.</summary>
internal sealed class RetryIntent
{
    [JsonProperty("entry")] public string Entry { get; set; } = "";

    [JsonProperty("class")] public string Class { get; set; } = "";

    [JsonProperty("key")] public JObject Key { get; set; } = new();

    [JsonProperty("step")] public int Step { get; set; }
}

internal sealed class DocumentFailure
{
    [JsonProperty("id")] public string Id { get; set; } = "";

    [JsonProperty("partitionKey")] public string PartitionKey { get; set; } = "";

    [JsonProperty("error")] public string Error { get; set; } = "";
}

/// <summary>The journal of a migration: its before-images live in <see cref="Container"/> under
/// <see cref="Id"/>, one entry per document and step. The rest is what an undo checks before it
/// writes anything (is every change recorded, may entries have expired) and what it undoes besides
/// documents (indexing policies).</summary>
internal sealed class JournalInfo
{
    /// <summary>Identifies this migration's entries: a hash of its name and container
    /// (<see cref="MigrationLifecycle.JournalId"/>), so that a migration reset and started over
    /// still undoes what it changed before the reset.</summary>
    [JsonProperty("id")] public string Id { get; set; } = "";

    /// <summary>The journal container (in the tracking container's database).</summary>
    [JsonProperty("container")] public string Container { get; set; } = "";

    /// <summary>False once any run of the migration changed documents without before-images
    /// (-NoJournal, or a run tracked before the journal existed): it cannot be undone.</summary>
    [JsonProperty("complete")] public bool Complete { get; set; }

    /// <summary>Per-entry retention in seconds (the shortest any run used); null keeps entries until undone.</summary>
    [JsonProperty("ttl")] public int? Ttl { get; set; }

    /// <summary>Epoch ms before the first entry still kept was written: with <see cref="Ttl"/>, the
    /// moment from which entries may have expired.</summary>
    [JsonProperty("since")] public long? Since { get; set; }

    /// <summary>The resource id of the target container when the journal began: a container deleted
    /// and created again under the same name is another container.</summary>
    [JsonProperty("targetRid")] public string? TargetRid { get; set; }

    /// <summary>Steps whose changed documents have entries.</summary>
    [JsonProperty("passes")] public List<int>? Passes { get; set; }

    /// <summary>Steps whose undo is exact by recomputation (fields added with a constant where there
    /// were none): their journal records keep ids and partition keys, no before-images.</summary>
    [JsonProperty("recomputed")] public List<int>? Recomputed { get; set; }

    /// <summary>Indexing policies before (and after) each AddIndex step changed them.</summary>
    [JsonProperty("indexes")] public List<IndexImage>? Indexes { get; set; }

    /// <summary>When entries may have begun to expire (epoch ms), if they expire at all: the service
    /// counts an entry's TTL from its <c>_ts</c>, in whole seconds (so from up to a second before it
    /// was written), by its own clock (so a margin of a tenth of the TTL, at most a minute, for skew).</summary>
    [JsonIgnore]
    public long? ExpiresAt => Ttl is { } ttl && Since is { } since
        ? since / 1000 * 1000 + ttl * 1000L - Math.Min(60_000L, ttl * 100L)
        : null;
}

/// <summary>An undo of the migration: when it began, and what the migration had changed then.</summary>
internal sealed class UndoInfo
{
    [JsonProperty("startedAt")] public long StartedAt { get; set; }

    /// <summary>Documents the migration had changed (its processed count) when the undo began.</summary>
    [JsonProperty("migrated")] public long Migrated { get; set; }

    /// <summary>Whether the latest undo run restored conflicting documents too (-Force).</summary>
    [JsonProperty("force")] public bool? Force { get; set; }
}
