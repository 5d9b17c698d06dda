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

    /// <summary>Runs a single-process run's <paramref name="work"/> (which ends it when it reaches
    /// the end) and ends it otherwise: stopped (-MaxDuration, -MaxBatches, Stop-SchemaMigration),
    /// interrupted (Ctrl+C), its lease lost (nothing written: the run is another's now), or failed.
    /// <paramref name="beforeEnding"/> runs before a stopped or failed run's end is recorded.</summary>
    public static async Task<(RunOutcome Outcome, MigrationException? Error)> EndAsync(Func<Task<RunOutcome>> work,
        Func<Action<TrackingDocument>, Task> finish, Func<Task> beforeEnding, string migration, CancellationToken cancellationToken)
    {
        try
        {
            return (await work().ConfigureAwait(false), null);
        }
        catch (StopRunException stop)
        {
            await beforeEnding().ConfigureAwait(false);
            await finish(d => MigrationLifecycle.Cancel(d, stop.Reason)).ConfigureAwait(false);
            return (RunOutcome.Stopped, null);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await beforeEnding().ConfigureAwait(false);
            await finish(d => MigrationLifecycle.Cancel(d, "Interrupted")).ConfigureAwait(false);
            return (RunOutcome.Stopped, null);
        }
        catch (LeaseLostException lost)
        {
            return (RunOutcome.LeaseLost, lost.Error);
        }
        catch (Exception ex)
        {
            var error = Failure(ex, migration);
            var message = error.Message;
            await beforeEnding().ConfigureAwait(false);
            await finish(d => MigrationLifecycle.Fail(d, message, error.ErrorId)).ConfigureAwait(false);
            return (RunOutcome.Failed, error);
        }
    }

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
                ? first.Class == FailureClass.Exhausted
                    ? "The service kept failing transiently: lower -MaxDegreeOfParallelism or -MaxRUPerSecond, or raise the container's throughput, then start again (it resumes from the checkpoint). To set such documents aside and go on, pass -MaxFailures N or -MaxFailureRate r."
                    : "Fix the document (or the migration), then start again: it resumes from the checkpoint. To record such documents and go on, pass -MaxFailures N or -MaxFailureRate r."
                : $"Too many document(s) failed (-MaxFailures {maxFailures}, -MaxFailureRate); see them with Get-MigrationFailure, fix them, and start again or run -RetryFailures.");

    /// <summary>Below this many documents seen, -MaxFailureRate is judged only at the end of the
    /// run: the share of a few pages says little about the share of the container.</summary>
    public const int MinimumRateSample = 1000;

    /// <summary>Whether <paramref name="failed"/> documents out of <paramref name="seen"/> are past
    /// the run's thresholds: more than -MaxFailures, or a larger share than -MaxFailureRate (judged
    /// once enough documents were seen to say, or at the end of the run when <paramref name="final"/>).</summary>
    public static bool TooMany(long failed, long seen, RunOptions options, bool final)
    {
        if (failed > options.MaxFailures)
        {
            return true;
        }

        if (options.MaxFailureRate is not { } rate || failed == 0)
        {
            return false;
        }

        var sample = Math.Max(MinimumRateSample, (long)Math.Ceiling(10 / Math.Max(rate, 1e-9)));
        return (final || seen >= sample) && failed > rate * Math.Max(seen, 1);
    }

    /// <summary>The stable id of <see cref="RateExceeded"/>.</summary>
    public const string RateExceededId = "FailureRateExceeded";

    /// <summary>The run's failures passed -MaxFailureRate (or -MaxFailures) by the end of the run:
    /// it fails, its failures kept in the store for a retry.</summary>
    public static MigrationException RateExceeded(string migration, long failed, long seen, RunOptions options) =>
        RateExceededError(migration, $"Migration '{migration}': {failed} of {seen} document(s) seen could not be migrated ({Share(failed, seen)}), more than " +
            (failed > options.MaxFailures ? $"-MaxFailures {options.MaxFailures} allows." : $"-MaxFailureRate {options.MaxFailureRate!.Value.ToString("0.####", System.Globalization.CultureInfo.InvariantCulture)} allows."));

    private static MigrationException RateExceededError(string migration, string message) =>
        new(MigrationErrorKind.DocumentFailed, RateExceededId, message, migration,
            "See them with Get-MigrationFailure -Name " + migration + " (by class), fix the migration or the documents, then run it again with -RetryFailures.");

    /// <summary>The rule while a run goes on, the same in every engine: once <paramref name="failed"/>
    /// documents of a <paramref name="unit"/> (a page, a change feed batch) brought the run's
    /// failures past -MaxFailures, it fails naming the first of them; past -MaxFailureRate (once
    /// enough documents were seen to say), with <see cref="RateExceeded"/>. Null while it may go on.</summary>
    public static MigrationException? PastThresholdsMidRun(string migration, IReadOnlyList<WriteOutcome> failed, long failures, long seen, RunOptions options, string unit) =>
        failed.Count == 0 || !TooMany(failures, seen, options, final: false) ? null
            : failures > options.MaxFailures ? TooManyFailures(failed[0], failed.Count, options.MaxFailures, unit)
            : RateExceeded(migration, failures, seen, options);

    /// <summary>The end-of-run rule of every engine (a single run, a distributed run, a retry): a
    /// run that went through its steps with more failures than -MaxFailures, or a larger share of
    /// the <paramref name="seen"/> documents than -MaxFailureRate, fails with
    /// <see cref="RateExceeded"/>; null when it may complete (an undo is never judged so).</summary>
    public static MigrationException? PastThresholds(TrackingDocument document, RunOptions options, long seen) =>
        document.Undo is null && TooMany(document.FailureCount ?? 0, seen, options, final: true)
            ? RateExceeded(document.Name, document.FailureCount ?? 0, seen, options)
            : null;

    /// <summary>Ends, in <paramref name="document"/>, a run that went through its steps: failed by
    /// <see cref="PastThresholds"/> (returned), else completed, with failures or without.</summary>
    public static MigrationException? Conclude(TrackingDocument document, RunOptions options, long seen, long now)
    {
        if (PastThresholds(document, options, seen) is { } error)
        {
            MigrationLifecycle.Fail(document, error.Message, error.ErrorId);
            return error;
        }

        MigrationLifecycle.Complete(document, now);
        return null;
    }

    /// <summary>The error of a run another process failed, as that process reported it: the same id,
    /// category and advice when the tracking document names a known end-of-run error.</summary>
    public static MigrationException Recorded(TrackingDocument document) =>
        document.ErrorId == RateExceededId && document.Error is { } message
            ? RateExceededError(document.Name, message)
            : new MigrationException(MigrationErrorKind.ServiceError, "MigrationFailed", document.Error ?? $"Migration '{document.Name}' failed.", document.Name,
                "Fix the cause, then start it again: it resumes from its checkpoints.");

    private static string Share(long failed, long seen) =>
        (seen == 0 ? 0 : 100.0 * failed / seen).ToString("0.##", System.Globalization.CultureInfo.InvariantCulture) + " %";
}
