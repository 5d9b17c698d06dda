using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;
using CosmosMigrations.Running;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>What Start-SchemaMigration, Invoke-Backfill and Undo-SchemaMigration share: the run
/// parameters, -WhatIf as a true dry run, progress, and turning results into objects and errors.</summary>
public abstract class MigrationRunCommandBase : ConnectedCmdlet
{
    [Parameter]
    [ValidateRange(1, 10000)]
    public int BatchSize { get; set; } = 100;

    /// <summary>A cap: within it the run finds the concurrency the account rewards.</summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int MaxDegreeOfParallelism { get; set; } = 64;

    [Parameter]
    [ValidateRange(1, 10_000_000)]
    public double MaxRUPerSecond { get; set; }

    [Parameter]
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(60);

    [Parameter]
    public TimeSpan MaxDuration { get; set; }

    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int MaxBatches { get; set; }

    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int MaxFailures { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public SwitchParameter NoEstimate { get; set; }

    private bool IsWhatIf =>
        MyInvocation.BoundParameters.TryGetValue("WhatIf", out var value) ? value is SwitchParameter s && s.IsPresent
        : SessionState.PSVariable.GetValue("WhatIfPreference") is { } preference && LanguagePrimitives.IsTrue(preference);

    protected RunOptions BuildOptions(TimeSpan? remaining) => Configure(new RunOptions
    {
        BatchSize = BatchSize,
        MaxDegreeOfParallelism = MaxDegreeOfParallelism,
        MaxRUPerSecond = MaxRUPerSecond > 0 ? MaxRUPerSecond : null,
        LeaseDuration = LeaseDuration,
        MaxDuration = remaining,
        MaxBatches = MaxBatches > 0 ? MaxBatches : null,
        MaxFailures = MaxFailures,
        Force = Force,
        NoEstimate = NoEstimate,
        Strict = StrictChecksum,
    });

    /// <summary>Options only some commands have (a forward run's journal and distribution).</summary>
    protected virtual RunOptions Configure(RunOptions options) => options;

    protected virtual bool StrictChecksum => false;

    /// <summary>One migration to run (or undo): its name, what ShouldProcess names, how to run it,
    /// how to dry-run it, and the status that lets the next one go on.</summary>
    protected sealed class RunItem
    {
        public RunItem(string name, string target, string action, string done, Func<MigrationRunner, RunOptions, IProgress<MigrationProgress>, CancellationToken, Task<RunResult>> run,
            Func<MigrationRunner, RunOptions, IProgress<MigrationProgress>, CancellationToken, Task<MigrationPreview>> preview)
        {
            Name = name;
            Target = target;
            Action = action;
            Done = done;
            Run = run;
            Preview = preview;
        }

        public string Name { get; }

        public string Target { get; }

        public string Action { get; }

        public string Done { get; }

        public Func<MigrationRunner, RunOptions, IProgress<MigrationProgress>, CancellationToken, Task<RunResult>> Run { get; }

        public Func<MigrationRunner, RunOptions, IProgress<MigrationProgress>, CancellationToken, Task<MigrationPreview>> Preview { get; }
    }

    /// <summary>Runs the migrations in order; stops at the first that does not complete (a later
    /// migration may depend on it). Returns false when it stopped early.</summary>
    protected bool RunMigrations(MigrationConnection connection, IReadOnlyList<MigrationDefinition> definitions) =>
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
    protected bool RunEach(MigrationConnection connection, IReadOnlyList<RunItem> items)
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
            try
            {
                var runner = NewRunner(connection);
                var options = BuildOptions(remaining);
                result = RunAsync(ct => item.Run(runner, options, Progress(item.Name), ct));
            }
            catch (MigrationException ex)
            {
                WriteError(ErrorRecords.From(ex));
                return false;
            }
            finally
            {
                CompleteProgress(item.Name);
            }

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
        }

        return true;
    }

    private MigrationRunner NewRunner(MigrationConnection connection) => new(connection)
    {
        Log = Verbose,
        Warn = Warning,
    };

    private void Preview(MigrationConnection connection, RunItem item)
    {
        try
        {
            var runner = NewRunner(connection);
            var options = BuildOptions(null);
            var preview = RunAsync(ct => item.Preview(runner, options, Progress(item.Name), ct));
            CompleteProgress(item.Name);
            Host.UI.WriteLine($"What if: {preview.WouldChange} of {preview.Scanned} document(s) read in '{preview.Container}' would change ({item.Name}); {preview.WouldFail} would fail" +
                (preview.WouldConflict > 0 ? $"; {preview.WouldConflict} changed since the migration would be left alone (conflicts)." : "."));
            WriteObject(preview);
        }
        catch (MigrationException ex)
        {
            WriteError(ErrorRecords.From(ex));
        }
    }

    private IProgress<MigrationProgress> Progress(string name) => new PipelineProgress(this, name);

    private void CompleteProgress(string name) =>
        WriteProgress(new ProgressRecord(ActivityProgress.IdOf(name), $"Migration {name}", "Done") { RecordType = ProgressRecordType.Completed });

    /// <summary>Bridges a script block into a transform that the Core can call from any thread:
    /// each call runs on the pipeline thread with the document as an ordered hashtable.</summary>
    protected TransformFunction TransformFromScriptBlock(ScriptBlock scriptBlock, string name, string source)
    {
        var transform = InThisRunspace(scriptBlock);
        return new(name, source, (document, ct) => InvokeOnPipelineAsync(() =>
        {
            var output = transform.Invoke(PlainJson.ToPlain(document));
            object? result = null;
            foreach (var item in output)
            {
                var value = item?.BaseObject;
                if (value is System.Collections.IDictionary || value is PSCustomObject)
                {
                    result = item;
                }
            }

            if (result is null)
            {
                if (output.Any(o => o is not null))
                {
                    throw new DocumentOperationException($"the transform returned {output.First(o => o is not null)!.BaseObject.GetType().Name}, not a document (return the hashtable, or $null to leave the document)");
                }

                return null;
            }

            return PlainJson.FromObject(PowerShellValues.Unwrap(result), "transform result") as JObject;
        }, ct));
    }

    /// <summary>A script block stays tied to the runspace it was created in: invoked from another
    /// (a thread job or runspace that received it as an argument), every call is marshalled back
    /// to that runspace and waits until it is idle (measured: ~250 ms a document while it sat in
    /// Wait-Job), and concurrent use can crash PowerShell (PowerShell issue 24629). A copy made
    /// from its syntax tree is tied to no runspace and runs in this one, with the same code and
    /// positions for errors. One that belongs to a module keeps that module's scope as it is.</summary>
    internal static ScriptBlock InThisRunspace(ScriptBlock scriptBlock) =>
        scriptBlock.Module is null && scriptBlock.Ast is ScriptBlockAst ast ? ast.GetScriptBlock() : scriptBlock;

    private sealed class PipelineProgress : IProgress<MigrationProgress>
    {
        /// <summary>Page reports come dozens of times a second; a progress bar needs a few, and
        /// every record costs the host work (the benchmark's runs wrote ~40 a second).</summary>
        private static readonly long MinInterval = System.Diagnostics.Stopwatch.Frequency / 5;

        private readonly MigrationRunCommandBase _command;
        private readonly string _name;
        private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        private MigrationProgress? _latest;
        private string? _activity;
        private long _lastWrite = -MinInterval;

        public PipelineProgress(MigrationRunCommandBase command, string name)
        {
            _command = command;
            _name = name;
        }

        public void Report(MigrationProgress value)
        {
            // A new step or activity shows at once; counts at most five times a second (the next
            // page's report, a few milliseconds later, carries them on).
            var now = _clock.ElapsedTicks;
            if (value.StepPercent is null && value.Activity == Volatile.Read(ref _activity) &&
                now - Interlocked.Read(ref _lastWrite) < MinInterval)
            {
                return;
            }

            Volatile.Write(ref _activity, value.Activity);
            Interlocked.Exchange(ref _lastWrite, now);
            // Only the newest report matters: queue one write, and let it take the latest value.
            if (System.Threading.Interlocked.Exchange(ref _latest, value) is not null)
            {
                return;
            }

            _command.OnPipeline(() =>
            {
                var progress = System.Threading.Interlocked.Exchange(ref _latest, null);
                if (progress is not null)
                {
                    _command.WriteProgress(ToRecord(progress));
                }
            });
        }

        private ProgressRecord ToRecord(MigrationProgress p)
        {
            var invariant = CultureInfo.InvariantCulture;
            if (p.StepPercent is { } stepPercent)
            {
                return new ProgressRecord(ActivityProgress.IdOf(_name), $"Migration {_name} — step {p.Step}/{p.StepCount}", $"{p.Activity}: {stepPercent} %")
                {
                    PercentComplete = Math.Max(0, Math.Min(100, stepPercent)),
                };
            }

            var of = p.EstimatedTotal is { } total ? $" of ~{total.ToString("N0", invariant)}" : p.EstimateSkipped ? " (no total: -NoEstimate)" : "";
            var perDocument = p.RequestUnitsPerDocument is { } ruPerDocument ? $", {ruPerDocument.ToString("0.##", invariant)} RU/doc" : "";
            var status = $"{p.ScannedThisRun.ToString("N0", invariant)}{of} read, {p.Processed.ToString("N0", invariant)} changed" +
                         (p.Failed > 0 ? $", {p.Failed} failed ({p.FailedByClass})" : "") +
                         $" · {p.RequestCharge.ToString("N0", invariant)} RU ({p.RequestUnitsPerSecond.ToString("N0", invariant)} RU/s{perDocument}) · {p.DocumentsPerSecond.ToString("N0", invariant)} docs/s";
            var record = new ProgressRecord(ActivityProgress.IdOf(_name), $"Migration {_name} — step {p.Step}/{p.StepCount}: {p.Activity}", status);
            if (p.PercentComplete is { } percent)
            {
                record.PercentComplete = percent;
            }

            if (p.Remaining is { } remaining)
            {
                record.SecondsRemaining = (int)Math.Min(int.MaxValue, remaining.TotalSeconds);
            }

            return record;
        }
    }
}
