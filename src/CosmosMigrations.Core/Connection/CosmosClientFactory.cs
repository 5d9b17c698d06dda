using System.Net.Http;
using Azure.Core;
using Azure.Identity;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Connection;

/// <summary>Builds the Cosmos client of a connection from its settings: the endpoint checked, the
/// transport, HTTP handler and retry options, and the credential. Holds no secret.</summary>
internal static class CosmosClientFactory
{
    /// <summary>The account's endpoint, checked: an absolute http(s) address.</summary>
    internal static Uri ValidateEndpoint(string? endpoint)
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

    /// <summary>The SDK's client for these settings: gateway on a loopback endpoint, else direct
    /// (unless asked); the credential a sign-in gave, a managed identity, or the account key.</summary>
    internal static CosmosClient Create(ConnectionSettings settings, Uri endpoint, TokenCredential? signedIn, out TransportMode mode)
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
}
