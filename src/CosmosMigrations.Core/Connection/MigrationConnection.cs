using CosmosMigrations.Documents;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Connection;

/// <summary>An open, verified connection to one database: the client, the tracking container, and
/// a cache of target containers' partition key definitions. Carries no secret in any property.
/// One job a file: this one opens it (and closes it); the client is built by
/// <see cref="CosmosClientFactory"/>; what is verified at connect is in <c>.Preflight.cs</c>, how a
/// failed open is told in <c>.OpenErrors.cs</c>, the containers it reads and creates in
/// <c>.Containers.cs</c>, a distributed run's lease container in <c>.Leases.cs</c>.</summary>
public sealed partial class MigrationConnection : IDisposable
{
    private MigrationConnection(CosmosClient client, ConnectionSettings settings, string endpoint)
    {
        Client = client;
        Settings = settings;
        Endpoint = endpoint;
        Database = client.GetDatabase(settings.Database);
        Tracking = Database.GetContainer(settings.TrackingContainer);
    }

    internal CosmosClient Client { get; }

    internal ConnectionSettings Settings { get; }

    internal Database Database { get; }

    /// <summary>The tracking container (its documents are read and written through
    /// <c>Tracking.TrackingStore.Of</c>).</summary>
    internal Container Tracking { get; }

    public string Endpoint { get; }

    public string DatabaseName => Settings.Database!;

    public string TrackingContainerName => Settings.TrackingContainer;

    public bool TrackingContainerExists { get; private set; }

    public string AuthenticationType => Settings.AuthenticationType;

    /// <summary>Bulk mode as the client was built with it (not merely as asked for).</summary>
    public bool AllowBulkExecution => Client.ClientOptions?.AllowBulkExecution ?? Settings.AllowBulkExecution;

    /// <summary>Whether every request of this connection is sent at low priority (priority-based
    /// execution: under throttling the service sheds it before the application's traffic).</summary>
    public bool LowPriority => Client.ClientOptions is { } options ? options.PriorityLevel == PriorityLevel.Low : Settings.LowPriority;

    public string ConnectionMode { get; private set; } = "Gateway";

    /// <summary>Where the Microsoft Entra ID token came from (e.g. "the Azure CLI"); null for a key.</summary>
    public string? SignInSource { get; private set; }

    /// <summary>Who the token names ("user@contoso.com (object id …)"), when it says; never the token.</summary>
    public string? Principal { get; private set; }

    internal string? PrincipalObjectId { get; private set; }

    internal DateTimeOffset? TokenExpiresOn { get; private set; }

    /// <summary>Validates the settings, opens the client, verifies that the database exists (it is
    /// never created: a typo must not create an empty database) and creates the tracking container
    /// when <paramref name="confirmCreateTrackingContainer"/> agrees. Fails within
    /// <see cref="ConnectionSettings.ConnectTimeout"/>.</summary>
    internal static async Task<MigrationConnection> OpenAsync(ConnectionSettings settings,
        Func<string, bool>? confirmCreateTrackingContainer, CancellationToken cancellationToken)
    {
        var endpoint = CosmosClientFactory.ValidateEndpoint(settings.Endpoint);
        if (string.IsNullOrWhiteSpace(settings.Database))
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "DatabaseMissing", "No database was given.", "Database",
                "Pass -Database, or set COSMOS_DATABASE.");
        }

        ResourceName.Validate(settings.TrackingContainer, "TrackingContainer");
        SignIn.Result? signIn = null;
        if (settings.Authentication is AuthenticationMode.EntraId or AuthenticationMode.AccessToken)
        {
            signIn = await SignIn.SignInAsync(settings, endpoint, cancellationToken).ConfigureAwait(false);
        }

        var client = CosmosClientFactory.Create(settings, endpoint, signIn?.Credential, out var mode);
        var connection = new MigrationConnection(client, settings, endpoint.ToString())
        {
            ConnectionMode = mode.ToString(),
            SignInSource = signIn?.Source,
            Principal = signIn?.Claims.Describe(),
            PrincipalObjectId = signIn?.Claims.ObjectId,
            TokenExpiresOn = signIn?.Claims.ExpiresOn,
        };
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(settings.ConnectTimeout);
            await connection.VerifyAsync(confirmCreateTrackingContainer, timeout.Token, cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>A connection over a client that already exists (unit tests pass fakes of the SDK's
    /// types): nothing is verified or created.</summary>
    internal static MigrationConnection FromClient(CosmosClient client, ConnectionSettings settings) =>
        new(client, settings, CosmosClientFactory.ValidateEndpoint(settings.Endpoint).ToString()) { TrackingContainerExists = true };

    /// <summary>Handed to the user (Connect-CosmosMigration -PassThru): a later connection does not
    /// close it, since the user may still pass it as -Context.</summary>
    internal bool HeldByUser { get; set; }

    internal bool IsDisposed { get; private set; }

    public void Dispose()
    {
        IsDisposed = true;
        Client.Dispose();
    }

    public override string ToString() => $"{Endpoint} / {DatabaseName}";
}
