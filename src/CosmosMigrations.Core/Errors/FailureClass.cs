namespace CosmosMigrations.Errors;

/// <summary>Why a document could not be migrated, in the terms of what fixes it.</summary>
public enum FailureClass
{
    /// <summary>The migration's own code refused the document (a transform or an operation threw,
    /// or its result would move the document to another partition): fix the migration.</summary>
    Transform,

    /// <summary>The service refused the write for good (a 4xx: the item past 2 MB, a conflict, a
    /// precondition still failing after the conflict retries, a logical partition full): fix the
    /// document or the migration's output.</summary>
    Refused,

    /// <summary>The service kept failing transiently (throttling, 503, 408, dropped connections)
    /// until the retries were spent: retry later, or with less load.</summary>
    Exhausted,
}

/// <summary>Which class a failed write belongs to.</summary>
internal static class FailureClasses
{
    /// <summary>The class of a write the service answered with <paramref name="status"/> after
    /// the sender's and the writer's own retries: a transient status there means the retries were
    /// spent; anything else is a refusal (4xx, and 5xx the service does not call transient).</summary>
    public static FailureClass OfStatus(HttpStatusCode status) =>
        CosmosErrors.IsTransient(status) ? FailureClass.Exhausted : FailureClass.Refused;

    /// <summary>Parses a class name (case-insensitive), as stored and as -Class gives it.</summary>
    public static FailureClass Parse(string text) =>
        Enum.TryParse<FailureClass>(text, ignoreCase: true, out var parsed) && Enum.IsDefined(typeof(FailureClass), parsed)
            ? parsed
            : throw new ArgumentException($"Unknown failure class '{text}': Transform, Refused or Exhausted.", nameof(text));
}
