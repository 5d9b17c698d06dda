using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Errors;
using CosmosMigrations.Moving;
using CosmosMigrations.PowerShell.Infrastructure;
using CosmosMigrations.Running;
using CosmosMigrations.Steps;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>Moves a container to a new partition key: creates the target with the source's
/// settings and the new key, and copies through the change feed until the target has caught up
/// (or, with -Follow, keeps it caught up until Complete-ContainerMove).</summary>
[Cmdlet(VerbsLifecycle.Start, "ContainerMove", SupportsShouldProcess = true, DefaultParameterSetName = "SourceThroughput")]
[OutputType(typeof(MigrationStatus), typeof(MovePreflight))]
public sealed class StartContainerMoveCommand : ConnectedCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(MigrationNameCompleter))]
    public string? Name { get; set; }

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ContainerNameCompleter))]
    public string? Container { get; set; }

    [Parameter(Mandatory = true, Position = 2)]
    [ValidateNotNullOrEmpty]
    public string? Target { get; set; }

    [Parameter(Mandatory = true, Position = 3)]
    [ValidateNotNullOrEmpty]
    public string[]? PartitionKey { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Filter { get; set; }

    [Parameter]
    public Hashtable[] Operation { get; set; } = Array.Empty<Hashtable>();

    [Parameter]
    public SwitchParameter Follow { get; set; }

    /// <summary>Join the processes already copying this move instead of refusing to.</summary>
    [Parameter]
    public SwitchParameter Distributed { get; set; }

    [Parameter]
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(60);

    [Parameter]
    [ValidateRange(1, 10_000_000)]
    public double MaxRUPerSecond { get; set; }

    [Parameter]
    public TimeSpan MaxDuration { get; set; }

    /// <summary>How many documents may fail to copy (recorded in the failure store) before the move fails.</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int MaxFailures { get; set; }

    /// <summary>The share of the documents read that may fail to copy before the move fails; alone,
    /// it sets no count limit.</summary>
    [Parameter]
    [ValidateRange(0.000001, 1.0)]
    public double MaxFailureRate { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = "Manual")]
    [ValidateRange(400, 1_000_000)]
    public int Throughput { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = "Autoscale")]
    [ValidateRange(1000, 1_000_000)]
    public int AutoscaleMaxThroughput { get; set; }

    protected override void ProcessRecord(MigrationConnection connection)
    {
        var operations = Operations();
        if (!ShouldProcess($"{Container} -> {Target} (partition key {string.Join(", ", PartitionKey!)})", "Move to a new partition key"))
        {
            if (MyInvocation.BoundParameters.ContainsKey("WhatIf"))
            {
                // -WhatIf reads what the preflight reads, and writes nothing.
                WriteObject(RunAsync(ct => MovePreflightScan.RunAsync(connection, new MovePreflightOptions(Container!, PartitionKey!, Filter, Budget), null, Verbose, ct)));
            }

            return;
        }

        var options = new RunOptions
        {
            MaxRUPerSecond = Budget, Follow = Follow, MaxDuration = MaxDuration > TimeSpan.Zero ? MaxDuration : null, LeaseDuration = LeaseDuration, MaxFailures = MaxFailures,
        };
        ForwardRunCommandBase.SetFailureRate(options, MaxFailureRate, MyInvocation.BoundParameters.ContainsKey(nameof(MaxFailures)));
        var request = new MoveRequest(Name!, Container!, Target!, PartitionKey!, Filter, operations, options,
            ParameterSetName == "Manual" ? Throughput : null, ParameterSetName == "Autoscale" ? AutoscaleMaxThroughput : null, Distributed);
        var runner = new MoveRunner(connection) { Log = Verbose, Warn = Warning };
        var activity = $"Move {Name}: {Container} -> {Target}";
        var progress = NewProgress<MigrationProgress>(activity, value =>
            $"{value.Activity}: {value.Processed.ToString("N0", CultureInfo.InvariantCulture)} copied" +
            (value.Failed > 0 ? $", {value.Failed.ToString("N0", CultureInfo.InvariantCulture)} failed ({value.FailedByClass})" : "") +
            $" · {value.RequestCharge.ToString("N0", CultureInfo.InvariantCulture)} RU");
        var result = RunAsync(ct => runner.StartAsync(request, progress, ct));
        progress.Complete();
        WriteObject(result.Status);
        if (result.Error is not null)
        {
            WriteError(ErrorRecords.From(result.Error));
        }
        else if (result.Status.Failed > 0)
        {
            WriteWarning($"'{Name}': {result.Status.Failed} document(s) could not be copied ({result.Status.FailedByClass}). See them with Get-MigrationFailure -Name '{Name}'; " +
                "Complete-ContainerMove copies them again and does not complete the move while any is missing.");
        }
    }

    private double? Budget => MaxRUPerSecond > 0 ? MaxRUPerSecond : null;

    /// <summary>-Operation as plain data (PowerShell's wrappers removed).</summary>
    private System.Collections.Generic.IReadOnlyList<object?> Operations() =>
        Operation.Select(o =>
        {
            var copy = new Hashtable(StringComparer.OrdinalIgnoreCase);
            foreach (DictionaryEntry entry in o)
            {
                copy[entry.Key?.ToString() ?? ""] = PowerShellValues.Unwrap(entry.Value is PSObject wrapped ? wrapped.BaseObject : entry.Value);
            }

            return (object?)copy;
        }).ToList();
}
