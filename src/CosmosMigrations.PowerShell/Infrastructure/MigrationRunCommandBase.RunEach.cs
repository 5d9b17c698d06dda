using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Errors;
using CosmosMigrations.Running;

namespace CosmosMigrations.PowerShell.Infrastructure;

public abstract partial class MigrationRunCommandBase
{
    /// <summary>Runs the migrations in order; stops at the first that does not complete (a later
    /// migration may depend on it). Returns false when it stopped early.</summary>
    private protected bool RunMigrations(MigrationConnection connection, IReadOnlyList<MigrationDefinition> definitions) =>
        RunEach(connection, definitions.Select(d => new RunItem(
            d.Name,
            $"container '{d.Container}' (migration '{d.Name}')",
            string.Join("; ", d.Steps.Select(s => s.Describe())),
            Tracking.TrackingStatus.Completed,
            (runner, options, progress, ct) => runner.RunAsync(d, options, progress, ct),
            (runner, options, progress, ct) => runner.PreviewAsync(d, options, progress, ct))).ToList());

    /// <summary>Runs each item in order (or dry-runs it under -WhatIf), within one time slice;
    /// stops at the first that does not end <see cref="RunItem.Done"/>. Returns false when it
    /// stopped early.</summary>
    private protected bool RunEach(MigrationConnection connection, IReadOnlyList<RunItem> items)
    {
        try
        {
            // Options that cannot work together are an error before anything is read or written.
            var options = BuildOptions(null);
            options.Validate();
            if (options.RetryFailures && IsWhatIf)
            {
                throw new MigrationException(MigrationErrorKind.InvalidArgument, "RetryWhatIf",
                    "-RetryFailures writes the failed documents it retries: it has no dry run.", "RetryFailures",
                    "See what would be retried with Get-MigrationFailure; then run -RetryFailures without -WhatIf.");
            }

            if (options.Distributed && IsWhatIf)
            {
                throw new MigrationException(MigrationErrorKind.InvalidArgument, "DistributedWhatIf",
                    "-WhatIf is a dry run of one process: it cannot be distributed.", "Distributed",
                    "Run the dry run without -Distributed; then start the workers with -Distributed.");
            }
        }
        catch (MigrationException ex)
        {
            WriteError(ErrorRecords.From(ex));
            return false;
        }

        var deadline = MaxDuration > TimeSpan.Zero ? DateTimeOffset.UtcNow + MaxDuration : (DateTimeOffset?)null;
        foreach (var item in items)
        {
            if (!ShouldProcess(item.Target, item.Action))
            {
                if (IsWhatIf)
                {
                    Preview(connection, item);
                }

                continue;
            }

            TimeSpan? remaining = null;
            if (deadline is not null)
            {
                remaining = deadline.Value - DateTimeOffset.UtcNow;
                if (remaining <= TimeSpan.Zero)
                {
                    WriteVerbose($"The time slice (-MaxDuration {MaxDuration}) is used up; '{item.Name}' and later migrations run next time.");
                    return false;
                }
            }

            RunResult result;
            var progress = Progress(item.Name);
            try
            {
                var runner = NewRunner(connection);
                var options = BuildOptions(remaining);
                result = RunAsync(ct => item.Run(runner, options, progress, ct));
            }
            catch (MigrationException ex)
            {
                WriteError(ErrorRecords.From(ex));
                return false;
            }
            finally
            {
                progress.Complete();
            }

            if (!WriteResult(item, result))
            {
                return false;
            }
        }

        return true;
    }
}
