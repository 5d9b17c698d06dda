using System;
using CosmosMigrations.Errors;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Running;

/// <summary>How a run ends, the same in both engines (a single run and a distributed worker): the
/// outcome of a run that reached the end, the error of one that failed, and the failure of a run
/// past -MaxFailures.</summary>
internal static class RunEnding
{
    /// <summary>A run that reached the end: it began there, or went on from a checkpoint.</summary>
    public static RunOutcome Finished(StartOutcome start) => start == StartOutcome.Resumed ? RunOutcome.Resumed : RunOutcome.Completed;

    /// <summary>The error a failed run reports and records.</summary>
    public static MigrationException Failure(Exception error, string migration) =>
        error as MigrationException ?? CosmosErrors.Wrap(error, MigrationErrorKind.ServiceError, "MigrationFailed",
            $"Migration '{migration}' failed.", migration, "Fix the cause, then start it again: it resumes from its checkpoints.");

    /// <summary>More documents failed than -MaxFailures allows: the run fails, naming the first of
    /// the <paramref name="unit"/> (a page, a change feed batch), whose checkpoint stays before it.</summary>
    public static MigrationException TooManyFailures(WriteOutcome first, int failedInUnit, int maxFailures, string unit) =>
        new(MigrationErrorKind.DocumentFailed, "DocumentMigrationFailed",
            $"Document '{first.Id}' (partition key {first.PartitionKey}) could not be migrated: {first.Error}." +
            (failedInUnit > 1 ? $" {failedInUnit - 1} more document(s) of the same {unit} failed too." : "") +
            $" The checkpoint stays before this {unit}.",
            first.Id,
            maxFailures == 0
                ? "Fix the document (or the migration), then start again: it resumes from the checkpoint. To record such documents and go on, pass -MaxFailures N."
                : $"More than {maxFailures} document(s) failed (-MaxFailures); see the failures in Get-MigrationStatus, fix them, and start again.");
}
