using System.Net.Http;

namespace CosmosMigrations.Connection;

/// <summary>How the transport talks to the service. Gateway goes over HTTPS only (the local server
/// and most firewalls allow it); Direct is faster on real accounts. Default: Gateway for a
/// loopback endpoint, Direct otherwise.</summary>
internal enum TransportMode
{
    Default,
    Gateway,
    Direct,
}

/// <summary>How the connection proves who it is.</summary>
internal enum AuthenticationMode
{
    /// <summary>An account key (or a connection string, or the emulator's published key).</summary>
    Key,

    /// <summary>A managed identity only (<c>-Identity</c>).</summary>
    ManagedIdentity,

    /// <summary>Microsoft Entra ID, signed in the way the session already is (<see cref="SignIn"/>).</summary>
    EntraId,

    /// <summary>A Microsoft Entra ID access token obtained elsewhere.</summary>
    AccessToken,
}

/// <summary>Everything needed to open a connection. The key is write-only from the outside: it is
/// never returned, printed or logged.</summary>
internal sealed class ConnectionSettings
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

    public AuthenticationMode Authentication { get; set; }

    public bool UseManagedIdentity
    {
        get => Authentication == AuthenticationMode.ManagedIdentity;
        set => Authentication = value ? AuthenticationMode.ManagedIdentity : (Authentication == AuthenticationMode.ManagedIdentity ? AuthenticationMode.Key : Authentication);
    }

    /// <summary>True for the modes that authenticate with a Microsoft Entra ID token (data-plane roles).</summary>
    public bool UsesToken => Authentication != AuthenticationMode.Key;

    public string? ManagedIdentityClientId { get; set; }

    /// <summary>The Microsoft Entra tenant to sign in to (-Tenant); null: the source's own.</summary>
    public string? Tenant { get; set; }

    /// <summary>The access token of <see cref="AuthenticationMode.AccessToken"/>: write-only from
    /// the outside, like the key.</summary>
    internal string? AccessToken { get; private set; }

    public void SetAccessToken(string? token) => AccessToken = string.IsNullOrWhiteSpace(token) ? null : token!.Trim();

    /// <summary>Whether the sign-in may end with a browser or device-code sign-in (an interactive
    /// session only: a runbook must fail, not wait for a person).</summary>
    public bool AllowInteractiveSignIn { get; set; }

    /// <summary>Receives what the person must do for a device-code sign-in (the code and the address).</summary>
    public Action<string>? SignInPrompt { get; set; }

    /// <summary>Receives the sign-in's progress (which source is tried, which one gave the token).</summary>
    public Action<string>? Trace { get; set; }

    public TransportMode Mode { get; set; }

    /// <summary>Opt-in: the SDK's bulk mode (the local test server cannot run it).</summary>
    public bool AllowBulkExecution { get; set; }

    /// <summary>Opt-in: mark migration traffic low priority (priority-based execution must be
    /// enabled on the account), so the application's requests are throttled last.</summary>
    public bool LowPriority { get; set; }

    /// <summary>How long opening may take before it fails with a clear error.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Test seam, internal on purpose (the engine's tests reach it through InternalsVisibleTo):
    /// wraps the HTTP handler (fault injection, charge rewriting).</summary>
    internal Func<HttpMessageHandler, HttpMessageHandler>? HandlerWrapper { get; set; }

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

    public string AuthenticationType => Authentication.ToString();

    public override string ToString() => $"{Endpoint} (database {Database}, {AuthenticationType})";
}
