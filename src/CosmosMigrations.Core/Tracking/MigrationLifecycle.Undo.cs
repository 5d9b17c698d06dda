using CosmosMigrations.Errors;

namespace CosmosMigrations.Tracking;

internal sealed partial class MigrationLifecycle
{
    /// <summary>The undo rules as a pure function of what was read (the document to write is a copy;
    /// <paramref name="existing"/> stays as read, so an undo checks them before it writes, then
    /// decides again on what it reads under the lease). A completed, failed or
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

        var document = existing.Copy();
        StartOutcome outcome;
        var takesOver = document.Status == TrackingStatus.Running;
        var previousOwner = document.Lease?.Owner;
        if (document.Status == TrackingStatus.Undone)
        {
            // Documents were left in conflict (or failed): undo again what the journal still holds.
            document.Undo ??= new UndoInfo { Migrated = document.Processed };
            document.Undo.StartedAt = now;
            ResetProgress(document, now);
            outcome = StartOutcome.Rerun;
        }
        else if (document.Undo is not null)
        {
            outcome = StartOutcome.Resumed;
        }
        else
        {
            document.Undo = new UndoInfo { StartedAt = now, Migrated = document.Processed };
            ResetProgress(document, now);
            outcome = StartOutcome.Started;
        }

        document.Undo.Force = request.Force ? true : null;
        BeginSingleRun(document, request.Owner, request.LeaseDuration, now);
        document.Cursor ??= new MigrationCursor { Step = 0 };
        return new StartDecision(outcome, document, null, takesOver, takesOver ? previousOwner : null);
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
}
