using CosmosMigrations.Errors;
using CosmosMigrations.Tracking;

namespace CosmosMigrations;

/// <summary>The state of one migration, as Start-SchemaMigration, Invoke-Backfill and
/// Get-MigrationStatus emit it. Plain properties only: it serialises cleanly with ConvertTo-Json.</summary>
public sealed class MigrationStatus
{
    public string Name { get; set; } = "";

    public string Container { get; set; } = "";

    /// <summary>The status of a file's migration that has never run (not a tracked status).</summary>
    internal const string Pending = "pending";

    /// <summary>running, completed, failed, cancelled, undone, or pending (a file's migration not yet run).</summary>
    public string Status { get; set; } = "";

    public long Processed { get; set; }

    public long Scanned { get; set; }

    public long Failed { get; set; }

    public DateTimeOffset? StartedAt { get; set; }

    public DateTimeOffset? CompletedAt { get; set; }

    public TimeSpan? Duration { get; set; }

    public double RequestCharge { get; set; }

    /// <summary>Request units per document read, over the whole migration.</summary>
    public double? RequestChargePerDocument { get; set; }

    /// <summary>Documents read per second by the latest run.</summary>
    public double? DocumentsPerSecond { get; set; }

    /// <summary>For a running migration with an estimate: time remaining at the latest rate.</summary>
    public TimeSpan? Remaining { get; set; }

    /// <summary>Requests of this run that the service still throttled (429) after the SDK's own two
    /// retries: each made the engine halve its concurrency and wait the service's retry-after.
    /// Many mean the budget (-MaxRUPerSecond) or the container's throughput is too tight. Null
    /// when read from the tracking document.</summary>
    public long? Throttled { get; set; }

    /// <summary>Requests in flight that the run's controller settled on (this run's, or, read from
    /// the tracking document, the latest run's when it ended), and why (<see cref="ConcurrencyReason"/>).</summary>
    public int? Concurrency { get; set; }

    /// <summary>The controller's last decision, e.g. "1,210 requests/s at 24 → 1,580 requests/s at 36: raising to 54".</summary>
    public string? ConcurrencyReason { get; set; }

    public string? Error { get; set; }

    /// <summary>Documents an undo left alone because they changed after the migration wrote them
    /// (Undo-SchemaMigration -Force restores them).</summary>
    public long Conflicts { get; set; }

    /// <summary>A few of their ids.</summary>
    public IReadOnlyList<string> ConflictIds { get; set; } = Array.Empty<string>();

    /// <summary>Whether Undo-SchemaMigration can undo it now (see <see cref="UndoBlocker"/> when not).</summary>
    public bool Undoable { get; set; }

    /// <summary>Why it cannot be undone now (running, undone, no before-images, expired…), or null.</summary>
    public string? UndoBlocker { get; set; }

    /// <summary>When its before-images begin to expire (-JournalRetention), if they do.</summary>
    public DateTimeOffset? JournalExpiresAt { get; set; }

    /// <summary>What the journal keeps of the documents each step changed, e.g. "step 1: none needed
    /// (fields added with a constant ...)"; null without a journal.</summary>
    public string? BeforeImages { get; set; }

    /// <summary>An undo run, or a migration being undone.</summary>
    public bool IsUndo { get; set; }

    /// <summary>Why a run ended early: StopRequested, MaxDuration, MaxBatches, Interrupted.</summary>
    public string? StopReason { get; set; }

    /// <summary>Percentage done when a total was estimated (a server-side count at start).</summary>
    public double? PercentComplete { get; set; }

    public string? Description { get; set; }

    public string? Checksum { get; set; }

    /// <summary>The definition changed since it completed (its checksum differs).</summary>
    public bool ChecksumMismatch { get; set; }

    public string? Owner { get; set; }

    public DateTimeOffset? LeaseExpiresAt { get; set; }

    public string? Path { get; set; }

    /// <summary>What this call did: a <see cref="Running.RunOutcome"/> name (Completed, Resumed,
    /// Skipped, Stopped, Failed, LeaseLost) for a run; Pending or Read for Get-MigrationStatus.</summary>
    public string? Outcome { get; set; }

    public string? Message { get; set; }

    public IReadOnlyList<FailureRecord> Failures { get; set; } = Array.Empty<FailureRecord>();

    /// <summary>The failed documents by class (in the failure store).</summary>
    public FailedByClass FailedByClass { get; set; } = new(0, 0, 0);

    /// <summary>A distributed run's workers (empty for a single runner).</summary>
    public IReadOnlyList<WorkerStatus> Workers { get; set; } = Array.Empty<WorkerStatus>();

    /// <summary>"following" while a distributed run with -Follow converts the application's writes
    /// after having seen every document.</summary>
    public string? Phase { get; set; }

    /// <summary>A move's lag: the documents of the source's change feed not yet copied, as the
    /// change feed estimator reads them from the move's leases when the status is read (0 once
    /// completed; null for other migrations, or when the leases cannot be read).</summary>
    public long? Lag { get; set; }

    /// <summary>A move's target container (Start-ContainerMove); null for other migrations.</summary>
    public string? Target { get; set; }

    /// <summary>How a move carries the source's deletes into the target: "AllVersionsAndDeletes feed"
    /// (while it copies, where the account serves that change feed) or "Reconciled at cut-over"; null
    /// for other migrations and before the move's first start.</summary>
    public string? Deletes { get; set; }

    private static string? DescribeBeforeImages(JournalInfo? journal)
    {
        if (journal?.Passes is not { Count: > 0 } passes)
        {
            return null;
        }

        return string.Join("; ", passes.OrderBy(p => p).Select(p => $"step {(p + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)}: " +
            (journal.Recomputed?.Contains(p) == true
                ? "none needed (fields added with a constant where there were none: the undo recomputes them from ids and partition keys)"
                : "kept, one journal record a page of documents")));
    }

    internal static MigrationStatus FromTracking(TrackingDocument document, string? path = null)
    {
        DateTimeOffset? started = document.StartedAt > 0 ? Clock.FromMs(document.StartedAt) : null;
        DateTimeOffset? completed = document.CompletedAt is > 0 ? Clock.FromMs(document.CompletedAt.Value) : null;
        var end = completed ?? (document.UpdatedAt > 0 ? Clock.FromMs(document.UpdatedAt) : null);
        var now = Clock.NowMs();
        var live = MigrationLifecycle.HasLiveLease(document, now);
        var move = MoveRecord.Of(document);
        var blocker = move is null ? MigrationLifecycle.UndoBlocker(document, now) : move.UndoBlocker(document);
        return new MigrationStatus
        {
            Name = document.Name,
            Container = document.Container,
            Status = MovePhase.StatusOf(document),
            Target = move?.Target,
            Deletes = move?.Deletes,
            Processed = document.Processed,
            Scanned = document.Scanned,
            Failed = document.FailureCount ?? document.Failures?.Count ?? 0,
            StartedAt = started,
            CompletedAt = completed,
            Duration = started is not null && end is not null && end >= started ? end - started : null,
            RequestCharge = Math.Round(document.RequestCharge, 2),
            RequestChargePerDocument = document.Scanned > 0 ? Math.Round(document.RequestCharge / document.Scanned, 2) : null,
            DocumentsPerSecond = document.DocumentsPerSecond,
            Concurrency = document.Concurrency,
            ConcurrencyReason = document.ConcurrencyReason,
            Remaining = live && document.EstimatedTotal is { } total && total > document.Scanned && document.DocumentsPerSecond is > 0
                ? TimeSpan.FromSeconds(Math.Round((total - document.Scanned) / document.DocumentsPerSecond.Value))
                : null,
            Error = document.Error,
            StopReason = document.StopReason,
            PercentComplete = document.Status is TrackingStatus.Completed or TrackingStatus.CompletedWithFailures or TrackingStatus.Undone ? 100
                : document.EstimatedTotal is > 0 ? Math.Min(99.9, Math.Round(100.0 * document.Scanned / document.EstimatedTotal.Value, 1)) : null,
            Description = document.Description,
            Checksum = document.Checksum,
            Owner = live ? document.Lease!.Owner.ToString() : null,
            LeaseExpiresAt = live ? Clock.FromMs(document.Lease!.ExpiresAt) : null,
            Path = path ?? document.Source,
            Outcome = "Read",
            Failures = (document.Failures ?? new List<DocumentFailure>()).Select(f => new FailureRecord(f.Id, f.PartitionKey, f.Error)).ToList(),
            FailedByClass = new FailedByClass(document.Failed?.Transform ?? 0, document.Failed?.Refused ?? 0, document.Failed?.Exhausted ?? 0),
            Workers = (document.Workers ?? new Dictionary<string, WorkerRecord>())
                .OrderBy(w => w.Key, StringComparer.Ordinal)
                .Select(w => new WorkerStatus(w.Key, w.Value.Processed, w.Value.Scanned, Clock.FromMs(w.Value.Heartbeat), w.Value.State))
                .ToList(),
            Phase = MovePhase.Of(document),
            Conflicts = document.Conflicts ?? 0,
            ConflictIds = document.ConflictIds?.ToList() ?? new List<string>(),
            Undoable = blocker is null,
            UndoBlocker = blocker,
            JournalExpiresAt = document.Journal?.ExpiresAt is { } expires ? Clock.FromMs(expires) : null,
            BeforeImages = DescribeBeforeImages(document.Journal),
            IsUndo = document.Undo is not null,
        };
    }

    /// <summary>A migration file's migration: its tracking state when it has run (flagged when the
    /// file changed since), else <c>pending</c>.</summary>
    internal static MigrationStatus ForFile(Definitions.MigrationDefinition definition, TrackingDocument? tracked, string file)
    {
        if (tracked is null)
        {
            return new MigrationStatus
            {
                Name = definition.Name,
                Container = definition.Container,
                Status = Pending,
                Description = definition.Description,
                Path = file,
                Outcome = "Pending",
                Checksum = definition.Checksum,
            };
        }

        var status = FromTracking(tracked, file);
        status.ChecksumMismatch = tracked.Checksum is not null && tracked.Checksum != definition.Checksum;
        return status;
    }

    public override string ToString() => $"{Name}: {Status}";
}

/// <summary>A worker of a distributed run: documents it changed and read, its last sign of
/// life, running or stopped.</summary>
public sealed record WorkerStatus(string Name, long Processed, long Scanned, DateTimeOffset Heartbeat, string State)
{
    public override string ToString() => $"{Name} ({State}, {Processed} changed)";
}

/// <summary>Failed documents by class (<see cref="FailureClass"/>).</summary>
public sealed record FailedByClass(long Transform, long Refused, long Exhausted)
{
    public override string ToString() => $"Transform {Transform}, Refused {Refused}, Exhausted {Exhausted}";
}

/// <summary>A document that could not be migrated.</summary>
public sealed record FailureRecord(string Id, string PartitionKey, string Error);
