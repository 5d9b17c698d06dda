namespace CosmosMigrations.Tracking;

/// <summary>How a start found the migration (the names are those of the status object's Outcome).</summary>
internal enum StartOutcome
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

/// <summary>What a start decided: the outcome, the document to write (for a skip, the one read),
/// a checksum warning, and whether an expired lease is being taken over (and whose it was).</summary>
internal sealed record StartDecision(StartOutcome Outcome, TrackingDocument Document, string? Warning, bool TakesOverExpiredLease = false, LeaseOwner? PreviousOwner = null);
