using System.Management.Automation.Runspaces;
using System.Runtime.CompilerServices;
using CosmosMigrations.Connection;
using CosmosMigrations.Errors;

namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>The default connection of each runspace (set by Connect-CosmosMigration). Per
/// runspace, not per process: a thread job or a runspace pool must not act on another session's
/// database by accident.</summary>
public static class Session
{
    private static readonly ConditionalWeakTable<Runspace, Holder> Defaults = new();

    public static MigrationConnection? Default
    {
        get => Runspace.DefaultRunspace is { } runspace && Defaults.TryGetValue(runspace, out var holder) ? holder.Connection : null;
        internal set
        {
            if (Runspace.DefaultRunspace is { } runspace)
            {
                Defaults.GetOrCreateValue(runspace).Connection = value;
            }
        }
    }

    internal static MigrationConnection Resolve(MigrationConnection? explicitContext)
    {
        var connection = explicitContext ?? Default ?? throw new MigrationException(MigrationErrorKind.InvalidState, "NotConnected",
            "There is no connection to Cosmos DB in this session.", null,
            "Run Connect-CosmosMigration first (or pass -Context).");
        if (connection.IsDisposed)
        {
            // A closed client would fail deep in the SDK with ObjectDisposedException.
            throw new MigrationException(MigrationErrorKind.InvalidState, "ContextClosed",
                $"The connection to {connection.Endpoint} (database '{connection.DatabaseName}') is closed.", connection.Endpoint,
                "Run Connect-CosmosMigration again, and pass its new connection (-PassThru) as -Context.");
        }

        return connection;
    }

    private sealed class Holder
    {
        public MigrationConnection? Connection { get; set; }
    }
}
