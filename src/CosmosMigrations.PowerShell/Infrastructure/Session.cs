using CosmosMigrations.Connection;
using CosmosMigrations.Errors;

namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>The session's default connection (set by Connect-CosmosMigration).</summary>
public static class Session
{
    public static MigrationConnection? Default { get; internal set; }

    internal static MigrationConnection Resolve(MigrationConnection? explicitContext) =>
        explicitContext ?? Default ?? throw new MigrationException(MigrationErrorKind.InvalidState, "NotConnected",
            "There is no connection to Cosmos DB in this session.", null,
            "Run Connect-CosmosMigration first (or pass -Context).");
}
