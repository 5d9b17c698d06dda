using CosmosMigrations.Connection;
using CosmosMigrations.PowerShell.Infrastructure;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>Asks a running migration to stop after its current batch (a flag on its tracking
/// document, read at every checkpoint); it ends cancelled and resumable.</summary>
[Cmdlet(VerbsLifecycle.Stop, "SchemaMigration", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(MigrationStatus))]
public sealed class StopSchemaMigrationCommand : ConnectedCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(MigrationNameCompleter))]
    public string? Name { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord(MigrationConnection connection)
    {
        var lifecycle = new MigrationLifecycle(TrackingStore.Of(connection));
        var current = RunAsync(ct => lifecycle.GetStoppableAsync(Name!, ct));
        if (!ShouldProcess($"migration '{Name}' ({current.Lease?.Owner})", "Stop after the current batch"))
        {
            return;
        }

        var updated = RunAsync(ct => lifecycle.RequestStopAsync(Name!, ct));
        WriteVerbose($"Stop requested for '{Name}': it stops after its current batch, as cancelled, resumable with {(current.Undo is null ? "Start-SchemaMigration" : "Undo-SchemaMigration (it is an undo)")}.");
        if (PassThru && updated is not null)
        {
            WriteObject(MigrationStatus.FromTracking(updated));
        }
    }
}
