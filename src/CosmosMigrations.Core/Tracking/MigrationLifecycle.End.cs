namespace CosmosMigrations.Tracking;

internal sealed partial class MigrationLifecycle
{
    /// <summary>The end of a run that went through every step: completed, or undone for an undo.
    /// An undo that restored everything leaves an empty journal behind.</summary>
    public static void Complete(TrackingDocument document, long now)
    {
        document.Status = document.Undo is not null ? TrackingStatus.Undone
            : document.FailureCount is > 0 && MoveRecord.Of(document) is null ? TrackingStatus.CompletedWithFailures : TrackingStatus.Completed;
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
}
