using CosmosMigrations.Connection;
using CosmosMigrations.Moving;
using CosmosMigrations.PowerShell.Infrastructure;
using CosmosMigrations.Running;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>The cut-over of a move, after the application stopped writing to the source: drains
/// the lag, reconciles deletes, verifies counts and a content digest, marks the move completed.</summary>
[Cmdlet(VerbsLifecycle.Complete, "ContainerMove", SupportsShouldProcess = true)]
[OutputType(typeof(MigrationStatus))]
public sealed class CompleteContainerMoveCommand : ConnectedCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(MigrationNameCompleter))]
    public string? Name { get; set; }

    [Parameter]
    [ValidateRange(1, 10_000_000)]
    public double MaxRUPerSecond { get; set; }

    /// <summary>Compare this many documents drawn at random (point reads of the target) instead of
    /// a digest of every document on both sides; the counts are compared either way.</summary>
    [Parameter]
    [ValidateRange(1, 100_000)]
    public int Sample { get; set; }

    /// <summary>After the cut-over, keep copying the target's changes back into the source until stopped.</summary>
    [Parameter]
    public SwitchParameter ReverseSync { get; set; }

    [Parameter]
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(60);

    protected override void ProcessRecord(MigrationConnection connection)
    {
        if (!ShouldProcess(Name!, "Drain, reconcile deletes in the target, verify and complete the move"))
        {
            return;
        }

        var completion = new MoveCompletion(connection) { Log = Verbose, Warn = Warning };
        var options = new RunOptions { MaxRUPerSecond = MaxRUPerSecond > 0 ? MaxRUPerSecond : null, LeaseDuration = LeaseDuration };
        var activity = $"Completing move {Name}";
        var progress = NewProgress<MigrationProgress>(activity, value => $"draining: {value.Processed.ToString("N0", CultureInfo.InvariantCulture)} copied");
        var result = RunAsync(ct => completion.CompleteAsync(Name!, options, Sample > 0 ? Sample : null, progress, ct));
        progress.Complete();
        WriteObject(result.Status);
        if (result.Error is not null)
        {
            WriteError(ErrorRecords.From(result.Error));
            return;
        }

        if (ReverseSync && result.Status.Status == Tracking.TrackingStatus.Completed)
        {
            // The rollback window: this command now follows the target until Stop-SchemaMigration.
            var reverse = RunAsync(ct => completion.ReverseSyncAsync(Name!, options, progress, ct));
            WriteObject(reverse.Status);
            if (reverse.Error is not null)
            {
                WriteError(ErrorRecords.From(reverse.Error));
            }
        }
    }
}
