namespace CosmosMigrations.Tracking;

/// <summary>What a start asks for: which migration, and how. <paramref name="Journal"/> null is a
/// run without before-images (-NoJournal).</summary>
internal sealed record StartRequest(
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
internal sealed record JournalRequest(string Container, int? TtlSeconds = null, string? TargetRid = null);

/// <summary>What an undo asks for: which migration, the container its file names (null when
/// undone by name), the target container's resource id now, and whether to restore documents
/// changed since the migration too (-Force).</summary>
internal sealed record UndoRequest(
    string Name,
    string? Container,
    LeaseOwner Owner,
    TimeSpan LeaseDuration,
    bool Force = false,
    string? TargetRid = null);
