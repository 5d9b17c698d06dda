using CosmosMigrations.Connection;
using CosmosMigrations.Moving;
using CosmosMigrations.PowerShell.Infrastructure;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>The preflight of a move to a new partition key: reads the container once, writes
/// nothing, and says whether the move can go (Ready), what it costs and what stands in the way.</summary>
[Cmdlet(VerbsDiagnostic.Test, "ContainerMove")]
[OutputType(typeof(MovePreflight))]
public sealed class TestContainerMoveCommand : ConnectedCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ContainerNameCompleter))]
    public string? Container { get; set; }

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string[]? PartitionKey { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Filter { get; set; }

    [Parameter]
    [ValidateRange(1, 10_000_000)]
    public double MaxRUPerSecond { get; set; }

    [Parameter]
    [ValidateRange(0, 100)]
    public int SampleSize { get; set; } = 5;

    protected override void ProcessRecord(MigrationConnection connection)
    {
        var options = new MovePreflightOptions(Container!, PartitionKey!, Filter, MaxRUPerSecond > 0 ? MaxRUPerSecond : null, SampleSize: SampleSize);
        var activity = $"Move preflight of {Container}";
        var progress = NewProgress<MovePreflightProgress>(activity, value =>
        {
            var invariant = CultureInfo.InvariantCulture;
            var of = value.Total is { } total ? $" of {total.ToString("N0", invariant)}" : "";
            return $"{value.Documents.ToString("N0", invariant)}{of} documents read · {value.RequestCharge.ToString("N0", invariant)} RU";
        }, value => value.Total is > 0 ? (int)Math.Min(100, value.Documents * 100 / value.Total.Value) : null);
        var result = RunAsync(ct => MovePreflightScan.RunAsync(connection, options, progress, Verbose, ct));
        progress.Complete();
        WriteObject(result);
    }
}
