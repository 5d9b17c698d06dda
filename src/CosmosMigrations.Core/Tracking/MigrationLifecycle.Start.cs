using CosmosMigrations.Errors;

namespace CosmosMigrations.Tracking;

internal sealed partial class MigrationLifecycle
{
    /// <summary>The start rules as a pure function of what was read, for one moment: the document to
    /// write is a copy (for a skip, the one read), and <paramref name="existing"/> stays as read, so
    /// a caller may decide again, or show it, without reading it again.</summary>
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

        if (!request.Move && MoveRecord.Of(existing) is { } move)
        {
            // A plain run would rewrite the move's status (a copied move reopened, its phase lost) and write to its source.
            throw MoveRecord.IsAMove(request.Name, move, "a schema migration run");
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
                var joined = existing.Copy();
                JoinJournal(joined, request.Journal);
                joined.Workers![request.Worker!] = NewWorker(request, now);
                return new StartDecision(StartOutcome.Joined, joined, warning);
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

        var document = existing.Copy();
        StartOutcome outcome;
        if (decided is { } resumed)
        {
            JoinJournal(document, request.Journal);
            outcome = resumed;
        }
        else if (document.Status == TrackingStatus.Undone)
        {
            // Undone: it runs again as new, from the first document, with a fresh journal (entries
            // an undo left for documents in conflict stay valid under the same journal id).
            document.Journal = RestartJournal(document, request.Journal);
            document.Undo = null;
            ResetProgress(document, now);
            outcome = StartOutcome.Rerun;
        }
        else if (document.Undo is not null)
        {
            // An undo that did not finish (failed, cancelled, or crashed under an expired lease).
            if (!request.Force)
            {
                throw new MigrationException(MigrationErrorKind.InvalidState, "UndoInProgress",
                    $"Migration '{request.Name}' is being undone (its undo is {(document.Status == TrackingStatus.Running ? "running under an expired lease" : document.Status)}, {document.Processed} document(s) restored so far).",
                    request.Name,
                    "Finish the undo with Undo-SchemaMigration (it resumes from its checkpoint), or run the migration again from the first document with Start-SchemaMigration -Force.");
            }

            document.Undo = null;
            JoinJournal(document, request.Journal);
            ResetProgress(document, now);
            outcome = StartOutcome.Rerun;
        }
        else if (IsCompleted(document.Status))
        {
            JoinJournal(document, request.Journal);
            ResetProgress(document, now);
            outcome = StartOutcome.Rerun;
        }
        else
        {
            // Failed or cancelled: resume; running under an expired lease (or this run's own): take over.
            takesOver = document.Status == TrackingStatus.Running;
            JoinJournal(document, request.Journal);
            outcome = StartOutcome.Resumed;
        }

        var wasDistributed = document.Mode == DistributedMode;
        BeginRun(document, now);
        document.Lease = request.Distributed ? null : NewLease(request.Owner, request.LeaseDuration, now);
        if (request.Distributed)
        {
            // A rerun, or a run that was single before, starts the change feed from the beginning;
            // a distributed run resumed goes on from its leases' checkpoints.
            BecomeDistributed(document, request, now, newGeneration: outcome == StartOutcome.Rerun || !wasDistributed);
        }
        else
        {
            LeaveDistributed(document);
        }

        document.Checksum = request.Checksum;
        document.Description = request.Description;
        document.Source = request.Source ?? document.Source;
        document.Definition = request.Definition ?? document.Definition;
        document.Cursor ??= new MigrationCursor { Step = 0 };
        if (document.Cursor.Step > request.StepCount)
        {
            document.Cursor = new MigrationCursor { Step = request.StepCount };
        }

        return new StartDecision(outcome, document, warning, takesOver, takesOver ? previousOwner : null);
    }

    /// <summary>Went through every step: completed, with or without failures set aside.</summary>
    public static bool IsCompleted(string status) => status is TrackingStatus.Completed or TrackingStatus.CompletedWithFailures;

    /// <summary>From the first document again: counters, failures, conflicts and workers cleared
    /// (the failure store's entries of the earlier run stay, under the old epoch).</summary>
    private static void ResetProgress(TrackingDocument document, long now)
    {
        document.Failed = null;
        document.FailureEpoch = now;
        document.Workers = null;
        document.Processed = 0;
        document.Scanned = 0;
        document.Echoes = null;
        document.RequestCharge = 0;
        document.Failures = null;
        document.FailureCount = null;
        document.Conflicts = null;
        document.ConflictIds = null;
        document.CompletedAt = null;
        document.EstimatedTotal = null;
        document.Cursor = new MigrationCursor { Step = 0 };
    }

    private static string Short(string checksum) => checksum.Length > 12 ? checksum.Substring(0, 12) : checksum;
}
