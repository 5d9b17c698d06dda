using CosmosMigrations.Connection;
using CosmosMigrations.PowerShell.Infrastructure;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>Deletes the tracking state of a failed or cancelled migration, so that the next start
/// begins from the first document.</summary>
[Cmdlet(VerbsCommon.Reset, "SchemaMigration", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(void))]
public sealed class ResetSchemaMigrationCommand : ConnectedCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(MigrationNameCompleter))]
    public string? Name { get; set; }

    protected override void ProcessRecord(MigrationConnection connection)
    {
        var lifecycle = new MigrationLifecycle(TrackingStore.Of(connection));
        var current = RunAsync(ct => lifecycle.GetResettableAsync(Name!, ct));
        if (!ShouldProcess($"migration '{Name}' ({current.Processed} document(s) changed so far)", "Delete its tracking state (its next start begins from the first document)"))
        {
            return;
        }

        RunAsync(ct => lifecycle.ResetAsync(current, ct));
        var leases = RunAsync(ct => Distributed.ProcessorLeases.DeleteForMigrationAsync(connection, Name!, ct));
        // Its failures were of the state just deleted: a later run must not meet them.
        var failures = RunAsync(ct => Failures.FailureStore.DeleteForMigrationAsync(connection, current.Name, current.FailureEpoch ?? 0, ct));
        WriteVerbose($"Tracking state of '{Name}' deleted{(leases > 0 ? $", with {leases} change feed lease(s) of its distributed runs" : "")}{(failures > 0 ? $", and {failures} failure store entr(ies)" : "")}.");
    }
}
