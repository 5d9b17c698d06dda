namespace CosmosMigrations.Errors;

/// <summary>What went wrong, in the terms a user acts on. The cmdlet layer maps each kind to an
/// ErrorCategory; <see cref="MigrationException.ErrorId"/> is the stable FullyQualifiedErrorId.</summary>
public enum MigrationErrorKind
{
    InvalidArgument,
    InvalidDefinition,
    ConnectionFailed,
    AuthenticationFailed,
    DatabaseNotFound,
    ContainerNotFound,
    MigrationNotFound,
    AlreadyRunning,
    LeaseLost,
    InvalidState,
    DocumentFailed,
    RequirementNotMet,
    IndexTimeout,
    Transient,
    ServiceError,
}
