using System.Management.Automation;
using CosmosMigrations.Connection;
using CosmosMigrations.Errors;
using CosmosMigrations.PowerShell.Infrastructure;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>Asks a running migration to stop after its current batch (a flag on its tracking
/// document, read at every checkpoint); it ends cancelled and resumable.</summary>
[Cmdlet(VerbsLifecycle.Stop, "SchemaMigration", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(MigrationStatus))]
public sealed class StopSchemaMigrationCommand : AsyncCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(MigrationNameCompleter))]
    public string? Name { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    [Parameter]
    public MigrationConnection? Context { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            var connection = Session.Resolve(Context);
            var store = connection.TrackingStore;
            var current = RunAsync(ct => store.GetRequiredAsync(Name!, ct));
            if (current.Status != TrackingStatus.Running)
            {
                throw new MigrationException(MigrationErrorKind.InvalidState, "MigrationNotRunning",
                    $"Migration '{Name}' is {current.Status}, not running: there is nothing to stop.", Name);
            }

            if (!ShouldProcess($"migration '{Name}' ({current.Lease?.Owner})", "Stop after the current batch"))
            {
                return;
            }

            var updated = RunAsync(ct => store.UpdateWithRetryAsync(Name!, d =>
            {
                if (d.Status != TrackingStatus.Running)
                {
                    return false;
                }

                d.StopRequested = true;
                return true;
            }, ct));
            WriteVerbose($"Stop requested for '{Name}': it stops after its current batch, as cancelled, resumable with Start-SchemaMigration.");
            if (PassThru && updated is not null)
            {
                WriteObject(MigrationStatus.FromTracking(updated));
            }
        }
        catch (MigrationException ex)
        {
            WriteError(ErrorRecords.From(ex));
        }
    }
}
