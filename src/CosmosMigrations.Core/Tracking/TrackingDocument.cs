using System.Collections.Generic;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Tracking;

/// <summary>Statuses of a migration as stored (lower case, as in the seed, plus <c>cancelled</c>).</summary>
public static class TrackingStatus
{
    public const string Running = "running";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
}

/// <summary>One document per migration in the tracking container (partition key <c>/id</c>,
/// <c>id</c> = the migration name). The seed's fields come first (name, status, startedAt,
/// completedAt, error, processed); absent values are not written at all (no nulls).</summary>
public sealed class TrackingDocument
{
    [JsonProperty("id")] public string Id { get; set; } = "";

    [JsonProperty("name")] public string Name { get; set; } = "";

    [JsonProperty("status")] public string Status { get; set; } = TrackingStatus.Running;

    [JsonProperty("startedAt")] public long StartedAt { get; set; }

    [JsonProperty("completedAt")] public long? CompletedAt { get; set; }

    [JsonProperty("error")] public string? Error { get; set; }

    [JsonProperty("processed")] public long Processed { get; set; }

    [JsonProperty("scanned")] public long Scanned { get; set; }

    [JsonProperty("container")] public string Container { get; set; } = "";

    [JsonProperty("description")] public string? Description { get; set; }

    /// <summary>The migration file it was run from (so a failed one can be resumed by name).</summary>
    [JsonProperty("source")] public string? Source { get; set; }

    [JsonProperty("checksum")] public string? Checksum { get; set; }

    [JsonProperty("cursor")] public MigrationCursor? Cursor { get; set; }

    [JsonProperty("lease")] public Lease? Lease { get; set; }

    [JsonProperty("requestCharge")] public double RequestCharge { get; set; }

    [JsonProperty("failures")] public List<DocumentFailure>? Failures { get; set; }

    /// <summary>Total failures seen (the list is capped).</summary>
    [JsonProperty("failureCount")] public long? FailureCount { get; set; }

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

    [JsonProperty("_etag", NullValueHandling = NullValueHandling.Ignore)] public string? ETag { get; set; }

    [JsonExtensionData] public IDictionary<string, JToken>? Extra { get; set; }
}

/// <summary>States of a distributed worker as stored.</summary>
public static class WorkerStates
{
    public const string Running = "running";
    public const string Stopped = "stopped";
}

/// <summary>One worker of a distributed run.</summary>
public sealed class WorkerRecord
{
    [JsonProperty("host")] public string Host { get; set; } = "";

    [JsonProperty("processId")] public int ProcessId { get; set; }

    [JsonProperty("processed")] public long Processed { get; set; }

    [JsonProperty("scanned")] public long Scanned { get; set; }

    /// <summary>Epoch ms of its last sign of life.</summary>
    [JsonProperty("heartbeat")] public long Heartbeat { get; set; }

    /// <summary>running, or stopped (it left: finished, time slice over, interrupted).</summary>
    [JsonProperty("state")] public string State { get; set; } = "running";
}

/// <summary>The documents of one feed range that a worker is changing now: each as its id and
/// the properties that hold its partition key, enough to read it again.</summary>
public sealed class PendingBatch
{
    [JsonProperty("worker")] public string Worker { get; set; } = "";

    [JsonProperty("documents")] public List<JObject> Documents { get; set; } = new();
}

/// <summary>Who holds a running migration, until when.</summary>
public sealed class Lease
{
    [JsonProperty("owner")] public LeaseOwner Owner { get; set; } = new();

    [JsonProperty("expiresAt")] public long ExpiresAt { get; set; }
}

public sealed class LeaseOwner
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
public sealed class MigrationCursor
{
    [JsonProperty("step")] public int Step { get; set; }

    [JsonProperty("ranges")] public List<RangeCursor>? Ranges { get; set; }

    /// <summary>How many catch-up scans this step has done (re-scans for documents written behind
    /// the cursor while it ran). Stored as "pass", its name in earlier versions.</summary>
    [JsonProperty("pass")] public int? CatchUpScans { get; set; }
}

public sealed class RangeCursor
{
    /// <summary>The feed range, as the SDK serialises it.</summary>
    [JsonProperty("range")] public string Range { get; set; } = "";

    [JsonProperty("continuation")] public string? Continuation { get; set; }

    [JsonProperty("done")] public bool Done { get; set; }
}

public sealed class DocumentFailure
{
    [JsonProperty("id")] public string Id { get; set; } = "";

    [JsonProperty("partitionKey")] public string PartitionKey { get; set; } = "";

    [JsonProperty("error")] public string Error { get; set; } = "";
}
