using CosmosMigrations.Connection;
using CosmosMigrations.Errors;

namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>Base of every cmdlet that works on a connection (on the model of PSOpenAD's session
/// cmdlet base): -Context, else the session default, resolved in one place. A Core error ends the
/// current input as a non-terminating ErrorRecord; the command goes on with the next.</summary>
public abstract class ConnectedCmdlet : AsyncCmdlet
{
    [Parameter]
    public MigrationConnection? Context { get; set; }

    protected override void ProcessRecord() => Connected(ProcessRecord);

    /// <summary>The work of one input, with the connection resolved.</summary>
    protected virtual void ProcessRecord(MigrationConnection connection)
    {
    }

    /// <summary>Runs <paramref name="work"/> with the resolved connection; a Core error (not
    /// connected included) becomes an ErrorRecord.</summary>
    protected void Connected(Action<MigrationConnection> work)
    {
        try
        {
            work(Session.Resolve(Context));
        }
        catch (MigrationException ex)
        {
            WriteError(ErrorRecords.From(ex));
        }
    }
}
