namespace CosmosMigrations.Errors;

/// <summary>The one exception type of the Core: a kind, a stable id, the target, what to do, and
/// (when Cosmos DB answered) the service's diagnostics. Messages never contain secrets.</summary>
public sealed class MigrationException : Exception
{
    internal MigrationException(MigrationErrorKind kind, string errorId, string message, object? target = null,
        string? recommendedAction = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
        ErrorId = errorId;
        Target = target;
        RecommendedAction = recommendedAction;
    }

    public MigrationErrorKind Kind { get; }

    /// <summary>Stable identifier, e.g. <c>DatabaseNotFound</c>; the cmdlet layer prefixes nothing.</summary>
    public string ErrorId { get; }

    public object? Target { get; }

    public string? RecommendedAction { get; }

    public HttpStatusCode? StatusCode { get; init; }

    public int? SubStatusCode { get; init; }

    public string? ActivityId { get; init; }

    public double RequestCharge { get; init; }

    public TimeSpan? RetryAfter { get; init; }
}
