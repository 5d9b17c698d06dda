using System.Security.Authentication;
using Azure.Identity;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Connection;

public sealed partial class MigrationConnection
{
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
}
