using System;
using System.Globalization;
using System.Management.Automation;
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
        var id = Math.Abs(StringComparer.Ordinal.GetHashCode(activity) % 100000) + 1;
        var progress = new Progress(this, id, activity);
        var result = RunAsync(ct => MovePreflightScan.RunAsync(connection, options, progress, Verbose, ct));
        WriteProgress(new ProgressRecord(id, activity, "Done") { RecordType = ProgressRecordType.Completed });
        WriteObject(result);
    }

    /// <summary>Reports from the Core's thread, written on the pipeline thread.</summary>
    private sealed class Progress : IProgress<MovePreflightProgress>
    {
        private readonly TestContainerMoveCommand _command;
        private readonly int _id;
        private readonly string _activity;

        public Progress(TestContainerMoveCommand command, int id, string activity)
        {
            _command = command;
            _id = id;
            _activity = activity;
        }

        public void Report(MovePreflightProgress value) => _command.OnPipeline(() =>
        {
            var invariant = CultureInfo.InvariantCulture;
            var of = value.Total is { } total ? $" of {total.ToString("N0", invariant)}" : "";
            var record = new ProgressRecord(_id, _activity, $"{value.Documents.ToString("N0", invariant)}{of} documents read · {value.RequestCharge.ToString("N0", invariant)} RU");
            if (value.Total is > 0)
            {
                record.PercentComplete = (int)Math.Min(100, value.Documents * 100 / value.Total.Value);
            }

            _command.WriteProgress(record);
        });
    }
}
