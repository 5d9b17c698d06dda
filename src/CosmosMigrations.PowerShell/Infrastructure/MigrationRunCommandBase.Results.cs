using CosmosMigrations.Running;

namespace CosmosMigrations.PowerShell.Infrastructure;

public abstract partial class MigrationRunCommandBase
{
    /// <summary>A run's result written: the status object, its warnings (a changed definition of a
    /// skipped migration, documents left in conflict, documents set aside) and its error. Returns
    /// whether later migrations go on (the run ended <see cref="RunItem.Done"/>).</summary>
    private bool WriteResult(RunItem item, RunResult result)
    {
        var skipped = result.Status.Outcome == nameof(RunOutcome.Skipped);
        if (result.Warning is not null && skipped)
        {
            WriteWarning(result.Warning);
        }

        if (skipped)
        {
            WriteVerbose($"'{item.Name}': {result.Status.Message}");
        }

        if (result.Status.Conflicts > 0 && result.Status.Status == item.Done)
        {
            WriteWarning($"'{item.Name}': {result.Status.Conflicts} document(s) changed since the migration were left alone (e.g. {string.Join(", ", result.Status.ConflictIds.Take(5))}). " +
                $"Undo-SchemaMigration -Name '{item.Name}' -Force restores them too, overwriting those changes.");
        }

        WriteObject(result.Status);
        if (result.Error is not null)
        {
            WriteError(ErrorRecords.From(result.Error));
            return false;
        }

        if (result.Status.Status == Tracking.TrackingStatus.CompletedWithFailures)
        {
            WriteWarning($"'{item.Name}': {result.Status.Failed} document(s) could not be migrated and were set aside ({result.Status.FailedByClass}). " +
                $"See them with Get-MigrationFailure -Name '{item.Name}'; once fixed, run it again with -RetryFailures.");
        }

        if (result.Status.Status != item.Done && !(item.Done == Tracking.TrackingStatus.Completed && result.Status.Status == Tracking.TrackingStatus.CompletedWithFailures))
        {
            WriteVerbose($"'{item.Name}' is {result.Status.Status} ({result.Status.StopReason}); later migrations wait for it.");
            return false;
        }

        return true;
    }
}
