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

/// <summary>What a start asks for: which migration, and how. <paramref name="Journal"/> null is a
/// run without before-images (-NoJournal).</summary>
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
    JournalRequest? Journal = null,
    string? Worker = null,
    Definitions.StoredDefinition? Definition = null,
    bool Move = false)
{
    /// <summary>A worker of a distributed run (named after its host, process and run).</summary>
    public bool Distributed => Worker is not null;
}

/// <summary>A run that keeps before-images: in which container, for how long (seconds; null =
/// until undone), and the target container's resource id.</summary>
public sealed record JournalRequest(string Container, int? TtlSeconds = null, string? TargetRid = null);

/// <summary>What an undo asks for: which migration, the container its file names (null when
/// undone by name), the target container's resource id now, and whether to restore documents
/// changed since the migration too (-Force).</summary>
public sealed record UndoRequest(
    string Name,
    string? Container,
    LeaseOwner Owner,
    TimeSpan LeaseDuration,
    bool Force = false,
    string? TargetRid = null);

/// <summary>What a start decided: the outcome, the document to write (for a skip, the one read),
/// a checksum warning, and whether an expired lease is being taken over (and whose it was).</summary>
public sealed record StartDecision(StartOutcome Outcome, TrackingDocument Document, string? Warning, bool TakesOverExpiredLease = false, LeaseOwner? PreviousOwner = null);

/// <summary>The rules of a migration's life, in one place, for every command: a start (new →
/// create; running under a live lease → "already running"; expired lease → take over; failed or
/// cancelled → resume; completed → skip, or run again with -Force; undone → run again as new;
/// an unfinished undo → refused unless -Force), an undo (see <see cref="DecideUndo"/>), a stop
/// request (only while running), a reset (only when failed or cancelled) and the end of a run
/// (completed, or undone for an undo; cancelled or failed). Every write is conditioned on the
/// ETag of what was read.</summary>
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
                Definition = request.Definition,
                Checksum = request.Checksum,
                Cursor = new MigrationCursor { Step = 0 },
                Lease = request.Distributed ? null : NewLease(request.Owner, request.LeaseDuration, now),
                Runs = 1,
                UpdatedAt = now,
                Journal = NewJournal(request.Name, request.Container, request.Journal),
                FailureEpoch = now,
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

        if (!request.Move && Moving.MoveRecord.Of(existing) is { } move)
        {
            // A plain run would rewrite the move's status (a copied move reopened, its phase lost) and write to its source.
            throw Moving.MoveRecord.IsAMove(request.Name, move, "a schema migration run");
        }

        string? warning = null;
        if (existing.Checksum is not null && existing.Checksum != request.Checksum)
        {
            warning = $"Migration '{request.Name}' changed since it {(IsCompleted(existing.Status) ? "completed" : "started")} (checksum {Short(existing.Checksum)} → {Short(request.Checksum)}).";
            if (request.Strict)
            {
                throw new MigrationException(MigrationErrorKind.InvalidState, "ChecksumMismatch", warning, request.Name,
                    "Never edit a migration that has run: write a new migration for the new change. Without -Strict this is a warning.");
            }
        }

        StartOutcome? decided = null;
        var takesOver = false;
        var previousOwner = existing.Lease?.Owner;
        if (existing.Status == TrackingStatus.Running && existing.Mode == DistributedMode && request.Distributed)
        {
            // Workers are running it (or were, and died: then this one resumes it alone).
            var live = LiveWorkers(existing, now, request.LeaseDuration);
            if (live.Count > 0)
            {
                // A worker without before-images makes the journal incomplete for all.
                JoinJournal(existing, request.Journal);
                existing.Workers![request.Worker!] = NewWorker(request, now);
                return new StartDecision(StartOutcome.Joined, existing, warning);
            }

            takesOver = true;
            decided = StartOutcome.Resumed;
        }
        else if (existing.Status == TrackingStatus.Running && existing.Mode == DistributedMode && LiveWorkers(existing, now, request.LeaseDuration) is { Count: > 0 } workers)
        {
            throw DistributedRunning(existing, workers);
        }
        else if (existing.Status == TrackingStatus.Running && HasLiveLease(existing, now) && existing.Lease!.Owner.RunId != request.Owner.RunId)
        {
            throw AlreadyRunning(existing, now);
        }

        if (IsCompleted(existing.Status) && !request.Force)
        {
            return new StartDecision(StartOutcome.Skipped, existing, warning);
        }

        StartOutcome outcome;
        if (decided is { } resumed)
        {
            JoinJournal(existing, request.Journal);
            outcome = resumed;
        }
        else if (existing.Status == TrackingStatus.Undone)
        {
            // Undone: it runs again as new, from the first document, with a fresh journal (entries
            // an undo left for documents in conflict stay valid under the same journal id).
            existing.Journal = RestartJournal(existing, request.Journal);
            existing.Undo = null;
            ResetProgress(existing);
            outcome = StartOutcome.Rerun;
        }
        else if (existing.Undo is not null)
        {
            // An undo that did not finish (failed, cancelled, or crashed under an expired lease).
            if (!request.Force)
            {
                throw new MigrationException(MigrationErrorKind.InvalidState, "UndoInProgress",
                    $"Migration '{request.Name}' is being undone (its undo is {(existing.Status == TrackingStatus.Running ? "running under an expired lease" : existing.Status)}, {existing.Processed} document(s) restored so far).",
                    request.Name,
                    "Finish the undo with Undo-SchemaMigration (it resumes from its checkpoint), or run the migration again from the first document with Start-SchemaMigration -Force.");
            }

            existing.Undo = null;
            JoinJournal(existing, request.Journal);
            ResetProgress(existing);
            outcome = StartOutcome.Rerun;
        }
        else if (IsCompleted(existing.Status))
        {
            JoinJournal(existing, request.Journal);
            ResetProgress(existing);
            outcome = StartOutcome.Rerun;
        }
        else
        {
            // Failed or cancelled: resume; running under an expired lease (or this run's own): take over.
            takesOver = existing.Status == TrackingStatus.Running;
            JoinJournal(existing, request.Journal);
            outcome = StartOutcome.Resumed;
        }

        var wasDistributed = existing.Mode == DistributedMode;
        existing.Status = TrackingStatus.Running;
        existing.StartedAt = now;
        existing.Lease = request.Distributed ? null : NewLease(request.Owner, request.LeaseDuration, now);
        if (request.Distributed)
        {
            // A rerun, or a run that was single before, starts the change feed from the beginning;
            // a distributed run resumed goes on from its leases' checkpoints.
            BecomeDistributed(existing, request, now, newGeneration: outcome == StartOutcome.Rerun || !wasDistributed);
        }
        else
        {
            LeaveDistributed(existing);
        }

        existing.Error = null;
        existing.ErrorId = null;
        existing.StopRequested = null;
        existing.StopReason = null;
        existing.Checksum = request.Checksum;
        existing.Description = request.Description;
        existing.Source = request.Source ?? existing.Source;
        existing.Definition = request.Definition ?? existing.Definition;
        existing.Runs++;
        existing.UpdatedAt = now;
        existing.Cursor ??= new MigrationCursor { Step = 0 };
        if (existing.Cursor.Step > request.StepCount)
        {
            existing.Cursor = new MigrationCursor { Step = request.StepCount };
        }

        return new StartDecision(outcome, existing, warning, takesOver, takesOver ? previousOwner : null);
    }

    /// <summary>Takes the lease for an undo (or finds nothing to do), as <see cref="StartAsync"/>
    /// does for a run: reads, decides (<see cref="DecideUndo"/>), writes conditioned on the ETag.</summary>
    public async Task<StartDecision> StartUndoAsync(UndoRequest request, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < MaxStartAttempts; attempt++)
        {
            var existing = await _store.GetRequiredAsync(request.Name, cancellationToken).ConfigureAwait(false);
            var decision = DecideUndo(existing, request, Clock.NowMs());
            if (decision.Outcome == StartOutcome.Skipped || await _store.TryReplaceAsync(decision.Document, cancellationToken).ConfigureAwait(false))
            {
                return decision;
            }
        }

        throw new MigrationException(MigrationErrorKind.AlreadyRunning, "MigrationContended",
            $"Migration '{request.Name}' is being started by another runner at the same time.", request.Name, "Let the other runner go on.");
    }

    /// <summary>The undo rules as a pure function of what was read. A completed, failed or
    /// cancelled migration (or one whose runner died) begins an undo from its first journal entry;
    /// an unfinished undo resumes from its checkpoint; an undone migration is skipped, unless
    /// documents were left in conflict (then the undo runs over what is left). Refused, before
    /// anything is written: a migration running under a live lease, one without a complete journal,
    /// one whose entries may have expired, one tracked for another container.</summary>
    public static StartDecision DecideUndo(TrackingDocument existing, UndoRequest request, long now)
    {
        if (existing.Status == TrackingStatus.Running && existing.Mode == DistributedMode && LiveWorkers(existing, now, request.LeaseDuration) is { Count: > 0 } workers)
        {
            throw DistributedRunning(existing, workers);
        }

        if (existing.Status == TrackingStatus.Running && HasLiveLease(existing, now) && existing.Lease!.Owner.RunId != request.Owner.RunId)
        {
            throw AlreadyRunning(existing, now);
        }

        CheckUndoable(existing, request.Container, request.TargetRid, now);
        if (existing.Status == TrackingStatus.Undone && Unresolved(existing) == 0)
        {
            return new StartDecision(StartOutcome.Skipped, existing, null);
        }

        StartOutcome outcome;
        var takesOver = existing.Status == TrackingStatus.Running;
        var previousOwner = existing.Lease?.Owner;
        if (existing.Status == TrackingStatus.Undone)
        {
            // Documents were left in conflict (or failed): undo again what the journal still holds.
            existing.Undo ??= new UndoInfo { Migrated = existing.Processed };
            existing.Undo.StartedAt = now;
            ResetProgress(existing);
            outcome = StartOutcome.Rerun;
        }
        else if (existing.Undo is not null)
        {
            outcome = StartOutcome.Resumed;
        }
        else
        {
            existing.Undo = new UndoInfo { StartedAt = now, Migrated = existing.Processed };
            ResetProgress(existing);
            outcome = StartOutcome.Started;
        }

        existing.Undo.Force = request.Force ? true : null;
        LeaveDistributed(existing);
        existing.Status = TrackingStatus.Running;
        existing.StartedAt = now;
        existing.CompletedAt = null;
        existing.Lease = NewLease(request.Owner, request.LeaseDuration, now);
        existing.Error = null;
        existing.ErrorId = null;
        existing.StopRequested = null;
        existing.StopReason = null;
        existing.Runs++;
        existing.UpdatedAt = now;
        existing.Cursor ??= new MigrationCursor { Step = 0 };
        return new StartDecision(outcome, existing, null, takesOver, takesOver ? previousOwner : null);
    }

    /// <summary>Why the migration cannot be undone now, or null when it can (for status objects).</summary>
    public static string? UndoBlocker(TrackingDocument document, long now)
    {
        if (HasLiveLease(document, now))
        {
            return $"it is running, owned by {document.Lease!.Owner}";
        }

        if (document.Status == TrackingStatus.Running && document.Mode == DistributedMode && LiveWorkers(document, now, TimeSpan.FromSeconds(60)).Count > 0)
        {
            return "it is running on distributed workers";
        }

        if (document.Status == TrackingStatus.Undone && Unresolved(document) == 0)
        {
            return "it is undone";
        }

        try
        {
            CheckUndoable(document, null, null, now);
            return null;
        }
        catch (MigrationException ex)
        {
            return ex.Message;
        }
    }

    private static void CheckUndoable(TrackingDocument existing, string? container, string? targetRid, long now)
    {
        var name = existing.Name;
        if (container is not null && !string.Equals(existing.Container, container, StringComparison.Ordinal))
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "JournalContainerMismatch",
                $"Migration '{name}' was run (and journaled) on container '{existing.Container}', but its file names container '{container}'.", name,
                "Undo it by name (Undo-SchemaMigration -Name), which uses the container it ran on; a file edited after it ran is a new migration.");
        }

        var journal = existing.Journal;
        if (journal is null || !journal.Complete)
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "MigrationNotJournaled",
                $"Migration '{name}' changed documents without keeping their before-images ({(journal is null ? "it was tracked before the journal existed" : "a run used -NoJournal")}): it cannot be undone.", name,
                "Write a new migration that reverses it. Runs keep before-images unless -NoJournal is given.");
        }

        if (journal.ExpiresAt is { } expiresAt && now >= expiresAt)
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "JournalExpired",
                $"The before-images of '{name}' were kept for {TimeSpan.FromSeconds(journal.Ttl!.Value)} (-JournalRetention) and began to expire at {Clock.FromMs(expiresAt):u}: an undo would be partial, so nothing was changed.", name,
                "Write a new migration that reverses it. Next time give -JournalRetention enough time for an undo, or leave it out to keep before-images until the migration is undone.");
        }

        if (targetRid is not null && journal.TargetRid is not null && !string.Equals(targetRid, journal.TargetRid, StringComparison.Ordinal))
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "JournalContainerMismatch",
                $"The journal of '{name}' belongs to another container: '{existing.Container}' was deleted and created again since the migration ran, so its before-images describe documents that are gone.", name,
                "Nothing to undo in the new container; write a new migration if its documents need a change.");
        }
    }

    /// <summary>Documents an undo could not restore yet: their entries stay in the journal.</summary>
    private static long Unresolved(TrackingDocument document) => (document.Conflicts ?? 0) + (document.FailureCount ?? 0);

    private static MigrationException AlreadyRunning(TrackingDocument existing, long now)
    {
        var seconds = Math.Ceiling((existing.Lease!.ExpiresAt - now) / 1000.0);
        return new MigrationException(MigrationErrorKind.AlreadyRunning, "MigrationAlreadyRunning",
            $"Migration '{existing.Name}' is already running{(existing.Undo is null ? "" : " (an undo)")}, owned by {existing.Lease.Owner} (lease expires in {seconds:0} s).",
            existing.Name,
            "Wait for it to finish (Get-MigrationStatus -Watch), or stop it with Stop-SchemaMigration. If its process died, the lease expires by itself and the next start resumes from the checkpoint.");
    }

    private static MigrationException DistributedRunning(TrackingDocument existing, IReadOnlyList<string> workers) =>
        new(MigrationErrorKind.AlreadyRunning, "MigrationAlreadyRunning",
            $"Migration '{existing.Name}' is already running on {workers.Count} distributed worker(s): {string.Join(", ", workers)}.",
            existing.Name,
            "Join them with -Distributed, wait for them to finish (Get-MigrationStatus -Watch), or stop them all with Stop-SchemaMigration.");

    /// <summary>Went through every step: completed, with or without failures set aside.</summary>
    public static bool IsCompleted(string status) => status is TrackingStatus.Completed or TrackingStatus.CompletedWithFailures;

    /// <summary>From the first document again: counters, failures, conflicts and workers cleared
    /// (the failure store's entries of the earlier run stay, under the old epoch).</summary>
    private static void ResetProgress(TrackingDocument document)
    {
        document.Failed = null;
        document.FailureEpoch = Clock.NowMs();
        document.Workers = null;
        document.Processed = 0;
        document.Scanned = 0;
        document.RequestCharge = 0;
        document.Failures = null;
        document.FailureCount = null;
        document.Conflicts = null;
        document.ConflictIds = null;
        document.CompletedAt = null;
        document.EstimatedTotal = null;
        document.Cursor = new MigrationCursor { Step = 0 };
    }

    private static JournalInfo NewJournal(string name, string container, JournalRequest? request) => new()
    {
        Id = JournalId(name, container),
        Container = request?.Container ?? "",
        Complete = request is not null,
        Ttl = request?.TtlSeconds,
        TargetRid = request?.TargetRid,
    };

    /// <summary>Another run of a migration already tracked: its changes are recorded only if every
    /// run's were; entries live as long as the shortest retention any run gave them.</summary>
    private static void JoinJournal(TrackingDocument existing, JournalRequest? request)
    {
        if (existing.Journal is null)
        {
            // Tracked before the journal existed: what earlier runs changed has no before-image.
            existing.Journal = NewJournal(existing.Name, existing.Container, request);
            existing.Journal.Complete = false;
            return;
        }

        if (request is null)
        {
            existing.Journal.Complete = false;
            return;
        }

        existing.Journal.Ttl = Shortest(existing.Journal.Ttl, request.TtlSeconds);
        if (existing.Journal.Container.Length == 0)
        {
            existing.Journal.Container = request.Container;
        }

        existing.Journal.TargetRid ??= request.TargetRid;
    }

    /// <summary>An undone migration run again as new: entries an undo left (documents in conflict)
    /// are still there and keep their retention; otherwise the journal starts empty.</summary>
    private static JournalInfo RestartJournal(TrackingDocument existing, JournalRequest? request)
    {
        var old = existing.Journal;
        var fresh = NewJournal(existing.Name, existing.Container, request);
        if (old is null)
        {
            return fresh;
        }

        fresh.Id = old.Id;
        fresh.Container = request?.Container ?? old.Container;
        if (Unresolved(existing) > 0)
        {
            fresh.Ttl = Shortest(old.Ttl, fresh.Ttl);
            fresh.Since = old.Since;
            fresh.Passes = old.Passes;
            fresh.Indexes = old.Indexes;
        }

        return fresh;
    }

    /// <summary>The journal id of a migration: the same for the same name on the same container, so
    /// that the before-images of a run whose tracking was reset (Reset-SchemaMigration) still belong
    /// to the migration that starts over, and never to one of the same name on another container.</summary>
    public static string JournalId(string name, string container)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name + "\n" + container));
        return Convert.ToHexString(hash, 0, 16).ToLowerInvariant();
    }

    private static int? Shortest(int? a, int? b) => a is null ? b : b is null ? a : Math.Min(a.Value, b.Value);

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
        if (Moving.MoveRecord.Of(current) is { } move)
        {
            // Deleting only its state would leave its target behind, refused by the next start (TargetNotEmpty).
            throw Moving.MoveRecord.IsAMove(name, move, "Reset-SchemaMigration");
        }

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

    /// <summary>The end of a run that went through every step: completed, or undone for an undo.
    /// An undo that restored everything leaves an empty journal behind.</summary>
    public static void Complete(TrackingDocument document, long now)
    {
        document.Status = document.Undo is not null ? TrackingStatus.Undone
            : document.FailureCount is > 0 && Moving.MoveRecord.Of(document) is null ? TrackingStatus.CompletedWithFailures : TrackingStatus.Completed;
        document.CompletedAt = now;
        document.Cursor = null;
        document.EstimatedTotal = null;
        if (document.Undo is not null && Unresolved(document) == 0 && document.Journal is { } journal)
        {
            journal.Since = null;
            journal.Passes = null;
            journal.Indexes = null;
        }
    }

    /// <summary>A document pass of a journaled run begins: the journal notes the step (its entries
    /// are what an undo of this step reads) and the moment from which its entries may expire. Written
    /// with the pass's first checkpoint, before its first before-image.</summary>
    public static void NoteJournaledPass(TrackingDocument document, int step, long now, bool recomputed = false)
    {
        var journal = document.Journal ??= new JournalInfo { Id = JournalId(document.Name, document.Container) };
        journal.Since ??= now;
        journal.Passes ??= new System.Collections.Generic.List<int>();
        if (!journal.Passes.Contains(step))
        {
            journal.Passes.Add(step);
        }

        if (recomputed)
        {
            journal.Recomputed ??= new System.Collections.Generic.List<int>();
            if (!journal.Recomputed.Contains(step))
            {
                journal.Recomputed.Add(step);
            }
        }
    }

    /// <summary>An AddIndex step of a journaled run records the policy it replaces (and, once
    /// replaced, the policy the service kept), before it changes anything.</summary>
    public static void NoteIndexImage(TrackingDocument document, IndexImage image)
    {
        var journal = document.Journal ??= new JournalInfo { Id = JournalId(document.Name, document.Container) };
        journal.Indexes ??= new System.Collections.Generic.List<IndexImage>();
        journal.Indexes.RemoveAll(i => i.Step == image.Step);
        journal.Indexes.Add(image);
    }

    /// <summary>The end of a run stopped before the end (resumable): StopRequested, MaxDuration,
    /// MaxBatches or Interrupted.</summary>
    public static void Cancel(TrackingDocument document, string reason)
    {
        document.Status = TrackingStatus.Cancelled;
        document.StopReason = reason;
    }

    /// <summary>The end of a run that failed (resumable once the cause is fixed).</summary>
    public static void Fail(TrackingDocument document, string error, string? errorId = null)
    {
        document.Status = TrackingStatus.Failed;
        document.Error = error;
        document.ErrorId = errorId;
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

    /// <summary>A run by one process (a single run, or an undo): no workers, no shared batches.</summary>
    private static void LeaveDistributed(TrackingDocument document)
    {
        document.Mode = null;
        document.Workers = null;
        document.Pending = null;
        document.Phase = null;
    }

    private static WorkerRecord NewWorker(StartRequest request, long now) =>
        new() { Host = request.Owner.Host, ProcessId = request.Owner.ProcessId, Heartbeat = now, State = WorkerStates.Running };

    private static Lease NewLease(LeaseOwner owner, TimeSpan duration, long now) =>
        new() { Owner = owner, ExpiresAt = now + (long)duration.TotalMilliseconds };

    private static string Short(string checksum) => checksum.Length > 12 ? checksum.Substring(0, 12) : checksum;
}
