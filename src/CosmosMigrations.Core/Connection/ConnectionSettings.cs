using System;
using System.Net.Http;

namespace CosmosMigrations.Connection;

/// <summary>How the transport talks to the service. Gateway goes over HTTPS only (the local server
/// and most firewalls allow it); Direct is faster on real accounts. Default: Gateway for a
/// loopback endpoint, Direct otherwise.</summary>
public enum TransportMode
{
    Default,
    Gateway,
    Direct,
}

/// <summary>Everything needed to open a connection. The key is write-only from the outside: it is
/// never returned, printed or logged.</summary>
public sealed class ConnectionSettings
{
    /// <summary>The local emulator's published key (public knowledge, not a secret).</summary>
    public const string EmulatorKey = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

    public const string EmulatorEndpoint = "https://localhost:8081/";

    public string? Endpoint { get; set; }

    internal string? Key { get; private set; }

    public bool HasKey => !string.IsNullOrEmpty(Key);

    public string? Database { get; set; }

    public string TrackingContainer { get; set; } = "migrations";

    public bool SkipCertificateCheck { get; set; }

    public bool UseManagedIdentity { get; set; }

    public string? ManagedIdentityClientId { get; set; }

    public TransportMode Mode { get; set; }

    /// <summary>Opt-in: the SDK's bulk mode (the local test server cannot run it).</summary>
    public bool AllowBulkExecution { get; set; }

    /// <summary>Opt-in: mark migration traffic low priority (priority-based execution must be
    /// enabled on the account), so the application's requests are throttled last.</summary>
    public bool LowPriority { get; set; }

    /// <summary>How long opening may take before it fails with a clear error.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Test seam: wraps the HTTP handler (fault injection, charge rewriting).</summary>
    public Func<HttpMessageHandler, HttpMessageHandler>? HandlerWrapper { get; set; }

    public void SetKey(string? key) => Key = string.IsNullOrEmpty(key) ? null : key;

    /// <summary>Applies a connection string (AccountEndpoint, AccountKey,
    /// DisableServerCertificateValidation, and Database as an extension).</summary>
    public void ApplyConnectionString(string connectionString)
    {
        var parsed = ConnectionStringParser.Parse(connectionString);
        Endpoint = parsed.Endpoint;
        SetKey(parsed.Key);
        if (parsed.DisableServerCertificateValidation)
        {
            SkipCertificateCheck = true;
        }

        if (!string.IsNullOrEmpty(parsed.Database) && string.IsNullOrEmpty(Database))
        {
            Database = parsed.Database;
        }
    }

    public string AuthenticationType => UseManagedIdentity ? "ManagedIdentity" : "Key";

    public override string ToString() => $"{Endpoint} (database {Database}, {AuthenticationType})";
}
