using System.Security;
using CosmosMigrations.Connection;
using CosmosMigrations.Errors;
using CosmosMigrations.PowerShell.Infrastructure;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>Opens and verifies a connection to one database and makes it the session default.</summary>
[Cmdlet(VerbsCommunications.Connect, "CosmosMigration", DefaultParameterSetName = KeySet, SupportsShouldProcess = true)]
[OutputType(typeof(MigrationConnection))]
public sealed class ConnectCosmosMigrationCommand : AsyncCmdlet
{
    private const string KeySet = "Key";
    private const string ConnectionStringSet = "ConnectionString";
    private const string EmulatorSet = "Emulator";
    private const string IdentitySet = "Identity";
    private const string EntraIdSet = "EntraId";
    private const string AccessTokenSet = "AccessToken";

    [Parameter(ParameterSetName = KeySet, Position = 0)]
    [Parameter(ParameterSetName = EmulatorSet, Position = 0)]
    [Parameter(ParameterSetName = IdentitySet, Position = 0)]
    [Parameter(ParameterSetName = EntraIdSet, Position = 0)]
    [Parameter(ParameterSetName = AccessTokenSet, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string? Endpoint { get; set; }

    [Parameter(ParameterSetName = KeySet)]
    [SecureStringTransformation]
    [ValidateNotNull]
    public SecureString? Key { get; set; }

    [Parameter(ParameterSetName = ConnectionStringSet, Mandatory = true)]
    [SecureStringTransformation]
    [ValidateNotNull]
    public SecureString? ConnectionString { get; set; }

    [Parameter(ParameterSetName = EmulatorSet, Mandatory = true)]
    public SwitchParameter Emulator { get; set; }

    [Parameter(ParameterSetName = IdentitySet, Mandatory = true)]
    public SwitchParameter Identity { get; set; }

    [Parameter(ParameterSetName = EntraIdSet, Mandatory = true)]
    public SwitchParameter EntraId { get; set; }

    [Parameter(ParameterSetName = EntraIdSet)]
    [ValidateNotNullOrEmpty]
    public string? Tenant { get; set; }

    [Parameter(ParameterSetName = AccessTokenSet, Mandatory = true)]
    [SecureStringTransformation]
    [ValidateNotNull]
    public SecureString? AccessToken { get; set; }

    [Parameter(ParameterSetName = IdentitySet)]
    [Parameter(ParameterSetName = EntraIdSet)]
    [ValidateNotNullOrEmpty]
    public string? ManagedIdentityClientId { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Database { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string TrackingContainer { get; set; } = "migrations";

    [Parameter]
    public SwitchParameter SkipCertificateCheck { get; set; }

    [Parameter]
    [ValidateSet("Gateway", "Direct")]
    public string? ConnectionMode { get; set; }

    [Parameter]
    public SwitchParameter AllowBulkExecution { get; set; }

    [Parameter]
    public SwitchParameter LowPriority { get; set; }

    [Parameter]
    [ValidateRange(1, 600)]
    public int TimeoutSec { get; set; } = 20;

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        ConnectionSettings settings;
        try
        {
            settings = BuildSettings();
        }
        catch (MigrationException ex)
        {
            ThrowTerminatingError(ErrorRecords.From(ex));
            return;
        }

        try
        {
            var connection = RunAsync(ct => MigrationConnection.OpenAsync(settings,
                name => InvokeOnPipelineAsync(() => ShouldProcess($"database '{settings.Database}' at {settings.Endpoint}", $"Create tracking container '{name}' (partition key /id)"), ct).GetAwaiter().GetResult(),
                ct));
            if (!connection.TrackingContainerExists)
            {
                WriteWarning($"Tracking container '{connection.TrackingContainerName}' does not exist; it is created when a migration first runs.");
            }

            if (connection.JournalContainerExists == false)
            {
                WriteWarning($"The journal container '{connection.JournalContainerName}' does not exist, and a Microsoft Entra ID token cannot create containers: create it (partition key /pk, time to live on: az cosmosdb sql container create … --name {connection.JournalContainerName} --partition-key-path /pk --ttl -1) before a migration runs, or run migrations with -NoJournal.");
            }

            var previous = Session.Default;
            Session.Default = connection;
            if (previous is not null && !ReferenceEquals(previous, connection) && !previous.HeldByUser)
            {
                // Only a connection nobody else holds is closed: one given out by -PassThru stays
                // usable as -Context (its client goes with the last reference to it).
                previous.Dispose();
            }

            var how = connection.SignInSource is { } source && connection.AuthenticationType == "EntraId" ? $"EntraId via {source}" : connection.AuthenticationType;
            WriteVerbose($"Connected to {connection.Endpoint}, database '{connection.DatabaseName}' ({how}{(connection.Principal is { } who ? " as " + who : "")}, {connection.ConnectionMode} mode).");
            if (PassThru)
            {
                connection.HeldByUser = true;
                WriteObject(connection);
            }
        }
        catch (MigrationException ex)
        {
            ThrowTerminatingError(ErrorRecords.From(ex));
        }
    }

    private ConnectionSettings BuildSettings()
    {
        var settings = new ConnectionSettings
        {
            Database = Database ?? Environment.GetEnvironmentVariable("COSMOS_DATABASE"),
            TrackingContainer = TrackingContainer,
            SkipCertificateCheck = SkipCertificateCheck,
            AllowBulkExecution = AllowBulkExecution,
            LowPriority = LowPriority,
            ConnectTimeout = TimeSpan.FromSeconds(TimeoutSec),
            Mode = ConnectionMode switch
            {
                "Gateway" => TransportMode.Gateway,
                "Direct" => TransportMode.Direct,
                _ => TransportMode.Default,
            },
        };

        switch (ParameterSetName)
        {
            case ConnectionStringSet:
                settings.ApplyConnectionString(SecureStringTransformationAttribute.ToPlain(ConnectionString)!);
                break;
            case EmulatorSet:
                // -Endpoint: the emulator (or build.ps1's local server) on another port.
                settings.Endpoint = Endpoint ?? ConnectionSettings.EmulatorEndpoint;
                settings.SetKey(ConnectionSettings.EmulatorKey);
                settings.SkipCertificateCheck = true;
                break;
            case IdentitySet:
                settings.Endpoint = EndpointOrEnvironment;
                settings.UseManagedIdentity = true;
                settings.ManagedIdentityClientId = ManagedIdentityClientId;
                break;
            case EntraIdSet:
                settings.Endpoint = EndpointOrEnvironment;
                settings.Authentication = AuthenticationMode.EntraId;
                settings.Tenant = Tenant;
                settings.ManagedIdentityClientId = ManagedIdentityClientId;
                settings.AllowInteractiveSignIn = IsInteractiveSession();
                settings.Trace = Verbose;
                settings.SignInPrompt = Warning;
                break;
            case AccessTokenSet:
                settings.Endpoint = EndpointOrEnvironment;
                settings.Authentication = AuthenticationMode.AccessToken;
                settings.SetAccessToken(SecureStringTransformationAttribute.ToPlain(AccessToken));
                settings.Trace = Verbose;
                break;
            default:
                if (Endpoint is null && Key is null && Environment.GetEnvironmentVariable("COSMOS_CONNECTION_STRING") is { Length: > 0 } fromEnvironment)
                {
                    settings.ApplyConnectionString(fromEnvironment);
                    settings.SkipCertificateCheck |= SkipCertificateCheck;
                    break;
                }

                settings.Endpoint = EndpointOrEnvironment;
                settings.SetKey(Key is not null ? SecureStringTransformationAttribute.ToPlain(Key) : Environment.GetEnvironmentVariable("COSMOS_KEY"));
                break;
        }

        return settings;
    }

    /// <summary>-Endpoint, else COSMOS_ENDPOINT: where every sign-in but the emulator's and a connection string's connects.</summary>
    private string? EndpointOrEnvironment => Endpoint ?? Environment.GetEnvironmentVariable("COSMOS_ENDPOINT");

    /// <summary>Whether a person can answer a sign-in here: a console or editor host, a user
    /// session, input not redirected, and pwsh not started with -NonInteractive (runbooks, CI
    /// steps and scheduled jobs are none of these).</summary>
    private bool IsInteractiveSession()
    {
        if (!Environment.UserInteractive || Console.IsInputRedirected)
        {
            return false;
        }

        if (Host?.Name is not ("ConsoleHost" or "Visual Studio Code Host"))
        {
            return false;
        }

        foreach (var argument in Environment.GetCommandLineArgs())
        {
            var name = argument.TrimStart('-', '/');
            if (argument.Length > name.Length && name.Length >= 4 && "noninteractive".StartsWith(name, StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }
        }

        return true;
    }
}
