using CosmosMigrations.Connection;
using CosmosMigrations.Operations;
using CosmosMigrations.Running;

namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>What Start-SchemaMigration, Invoke-Backfill and Undo-SchemaMigration share: the run
/// parameters, -WhatIf as a true dry run, progress, and turning results into objects and errors.
/// One job a file: this one is the parameters and the options they make; running the migrations in
/// order is in <c>.RunEach.cs</c>, a run's result written in <c>.Results.cs</c>, the dry run in
/// <c>.WhatIf.cs</c>; progress bars are <see cref="MigrationProgressBar"/>, script blocks become
/// transforms through <see cref="ScriptBlockBridge"/>.</summary>
public abstract partial class MigrationRunCommandBase : ConnectedCmdlet
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

    private protected RunOptions BuildOptions(TimeSpan? remaining) => Configure(new RunOptions
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
    private protected virtual RunOptions Configure(RunOptions options) => options;

    protected virtual bool StrictChecksum => false;

    /// <summary>One migration to run (or undo): its name, what ShouldProcess names, how to run it,
    /// how to dry-run it, and the status that lets the next one go on.</summary>
    private protected sealed class RunItem
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

    private MigrationRunner NewRunner(MigrationConnection connection) => new(connection)
    {
        Log = Verbose,
        Warn = Warning,
    };

    private MigrationProgressBar Progress(string name) => new(this, OnPipeline, name);

    /// <summary>Bridges a script block into a transform that the Core can call from any thread:
    /// each call runs on the pipeline thread (<see cref="ScriptBlockBridge"/>).</summary>
    private protected TransformFunction TransformFromScriptBlock(ScriptBlock scriptBlock, string name, string source) =>
        ScriptBlockBridge.Transform(scriptBlock, name, source, InvokeOnPipelineAsync);
}
