using CosmosMigrations.Errors;

namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>Turns Core exceptions into ErrorRecords: a stable FullyQualifiedErrorId, a category,
/// the target and the recommended action. Messages come from the Core, which never includes secrets.</summary>
internal static class ErrorRecords
{
    public static ErrorRecord From(MigrationException exception)
    {
        var record = new ErrorRecord(exception, exception.ErrorId, Category(exception.Kind), exception.Target);
        if (exception.RecommendedAction is not null)
        {
            record.ErrorDetails = new ErrorDetails(exception.Message) { RecommendedAction = exception.RecommendedAction };
        }

        return record;
    }

    public static ErrorRecord Create(MigrationErrorKind kind, string errorId, string message, object? target, string? recommendedAction = null) =>
        From(new MigrationException(kind, errorId, message, target, recommendedAction));

    private static ErrorCategory Category(MigrationErrorKind kind) => kind switch
    {
        MigrationErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
        MigrationErrorKind.InvalidDefinition => ErrorCategory.InvalidData,
        MigrationErrorKind.ConnectionFailed => ErrorCategory.ConnectionError,
        MigrationErrorKind.AuthenticationFailed => ErrorCategory.AuthenticationError,
        MigrationErrorKind.DatabaseNotFound or MigrationErrorKind.ContainerNotFound or MigrationErrorKind.MigrationNotFound => ErrorCategory.ObjectNotFound,
        MigrationErrorKind.AlreadyRunning => ErrorCategory.ResourceBusy,
        MigrationErrorKind.LeaseLost => ErrorCategory.ResourceUnavailable,
        MigrationErrorKind.InvalidState => ErrorCategory.InvalidOperation,
        MigrationErrorKind.DocumentFailed => ErrorCategory.WriteError,
        MigrationErrorKind.RequirementNotMet => ErrorCategory.InvalidResult,
        MigrationErrorKind.IndexTimeout => ErrorCategory.OperationTimeout,
        MigrationErrorKind.Transient => ErrorCategory.LimitsExceeded,
        _ => ErrorCategory.NotSpecified,
    };
}
