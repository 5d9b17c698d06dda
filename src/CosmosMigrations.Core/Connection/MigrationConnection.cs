using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Security.Authentication;
using System.Threading;
using System.Threading.Tasks;
using Azure.Core;
using Azure.Identity;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using Microsoft.Azure.Cosmos;

namespace CosmosMigrations.Connection;

/// <summary>An open, verified connection to one database: the client, the tracking container, and
/// a cache of target containers' partition key definitions. Carries no secret in any property.</summary>
public sealed class MigrationConnection : IDisposable
{
    private readonly ConcurrentDictionary<string, TargetContainer> _containers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TargetContainer> _journals = new(StringComparer.Ordinal);

    private MigrationConnection(CosmosClient client, ConnectionSettings settings, string endpoint)
    {
        Client = client;
        Settings = settings;
        Endpoint = endpoint;
        Database = client.GetDatabase(settings.Database);
        Tracking = Database.GetContainer(settings.TrackingContainer);
        TrackingStore = new Tracking.TrackingStore(Tracking);
    }

    internal CosmosClient Client { get; }

    internal ConnectionSettings Settings { get; }

    internal Database Database { get; }

    internal Container Tracking { get; }

    /// <summary>The tracking documents of this database.</summary>
    public Tracking.TrackingStore TrackingStore { get; }

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
    public static async Task<MigrationConnection> OpenAsync(ConnectionSettings settings,
        Func<string, bool>? confirmCreateTrackingContainer, CancellationToken cancellationToken)
    {
        var endpoint = ValidateEndpoint(settings.Endpoint);
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

        var client = CreateClient(settings, endpoint, signIn?.Credential, out var mode);
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
        new(client, settings, ValidateEndpoint(settings.Endpoint).ToString()) { TrackingContainerExists = true };

    private static Uri ValidateEndpoint(string? endpoint)
    {
        if (string.IsNullOrWhiteSpace(endpoint))
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "EndpointMissing", "No endpoint was given.", "Endpoint",
                "Pass -Endpoint https://<account>.documents.azure.com:443/, -ConnectionString or -Emulator, or set COSMOS_ENDPOINT.");
        }

        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp) || string.IsNullOrEmpty(uri.Host))
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "InvalidEndpoint",
                $"'{endpoint}' is not a valid endpoint: it must be an absolute https:// address.", endpoint,
                "Use the account's URI from the portal, e.g. https://<account>.documents.azure.com:443/.");
        }

        return uri;
    }

    private static CosmosClient CreateClient(ConnectionSettings settings, Uri endpoint, TokenCredential? signedIn, out TransportMode mode)
    {
        var loopback = endpoint.IsLoopback;
        mode = settings.Mode == TransportMode.Default ? (loopback ? TransportMode.Gateway : TransportMode.Direct) : settings.Mode;
        var options = new CosmosClientOptions
        {
            ApplicationName = "CosmosMigrations",
            ConnectionMode = mode == TransportMode.Direct ? Microsoft.Azure.Cosmos.ConnectionMode.Direct : Microsoft.Azure.Cosmos.ConnectionMode.Gateway,
            // A local server advertises addresses that may not be reachable as given: stay on the endpoint.
            LimitToEndpoint = loopback,
            RequestTimeout = TimeSpan.FromSeconds(30),
            EnableContentResponseOnWrite = false,
            AllowBulkExecution = settings.AllowBulkExecution,
            // The SDK retries a throttled request up to nine times by itself, hiding throttling
            // from the engine; after two, the 429 reaches the engine, which halves its concurrency
            // and backs off (RequestGate), so sustained throttling slows the migration down.
            MaxRetryAttemptsOnRateLimitedRequests = 2,
        };
        if (settings.LowPriority)
        {
            options.PriorityLevel = PriorityLevel.Low;
        }

        if (settings.SkipCertificateCheck || settings.HandlerWrapper is not null)
        {
            var skip = settings.SkipCertificateCheck;
            var wrap = settings.HandlerWrapper;
            options.HttpClientFactory = () =>
            {
                var handler = new HttpClientHandler { MaxConnectionsPerServer = 64 };
                if (skip)
                {
                    handler.ServerCertificateCustomValidationCallback = (_, _, _, _) => true;
                }

                return new HttpClient(wrap is null ? handler : wrap(handler)) { Timeout = Timeout.InfiniteTimeSpan };
            };
            if (skip)
            {
                options.ServerCertificateCustomValidationCallback = (_, _, _) => true;
            }
        }
        else
        {
            // With our own HttpClientFactory the limit is the handler's MaxConnectionsPerServer.
            options.GatewayModeMaxConnectionLimit = 64;
        }

        if (signedIn is not null)
        {
            return new CosmosClient(endpoint.ToString(), signedIn, options);
        }

        if (settings.UseManagedIdentity)
        {
            TokenCredential credential = string.IsNullOrEmpty(settings.ManagedIdentityClientId)
                ? new ManagedIdentityCredential(ManagedIdentityId.SystemAssigned)
                : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(settings.ManagedIdentityClientId!));
            return new CosmosClient(endpoint.ToString(), credential, options);
        }

        if (!settings.HasKey)
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "KeyMissing", "No account key was given.", "Key",
                "Pass -Key (or -ConnectionString), use -Identity for a managed identity, or set COSMOS_KEY.");
        }

        if (!IsBase64(settings.Key!))
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "InvalidKey",
                "The account key is not valid: an account key is a base64 string.", "Key",
                "Copy the primary or secondary key from the account's Keys page.");
        }

        return new CosmosClient(endpoint.ToString(), settings.Key, options);
    }

    private static bool IsBase64(string value)
    {
        if (value.Length == 0 || value.Length % 4 != 0)
        {
            return false;
        }

        try
        {
            Convert.FromBase64String(value);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private async Task VerifyAsync(Func<string, bool>? confirmCreate, CancellationToken timeoutToken, CancellationToken userToken)
    {
        try
        {
            await Database.ReadAsync(cancellationToken: timeoutToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!userToken.IsCancellationRequested)
        {
            throw TranslateOpenFailure(ex, timeoutToken.IsCancellationRequested);
        }

        try
        {
            var properties = (await Tracking.ReadContainerAsync(cancellationToken: timeoutToken).ConfigureAwait(false)).Resource;
            if (properties.PartitionKeyPath != "/id")
            {
                throw new MigrationException(MigrationErrorKind.InvalidState, "TrackingContainerInvalid",
                    $"The tracking container '{TrackingContainerName}' exists with partition key '{properties.PartitionKeyPath}'; it must be '/id'.",
                    TrackingContainerName, "Pass -TrackingContainer with another name; the module creates it with partition key /id.");
            }

            TrackingContainerExists = true;
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            if (confirmCreate is null || confirmCreate(TrackingContainerName))
            {
                try
                {
                    await CreateContainerIfMissingAsync(new ContainerProperties(TrackingContainerName, "/id"), timeoutToken).ConfigureAwait(false);
                }
                catch (CosmosException refused) when (refused.StatusCode == HttpStatusCode.Forbidden && Settings.UsesToken)
                {
                    throw ContainerNotCreatable(refused, TrackingContainerName, "/id", "TrackingContainerMissing", "the tracking container");
                }

                TrackingContainerExists = true;
            }
        }
        catch (Exception ex) when (ex is not MigrationException && !userToken.IsCancellationRequested)
        {
            throw TranslateOpenFailure(ex, timeoutToken.IsCancellationRequested);
        }

        if (Settings.UsesToken && TrackingContainerExists)
        {
            await PreflightAsync(timeoutToken, userToken).ConfigureAwait(false);
        }
    }

    /// <summary>Whether the journal container exists (read at connect for a token's connection,
    /// which cannot create it; null when not read).</summary>
    public bool? JournalContainerExists { get; private set; }

    /// <summary>With a Microsoft Entra ID token, proves at connect what a run will need, so that a
    /// missing data-plane role fails here and not at the first write of a migration an hour later:
    /// a point read and a delete of an item that does not exist in the tracking container (the
    /// service checks the role before it looks for the item: 404 means allowed, 403 with substatus
    /// 5301 means no role). Nothing is written. Then it looks for the journal container, which a
    /// token cannot create.</summary>
    private async Task PreflightAsync(CancellationToken timeoutToken, CancellationToken userToken)
    {
        var probe = "cosmosmigrations-preflight-" + Guid.NewGuid().ToString("N");
        var key = new PartitionKey(probe);
        try
        {
            using (var read = await Tracking.ReadItemStreamAsync(probe, key, cancellationToken: timeoutToken).ConfigureAwait(false))
            {
                CheckAllowed(read, "read documents of the tracking container");
            }

            using (var delete = await Tracking.DeleteItemStreamAsync(probe, key, cancellationToken: timeoutToken).ConfigureAwait(false))
            {
                CheckAllowed(delete, "write documents of the tracking container");
            }

            try
            {
                await Database.GetContainer(JournalContainerName).ReadContainerAsync(cancellationToken: timeoutToken).ConfigureAwait(false);
                JournalContainerExists = true;
            }
            catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
            {
                JournalContainerExists = false;
            }
        }
        catch (Exception ex) when (ex is not MigrationException && !userToken.IsCancellationRequested)
        {
            throw TranslateOpenFailure(ex, timeoutToken.IsCancellationRequested);
        }
    }

    private void CheckAllowed(ResponseMessage response, string what)
    {
        if (response.StatusCode is HttpStatusCode.NotFound || response.IsSuccessStatusCode)
        {
            return;
        }

        var failure = CosmosErrors.FromResponse(response);
        if (failure.StatusCode == HttpStatusCode.Forbidden)
        {
            throw DataRoleMissing(failure, what);
        }

        throw TranslateOpenFailure(failure, false);
    }

    private MigrationException DataRoleMissing(CosmosException ex, string what) =>
        CosmosErrors.Wrap(ex, MigrationErrorKind.AuthenticationFailed, "DataRoleMissing",
            $"The identity{(Principal is { } who ? " " + who : "")} has no Cosmos DB data-plane role on {Endpoint}: the account refused to let it {what}. It needs the {SignIn.DataContributorRole} role (id {SignIn.DataContributorRoleId}).",
            Endpoint,
            $"Assign the {SignIn.DataContributorRole} role to the identity on the account: az cosmosdb sql role assignment create --account-name <account> --resource-group <group> --scope / --role-definition-id {SignIn.DataContributorRoleId} --principal-id {PrincipalObjectId ?? "<object id>"} (or New-AzCosmosDBSqlRoleAssignment). Control-plane roles such as Owner or Contributor do not grant access to data; a new assignment can take a few minutes to apply.");

    /// <summary>A token cannot create containers (the data-plane roles do not include it): say how
    /// to create the one the module needs.</summary>
    private MigrationException ContainerNotCreatable(CosmosException ex, string name, string partitionKey, string errorId, string what, string otherwise = "") =>
        CosmosErrors.Wrap(ex, MigrationErrorKind.InvalidState, errorId,
            $"{Capitalize(what)} '{name}' does not exist in database '{DatabaseName}', and a Microsoft Entra ID token cannot create containers (no data-plane role allows it).",
            name,
            $"Create it once with control-plane rights: az cosmosdb sql container create --account-name <account> --resource-group <group> --database-name {DatabaseName} --name {name} --partition-key-path {partitionKey} (or New-AzCosmosDBSqlContainer), or connect once with the account key, which creates it.{otherwise}");

    private static string Capitalize(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text.Substring(1);

    private MigrationException TranslateOpenFailure(Exception ex, bool timedOut)
    {
        if (ex is CosmosException cosmos)
        {
            switch (cosmos.StatusCode)
            {
                case HttpStatusCode.NotFound:
                    return CosmosErrors.Wrap(ex, MigrationErrorKind.DatabaseNotFound, "DatabaseNotFound",
                        $"Database '{DatabaseName}' does not exist at {Endpoint}.", DatabaseName,
                        "Check the name (it is case-sensitive); the module never creates a database. Create it first if it is new.");
                case HttpStatusCode.Forbidden when Settings.UsesToken && cosmos.SubStatusCode == 5301:
                    return DataRoleMissing(cosmos, "read the database's metadata");
                case HttpStatusCode.Unauthorized when Settings.UsesToken && (TokenExpiresOn <= DateTimeOffset.UtcNow || (cosmos.ResponseBody ?? cosmos.Message ?? "").IndexOf("expired", StringComparison.OrdinalIgnoreCase) >= 0):
                    return CosmosErrors.Wrap(ex, MigrationErrorKind.AuthenticationFailed, "AccessTokenExpired",
                        $"The account at {Endpoint} refused the access token{(Principal is { } who ? " of " + who : "")}: it has expired.", Endpoint,
                        $"Get a new token and connect again, or use -EntraId, which gets and renews tokens itself.");
                case HttpStatusCode.Unauthorized when Settings.UsesToken:
                case HttpStatusCode.Forbidden when Settings.UsesToken && !Settings.UseManagedIdentity:
                    return CosmosErrors.Wrap(ex, MigrationErrorKind.AuthenticationFailed, "AuthenticationFailed",
                        $"The account at {Endpoint} refused the Microsoft Entra ID token{(Principal is { } whose ? " of " + whose : "")}.", Endpoint,
                        $"Check that the token is for this account (audience {Endpoint.TrimEnd('/')} or https://cosmos.azure.com) and its tenant (-Tenant), and that the identity has the {SignIn.DataContributorRole} role on the account.");
                case HttpStatusCode.Unauthorized:
                case HttpStatusCode.Forbidden:
                    return CosmosErrors.Wrap(ex, MigrationErrorKind.AuthenticationFailed, "AuthenticationFailed",
                        $"The account at {Endpoint} refused the credentials.", Endpoint,
                        Settings.UseManagedIdentity
                            ? "Grant the identity a Cosmos DB data-plane role (e.g. Cosmos DB Built-in Data Contributor) on the account."
                            : "Check the key: copy the primary key or connection string from the account's Keys page.");
            }

            if ((int)cosmos.StatusCode is 0 or 503 or 408 || timedOut)
            {
                return Unreachable(ex, timedOut);
            }

            return CosmosErrors.Wrap(ex, MigrationErrorKind.ServiceError, "ConnectionFailed", $"The account at {Endpoint} answered with an error.", Endpoint);
        }

        if (ex is AuthenticationFailedException or CredentialUnavailableException || ex.InnerException is AuthenticationFailedException or CredentialUnavailableException)
        {
            return CosmosErrors.Wrap(ex, MigrationErrorKind.AuthenticationFailed, "IdentityUnavailable",
                "No token could be obtained for the managed identity.", Endpoint,
                "Run where a managed identity is assigned (Azure Automation, a VM, App Service), or use -Key / -ConnectionString.");
        }

        return Unreachable(ex, timedOut);
    }

    private MigrationException Unreachable(Exception ex, bool timedOut) =>
        FindCertificateFailure(ex) is { } tls
            ? CosmosErrors.Wrap(ex, MigrationErrorKind.ConnectionFailed, "CertificateNotTrusted",
                $"The server at {Endpoint} presented a TLS certificate that this machine does not trust ({tls.Message.TrimEnd('.')}).",
                Endpoint,
                "For the local emulator or a local test server, whose certificate is self-signed, add -SkipCertificateCheck (or DisableServerCertificateValidation=True in the connection string); -Emulator skips the check by itself. For an Azure account, check this machine's trusted root certificates and any proxy that inspects TLS.")
            : CosmosErrors.Wrap(ex, MigrationErrorKind.ConnectionFailed, "EndpointUnreachable",
            timedOut
                ? $"No answer from {Endpoint} within {Settings.ConnectTimeout.TotalSeconds:0} s."
                : $"Could not reach {Endpoint}.",
            Endpoint,
            "Check the endpoint address and port, the network path (firewall, private endpoint) and, for a local emulator, that it is running.");

    /// <summary>The TLS failure behind a failed open (the SDK wraps the HttpRequestException, whose
    /// inner AuthenticationException says the certificate was refused), if that is what it was.</summary>
    private static AuthenticationException? FindCertificateFailure(Exception? ex)
    {
        for (var depth = 0; ex is not null && depth < 16; depth++)
        {
            if (ex is AuthenticationException tls)
            {
                return tls;
            }

            if (ex is AggregateException aggregate && aggregate.InnerExceptions.Select(FindCertificateFailure).FirstOrDefault(found => found is not null) is { } inner)
            {
                return inner;
            }

            ex = ex.InnerException;
        }

        return null;
    }

    /// <summary>A container of the database with its partition key definition, cached per name
    /// (<paramref name="refresh"/> reads it again: a container deleted and created again under the
    /// same name is another container).</summary>
    public async Task<TargetContainer> GetContainerAsync(string name, CancellationToken cancellationToken, bool refresh = false)
    {
        ResourceName.Validate(name, "container");
        if (!refresh && _containers.TryGetValue(name, out var cached))
        {
            return cached;
        }

        var container = Database.GetContainer(name);
        ContainerProperties properties;
        try
        {
            properties = (await container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            var known = await ListContainersAsync(cancellationToken).ConfigureAwait(false);
            var suggestion = known.Count == 0 ? "The database has no containers." : "Containers in the database: " + string.Join(", ", known) + ".";
            throw CosmosErrors.Wrap(ex, MigrationErrorKind.ContainerNotFound, "ContainerNotFound",
                $"Container '{name}' does not exist in database '{DatabaseName}'.", name,
                $"Check the name (it is case-sensitive). {suggestion}");
        }

        var paths = properties.PartitionKeyPaths is { Count: > 0 } ? properties.PartitionKeyPaths : new[] { properties.PartitionKeyPath ?? "/id" };
        var target = new TargetContainer(name, container, new PartitionKeyReader(paths), properties.SelfLink);
        _containers[name] = target;
        return target;
    }

    /// <summary>The journal container of this connection's tracking container: where runs keep the
    /// before-images of what they change ("migrations-journal" beside "migrations").</summary>
    public string JournalContainerName => TrackingContainerName + "-journal";

    /// <summary>A journal container, created when <paramref name="create"/> and missing (see
    /// <see cref="Journal.JournalStore.NewContainerProperties"/>); missing and not to be created is
    /// JournalMissing.</summary>
    public async Task<TargetContainer> GetJournalAsync(string name, bool create, CancellationToken cancellationToken)
    {
        ResourceName.Validate(name, "journal container");
        if (_journals.TryGetValue(name, out var cached))
        {
            return cached;
        }

        var container = Database.GetContainer(name);
        try
        {
            await container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound && create)
        {
            try
            {
                await CreateContainerIfMissingAsync(Journal.JournalStore.NewContainerProperties(name), cancellationToken).ConfigureAwait(false);
            }
            catch (CosmosException refused) when (refused.StatusCode == HttpStatusCode.Forbidden && Settings.UsesToken)
            {
                throw ContainerNotCreatable(refused, name, Journal.JournalStore.PartitionKeyPath + " --ttl -1", "JournalContainerMissing", "the journal container",
                    " Or run with -NoJournal (the run then cannot be undone).");
            }
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            throw CosmosErrors.Wrap(ex, MigrationErrorKind.InvalidState, "JournalMissing",
                $"The journal container '{name}' does not exist: the before-images it held are gone.", name,
                "Nothing can be undone without them; write a new migration that reverses the change.");
        }

        var journal = new TargetContainer(name, container, new PartitionKeyReader(new[] { Journal.JournalStore.PartitionKeyPath }));
        _journals[name] = journal;
        return journal;
    }

    /// <summary>The failure store beside this connection's tracking container ("migrations-failures"
    /// beside "migrations"): documents that migrations could not change.</summary>
    public string FailureContainerName => TrackingContainerName + "-failures";

    private TargetContainer? _failures;

    /// <summary>The failure store's container, created when <paramref name="create"/> and missing
    /// (<see cref="Failures.FailureStore.NewContainerProperties"/>); null when missing and not to be created.</summary>
    public async Task<TargetContainer?> GetFailureContainerAsync(bool create, CancellationToken cancellationToken)
    {
        if (_failures is { } cached)
        {
            return cached;
        }

        var name = FailureContainerName;
        ResourceName.Validate(name, "failure store container");
        var container = Database.GetContainer(name);
        try
        {
            await container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound && !create)
        {
            return null;
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            try
            {
                await CreateContainerIfMissingAsync(Failures.FailureStore.NewContainerProperties(name), cancellationToken).ConfigureAwait(false);
            }
            catch (CosmosException refused) when (refused.StatusCode == HttpStatusCode.Forbidden && Settings.UsesToken)
            {
                throw ContainerNotCreatable(refused, name, Failures.FailureStore.PartitionKeyPath + " --ttl -1", "FailureStoreMissing", "the failure store container", "");
            }
        }

        return _failures = new TargetContainer(name, container, new PartitionKeyReader(new[] { Failures.FailureStore.PartitionKeyPath }));
    }

    public async Task<IReadOnlyList<string>> ListContainersAsync(CancellationToken cancellationToken)
    {
        var names = new List<string>();
        using var iterator = Database.GetContainerQueryIterator<ContainerProperties>();
        while (iterator.HasMoreResults)
        {
            foreach (var c in await iterator.ReadNextAsync(cancellationToken).ConfigureAwait(false))
            {
                names.Add(c.Id);
            }
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <summary>Creates the tracking container if it does not exist (for a context opened without it).</summary>
    public async Task EnsureTrackingContainerAsync(CancellationToken cancellationToken)
    {
        if (TrackingContainerExists)
        {
            return;
        }

        await CreateContainerIfMissingAsync(new ContainerProperties(TrackingContainerName, "/id"), cancellationToken).ConfigureAwait(false);
        TrackingContainerExists = true;
    }

    /// <summary>The lease container of distributed runs: beside the tracking container, named
    /// after it with "-leases", partition key /id (as the change feed processor needs). Created
    /// when missing; one that exists with another partition key is an error.</summary>
    public string LeaseContainerName => TrackingContainerName + "-leases";

    internal async Task<Container> EnsureLeaseContainerAsync(CancellationToken cancellationToken)
    {
        ResourceName.Validate(LeaseContainerName, "lease container");
        ContainerProperties properties;
        try
        {
            // Read first: the SDK's create-if-not-exists throws a bare ArgumentException when the
            // container exists with another partition key.
            properties = (await Database.GetContainer(LeaseContainerName).ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            properties = await CreateLeaseContainerAsync(cancellationToken).ConfigureAwait(false);
        }

        var keys = properties.PartitionKeyPaths is { Count: > 0 } paths ? paths : new[] { properties.PartitionKeyPath ?? "" };
        if (keys.Count != 1 || keys[0] != "/id")
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "LeaseContainerInvalid",
                $"The lease container '{LeaseContainerName}' exists with partition key '{string.Join(", ", keys)}'; the change feed processor needs '/id'.",
                LeaseContainerName, $"Use -TrackingContainer with another name on Connect-CosmosMigration (the lease container is named after it), or recreate '{LeaseContainerName}' with partition key /id.");
        }

        return Database.GetContainer(LeaseContainerName);
    }

    /// <summary>Deletes a migration's change feed leases (after a reset), if the lease container exists.</summary>
    public async Task<int> DeleteLeasesAsync(string migration, CancellationToken cancellationToken)
    {
        var leases = Database.GetContainer(LeaseContainerName);
        try
        {
            await leases.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            return 0;
        }

        return await Distributed.ProcessorLeases.DeleteAsync(leases, migration, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Creates a container unless it exists. Several processes may start at once (the
    /// workers of a distributed run, runbook jobs): the one whose create loses the race gets 409
    /// Conflict, and then reads what the winner created.</summary>
    private async Task<ContainerProperties> CreateContainerIfMissingAsync(ContainerProperties properties, CancellationToken cancellationToken)
    {
        try
        {
            return (await Database.CreateContainerIfNotExistsAsync(properties, cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.Conflict)
        {
            return (await Database.GetContainer(properties.Id).ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        }
    }

    private async Task<ContainerProperties> CreateLeaseContainerAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await CreateContainerIfMissingAsync(new ContainerProperties(LeaseContainerName, "/id"), cancellationToken).ConfigureAwait(false);
        }
        catch (CosmosException ex) when (ex.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.BadRequest)
        {
            throw CosmosErrors.Wrap(ex, MigrationErrorKind.InvalidState, "LeaseContainerUnavailable",
                $"The lease container '{LeaseContainerName}' of distributed runs could not be created in database '{DatabaseName}'.", LeaseContainerName,
                $"Create a container '{LeaseContainerName}' with partition key /id (a database with shared throughput may have no room for another container), or run without -Distributed.");
        }
    }

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

/// <summary>A target container, how to read its documents' partition keys, and its resource id
/// (the service's self link: a container deleted and created again under the same name has another).</summary>
public sealed record TargetContainer(string Name, Container Container, PartitionKeyReader PartitionKey, string? ResourceId = null);
