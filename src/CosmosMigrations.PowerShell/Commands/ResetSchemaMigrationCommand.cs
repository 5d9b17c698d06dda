using System.Management.Automation;
using CosmosMigrations.Connection;
using CosmosMigrations.Errors;
using CosmosMigrations.PowerShell.Infrastructure;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>Deletes the tracking state of a failed or cancelled migration, so that the next start
/// begins from the first document.</summary>
[Cmdlet(VerbsCommon.Reset, "SchemaMigration", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(void))]
public sealed class ResetSchemaMigrationCommand : AsyncCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(MigrationNameCompleter))]
    public string? Name { get; set; }

    [Parameter]
    public MigrationConnection? Context { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            var connection = Session.Resolve(Context);
            var store = connection.TrackingStore;
            var current = RunAsync(ct => store.GetRequiredAsync(Name!, ct));
            if (current.Status is not (TrackingStatus.Failed or TrackingStatus.Cancelled))
            {
                throw new MigrationException(MigrationErrorKind.InvalidState, "MigrationNotResettable",
                    $"Migration '{Name}' is {current.Status}: only a failed or cancelled migration can be reset.", Name,
                    current.Status == TrackingStatus.Running
                        ? "Stop it first with Stop-SchemaMigration."
                        : "A completed migration runs again with Start-SchemaMigration -Force.");
            }

            if (!ShouldProcess($"migration '{Name}' ({current.Processed} document(s) changed so far)", "Delete its tracking state (its next start begins from the first document)"))
            {
                return;
            }

            if (!RunAsync(ct => store.TryDeleteAsync(current, ct)))
            {
                throw new MigrationException(MigrationErrorKind.InvalidState, "MigrationChanged",
                    $"Migration '{Name}' changed while it was being reset (another runner started it?); nothing was deleted.", Name, "Check Get-MigrationStatus and try again.");
            }

            WriteVerbose($"Tracking state of '{Name}' deleted.");
        }
        catch (MigrationException ex)
        {
            WriteError(ErrorRecords.From(ex));
        }
    }
}
