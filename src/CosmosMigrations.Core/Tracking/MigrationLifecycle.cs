using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Tracking;

/// <summary>How a start found the migration (the names are those of the status object's Outcome).</summary>
public enum StartOutcome
{
    /// <summary>Never run before: a new tracking document.</summary>
    Started,

    /// <summary>Completed before, run again from the first document (-Force).</summary>
    Rerun,

    /// <summary>Failed, cancelled, or running under an expired lease: resumed from its checkpoint.</summary>
    Resumed,

    /// <summary>Completed before: nothing to do.</summary>
    Skipped,

    /// <summary>Distributed: other workers are running it; this one joins them.</summary>
    Joined,
}

/// <summary>What a start asks for: which migration, and how.</summary>
public sealed record StartRequest(
    string Name,
    string Container,
    string Checksum,
    string? Description,
    string? Source,
    int StepCount,
    LeaseOwner Owner,
    TimeSpan LeaseDuration,
    bool Force = false,
    bool Strict = false,
    string? Worker = null)
{
    /// <summary>A worker of a distributed run (named after its host, process and run).</summary>
    public bool Distributed => Worker is not null;
}

/// <summary>What a start decided: the outcome, the document to write (for a skip, the one read),
/// a checksum warning, and whether an expired lease is being taken over (and whose it was).</summary>
public sealed record StartDecision(StartOutcome Outcome, TrackingDocument Document, string? Warning, bool TakesOverExpiredLease = false, LeaseOwner? PreviousOwner = null);

/// <summary>The rules of a migration's life, in one place, for every command: a start (new →
/// create; running under a live lease → "already running"; expired lease → take over; failed or
/// cancelled → resume; completed → skip, or run again with -Force), a stop request (only while
/// running), a reset (only when failed or cancelled) and the end of a run (completed, cancelled
/// or failed). Every write is conditioned on the ETag of what was read.</summary>
public sealed class MigrationLifecycle
{
    /// <summary>The mode of a tracking document whose run worker processes share.</summary>
    public const string DistributedMode = "distributed";

    private const int MaxStartAttempts = 10;

    private readonly TrackingStore _store;

    public MigrationLifecycle(TrackingStore store)
    {
        _store = store;
    }

    /// <summary>Takes the lease (or finds nothing to do): reads, decides, writes conditioned on
    /// the ETag; when another runner wrote in between, reads and decides again.</summary>
    public async Task<StartDecision> StartAsync(StartRequest request, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < MaxStartAttempts; attempt++)
        {
            var existing = await _store.GetAsync(request.Name, cancellationToken).ConfigureAwait(false);
            var decision = Decide(existing, request, Clock.NowMs());
            if (decision.Outcome == StartOutcome.Skipped)
            {
                return decision;
            }

            var written = existing is null
                ? await _store.TryCreateAsync(decision.Document, cancellationToken).ConfigureAwait(false)
                : decision.Outcome == StartOutcome.Joined
                    ? await JoinAsync(request, decision.Document, cancellationToken).ConfigureAwait(false)
                    : await _store.TryReplaceAsync(decision.Document, cancellationToken).ConfigureAwait(false);
            if (written)
            {
                return decision;
            }
        }

        throw new MigrationException(MigrationErrorKind.AlreadyRunning, "MigrationContended",
            $"Migration '{request.Name}' is being started by another runner at the same time.", request.Name, "Let the other runner go on.");
    }

    /// <summary>Joining workers that are running: one atomic patch that adds this worker, applied
    /// only while the run is still distributed and running (the others patch the same document
    /// all the time, so a replace conditioned on the ETag would rarely go through).</summary>
    private async Task<bool> JoinAsync(StartRequest request, TrackingDocument document, CancellationToken cancellationToken)
    {
        var worker = document.Workers![request.Worker!];
        var joined = await _store.TryPatchAsync(request.Name,
            new[] { Microsoft.Azure.Cosmos.PatchOperation.Set(WorkerPath(request.Worker!), worker) },
            $"FROM c WHERE c.status = '{TrackingStatus.Running}' AND c.mode = '{DistributedMode}'", cancellationToken).ConfigureAwait(false);
        if (joined is not null)
        {
            joined.ETag ??= document.ETag;
        }

        return joined is not null;
    }

    /// <summary>The patch path of a worker's record.</summary>
    public static string WorkerPath(string worker) => "/workers/" + Documents.FieldPath.EscapePointer(worker);

    /// <summary>Workers of a distributed run that showed a sign of life within the lease duration.</summary>
    public static IReadOnlyList<string> LiveWorkers(TrackingDocument document, long now, TimeSpan leaseDuration) =>
        (document.Workers ?? new Dictionary<string, WorkerRecord>())
            .Where(w => w.Value.State == WorkerStates.Running && w.Value.Heartbeat + (long)leaseDuration.TotalMilliseconds > now)
            .Select(w => w.Key)
            .OrderBy(w => w, StringComparer.Ordinal)
            .ToList();

    /// <summary>The start rules as a pure function of what was read, for one moment.</summary>
    public static StartDecision Decide(TrackingDocument? existing, StartRequest request, long now)
    {
        if (existing is null)
        {
            var created = new TrackingDocument
            {
                Id = request.Name,
                Name = request.Name,
                Status = TrackingStatus.Running,
                StartedAt = now,
                Container = request.Container,
                Description = request.Description,
                Source = request.Source,
                Checksum = request.Checksum,
                Cursor = new MigrationCursor { Step = 0 },
                Lease = request.Distributed ? null : NewLease(request, now),
                Runs = 1,
                UpdatedAt = now,
            };
            if (request.Distributed)
            {
                BecomeDistributed(created, request, now, newGeneration: true);
            }

            return new StartDecision(StartOutcome.Started, created, null);
        }

        if (!string.Equals(existing.Container, request.Container, StringComparison.Ordinal))
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "MigrationNameInUse",
                $"Migration '{request.Name}' is already tracked for container '{existing.Container}', not '{request.Container}'.",
                request.Name, "Give this migration its own name: names identify migrations across the whole database.");
        }

        string? warning = null;
        if (existing.Checksum is not null && existing.Checksum != request.Checksum)
        {
            warning = $"Migration '{request.Name}' changed since it {(existing.Status == TrackingStatus.Completed ? "completed" : "started")} (checksum {Short(existing.Checksum)} → {Short(request.Checksum)}).";
            if (request.Strict)
            {
                throw new MigrationException(MigrationErrorKind.InvalidState, "ChecksumMismatch", warning, request.Name,
                    "Never edit a migration that has run: write a new migration for the new change. Without -Strict this is a warning.");
            }
        }

        StartOutcome outcome;
        var takesOver = false;
        var previousOwner = existing.Lease?.Owner;
        switch (existing.Status)
        {
            case TrackingStatus.Completed when !request.Force:
                return new StartDecision(StartOutcome.Skipped, existing, warning);
            case TrackingStatus.Completed:
                existing.Processed = 0;
                existing.Scanned = 0;
                existing.RequestCharge = 0;
                existing.Failures = null;
                existing.FailureCount = null;
                existing.CompletedAt = null;
                existing.Cursor = new MigrationCursor { Step = 0 };
                existing.Workers = null;
                outcome = StartOutcome.Rerun;
                break;
            case TrackingStatus.Running when existing.Mode == DistributedMode && request.Distributed:
                // Workers are running it (or were, and died: then this one resumes it alone).
                var live = LiveWorkers(existing, now, request.LeaseDuration);
                if (live.Count == 0)
                {
                    takesOver = true;
                    outcome = StartOutcome.Resumed;
                    break;
                }

                existing.Workers![request.Worker!] = NewWorker(request, now);
                return new StartDecision(StartOutcome.Joined, existing, warning);
            case TrackingStatus.Running when existing.Mode == DistributedMode && LiveWorkers(existing, now, request.LeaseDuration) is { Count: > 0 } workers:
                throw new MigrationException(MigrationErrorKind.AlreadyRunning, "MigrationAlreadyRunning",
                    $"Migration '{request.Name}' is already running on {workers.Count} distributed worker(s): {string.Join(", ", workers)}.",
                    request.Name,
                    "Join them with -Distributed, wait for them to finish (Get-MigrationStatus -Watch), or stop them all with Stop-SchemaMigration.");
            case TrackingStatus.Running when HasLiveLease(existing, now) && existing.Lease!.Owner.RunId != request.Owner.RunId:
                var seconds = Math.Ceiling((existing.Lease.ExpiresAt - now) / 1000.0);
                throw new MigrationException(MigrationErrorKind.AlreadyRunning, "MigrationAlreadyRunning",
                    $"Migration '{request.Name}' is already running, owned by {existing.Lease.Owner} (lease expires in {seconds:0} s).",
                    request.Name,
                    "Wait for it to finish (Get-MigrationStatus -Watch), or stop it with Stop-SchemaMigration. If its process died, the lease expires by itself and the next start resumes from the checkpoint.");
            case TrackingStatus.Running:
                takesOver = true;
                outcome = StartOutcome.Resumed;
                break;
            default:
                outcome = StartOutcome.Resumed;
                break;
        }

        var wasDistributed = existing.Mode == DistributedMode;
        existing.Status = TrackingStatus.Running;
        existing.StartedAt = now;
        existing.Lease = request.Distributed ? null : NewLease(request, now);
        if (request.Distributed)
        {
            // A rerun, or a run that was single before, starts the change feed from the beginning;
            // a distributed run resumed goes on from its leases' checkpoints.
            BecomeDistributed(existing, request, now, newGeneration: outcome == StartOutcome.Rerun || !wasDistributed);
        }
        else
        {
            existing.Mode = null;
            existing.Workers = null;
            existing.Pending = null;
            existing.Phase = null;
        }

        existing.Error = null;
        existing.StopRequested = null;
        existing.StopReason = null;
        existing.Checksum = request.Checksum;
        existing.Description = request.Description;
        existing.Source = request.Source ?? existing.Source;
        existing.Runs++;
        existing.UpdatedAt = now;
        existing.Cursor ??= new MigrationCursor { Step = 0 };
        if (existing.Cursor.Step > request.StepCount)
        {
            existing.Cursor = new MigrationCursor { Step = request.StepCount };
        }

        return new StartDecision(outcome, existing, warning, takesOver, takesOver ? previousOwner : null);
    }

    /// <summary>Whether someone holds the migration now.</summary>
    public static bool HasLiveLease(TrackingDocument document, long now) =>
        document.Status == TrackingStatus.Running && document.Lease is not null && document.Lease.ExpiresAt > now;

    /// <summary>The migration to stop: it must be running.</summary>
    public async Task<TrackingDocument> GetStoppableAsync(string name, CancellationToken cancellationToken)
    {
        var current = await _store.GetRequiredAsync(name, cancellationToken).ConfigureAwait(false);
        if (current.Status != TrackingStatus.Running)
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "MigrationNotRunning",
                $"Migration '{name}' is {current.Status}, not running: there is nothing to stop.", name);
        }

        return current;
    }

    /// <summary>Sets the stop flag that runners read after every page (and distributed workers at
    /// every beat); the run then ends cancelled, resumable. One atomic patch, applied only while
    /// the migration runs: busy workers patch the same document all the time. Returns the
    /// document as written (or as found, when it had stopped meanwhile).</summary>
    public async Task<TrackingDocument?> RequestStopAsync(string name, CancellationToken cancellationToken) =>
        await _store.TryPatchAsync(name, new[] { Microsoft.Azure.Cosmos.PatchOperation.Set("/stopRequested", true) },
            $"FROM c WHERE c.status = '{TrackingStatus.Running}'", cancellationToken).ConfigureAwait(false)
        ?? await _store.GetAsync(name, cancellationToken).ConfigureAwait(false);

    /// <summary>The migration to reset: it must have failed or been cancelled.</summary>
    public async Task<TrackingDocument> GetResettableAsync(string name, CancellationToken cancellationToken)
    {
        var current = await _store.GetRequiredAsync(name, cancellationToken).ConfigureAwait(false);
        if (current.Status is not (TrackingStatus.Failed or TrackingStatus.Cancelled))
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "MigrationNotResettable",
                $"Migration '{name}' is {current.Status}: only a failed or cancelled migration can be reset.", name,
                current.Status == TrackingStatus.Running
                    ? "Stop it first with Stop-SchemaMigration."
                    : "A completed migration runs again with Start-SchemaMigration -Force.");
        }

        return current;
    }

    /// <summary>Deletes the tracking state read by <see cref="GetResettableAsync"/>, unless it
    /// changed since (another runner started it).</summary>
    public async Task ResetAsync(TrackingDocument current, CancellationToken cancellationToken)
    {
        if (!await _store.TryDeleteAsync(current, cancellationToken).ConfigureAwait(false))
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "MigrationChanged",
                $"Migration '{current.Name}' changed while it was being reset (another runner started it?); nothing was deleted.", current.Name,
                "Check Get-MigrationStatus and try again.");
        }
    }

    /// <summary>The end of a run that went through every step.</summary>
    public static void Complete(TrackingDocument document, long now)
    {
        document.Status = TrackingStatus.Completed;
        document.CompletedAt = now;
        document.Cursor = null;
        document.EstimatedTotal = null;
    }

    /// <summary>The end of a run stopped before the end (resumable): StopRequested, MaxDuration,
    /// MaxBatches or Interrupted.</summary>
    public static void Cancel(TrackingDocument document, string reason)
    {
        document.Status = TrackingStatus.Cancelled;
        document.StopReason = reason;
    }

    /// <summary>The end of a run that failed (resumable once the cause is fixed).</summary>
    public static void Fail(TrackingDocument document, string error)
    {
        document.Status = TrackingStatus.Failed;
        document.Error = error;
    }

    private static void BecomeDistributed(TrackingDocument document, StartRequest request, long now, bool newGeneration)
    {
        document.Mode = DistributedMode;
        if (newGeneration || document.Generation is null)
        {
            document.Generation = (document.Generation ?? 0) + 1;
            document.Pending = null;
        }

        document.Phase = null;
        // Patches write below these: their parents must exist.
        document.Pending ??= new Dictionary<string, PendingBatch>();
        document.Workers ??= new Dictionary<string, WorkerRecord>();
        document.Workers[request.Worker!] = NewWorker(request, now);
    }

    private static WorkerRecord NewWorker(StartRequest request, long now) =>
        new() { Host = request.Owner.Host, ProcessId = request.Owner.ProcessId, Heartbeat = now, State = WorkerStates.Running };

    private static Lease NewLease(StartRequest request, long now) =>
        new() { Owner = request.Owner, ExpiresAt = now + (long)request.LeaseDuration.TotalMilliseconds };

    private static string Short(string checksum) => checksum.Length > 12 ? checksum.Substring(0, 12) : checksum;
}
