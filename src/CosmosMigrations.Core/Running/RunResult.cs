using CosmosMigrations.Errors;

namespace CosmosMigrations.Running;

/// <summary>What a run returns: the migration's status, and the error when it failed (the cmdlet
/// writes both: the object to the pipeline, the error as an ErrorRecord).</summary>
internal sealed record RunResult(MigrationStatus Status, MigrationException? Error = null, string? Warning = null);
