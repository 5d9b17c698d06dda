using System.Runtime.InteropServices;
using Azure.Core;
using Azure.Identity;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Connection;

/// <summary>Keyless sign-in (<c>-EntraId</c>, <c>-AccessToken</c>): finds a Microsoft Entra ID
/// token the way the person or pipeline is already signed in, trying Azure.Identity's credentials
/// in the order that fits PowerShell users: the environment's service principal or workload
/// identity, the Az PowerShell context, the Azure CLI, a managed identity and, in an interactive
/// session only, a browser or device-code sign-in. No credential is written here: each source is
/// Azure.Identity's own; this class only orders them, bounds their time, and, when none works,
/// says in one error what each said and how to fix it. The token itself never leaves the
/// credential handed to the Cosmos client (no message, property or log holds it).</summary>
internal static class SignIn
{
    /// <summary>The role a data-plane identity needs, by name and by its built-in id.</summary>
    public const string DataContributorRole = "Cosmos DB Built-in Data Contributor";

    public const string DataContributorRoleId = "00000000-0000-0000-0000-000000000002";

    /// <summary>How long a managed identity may take to answer where no identity endpoint is named
    /// in the environment: the instance metadata service answers in milliseconds on Azure, and
    /// elsewhere (a laptop) the address is not there at all.</summary>
    internal static readonly TimeSpan MetadataServiceProbe = TimeSpan.FromSeconds(3);

    /// <summary>How long an interactive sign-in may wait for the person (Ctrl+C stops it sooner).</summary>
    internal static readonly TimeSpan InteractiveWait = TimeSpan.FromMinutes(5);

    public sealed record Result(TokenCredential Credential, string Source, TokenClaims Claims);

    private sealed record Source(string Name, string CredentialName, Func<TimeSpan, TokenCredential?> Create, string Fix, bool Interactive = false, string? SkipReason = null);

    /// <summary>The scope the Cosmos SDK asks tokens for (AZURE_COSMOS_AAD_SCOPE_OVERRIDE, else the
    /// account's host), so the probe here proves what the client will get.</summary>
    public static string ScopeOf(Uri endpoint) =>
        Environment.GetEnvironmentVariable("AZURE_COSMOS_AAD_SCOPE_OVERRIDE") is { Length: > 0 } overridden ? overridden : $"https://{endpoint.Host}/.default";

    /// <summary>The credential of <paramref name="settings"/> (AccessToken or EntraId), proven to give a token.</summary>
    public static async Task<Result> SignInAsync(ConnectionSettings settings, Uri endpoint, CancellationToken cancellationToken)
    {
        if (settings.Authentication == AuthenticationMode.AccessToken)
        {
            return FromAccessToken(settings, endpoint);
        }

        var scope = ScopeOf(endpoint);
        var trace = settings.Trace ?? (_ => { });
        var sources = SourcesOf(settings);
        trace($"Signing in to Microsoft Entra ID for {endpoint} (scope {scope}); trying in order: {string.Join(", ", sources.Select(s => s.Name))}.");
        var failures = new List<(Source Source, string Reason)>();
        var deadline = DateTimeOffset.UtcNow + settings.ConnectTimeout;
        foreach (var source in sources)
        {
            if (source.SkipReason is not null)
            {
                trace($"{source.Name}: skipped ({source.SkipReason}).");
                failures.Add((source, source.SkipReason));
                continue;
            }

            var left = deadline - DateTimeOffset.UtcNow;
            if (!source.Interactive && left <= TimeSpan.Zero)
            {
                failures.Add((source, $"not tried: the {settings.ConnectTimeout.TotalSeconds:0} s of -TimeoutSec were spent on the sources before it"));
                continue;
            }

            var bound = source.Interactive ? InteractiveWait : left;
            TokenCredential? credential;
            try
            {
                credential = source.Create(bound);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or CredentialUnavailableException)
            {
                failures.Add((source, Reason(ex)));
                continue;
            }

            if (credential is null)
            {
                continue;
            }

            trace($"{source.Name}: asking {source.CredentialName} for a token (at most {bound.TotalSeconds:0} s).");
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(bound);
            try
            {
                var token = await GetTokenAsync(credential, scope, settings.Tenant, timeout.Token).ConfigureAwait(false);
                var claims = TokenClaims.Read(token.Token);
                trace($"Signed in with {source.Name} ({source.CredentialName}){(claims.Describe() is { } who ? " as " + who : "")}; the token is valid until {token.ExpiresOn.UtcDateTime:yyyy-MM-dd HH:mm} UTC.");
                return new Result(ReuseFirst(credential, scope, token), source.Name, claims);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                failures.Add((source, $"no token within {bound.TotalSeconds:0} s"));
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is not OperationCanceledException)
            {
                failures.Add((source, Reason(ex)));
            }

            trace($"{source.Name}: {failures[failures.Count - 1].Reason}");
        }

        throw NoneAvailable(endpoint, failures);
    }

    private static Result FromAccessToken(ConnectionSettings settings, Uri endpoint)
    {
        var token = settings.AccessToken;
        if (string.IsNullOrEmpty(token))
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "AccessTokenMissing", "The access token is empty.", "AccessToken",
                $"Pass a token for {endpoint.Scheme}://{endpoint.Host} (for example (Get-AzAccessToken -ResourceUrl {endpoint.Scheme}://{endpoint.Host} -AsSecureString).Token), or use -EntraId.");
        }

        var claims = TokenClaims.Read(token!);
        if (claims.ExpiresOn is { } expires && expires <= DateTimeOffset.UtcNow)
        {
            throw Expired(endpoint, expires, claims);
        }

        // A token obtained elsewhere is used as it is: refreshing it is the caller's concern.
        var lifetime = claims.ExpiresOn ?? DateTimeOffset.UtcNow.AddHours(1);
        var fixedToken = new AccessToken(token!, lifetime);
        settings.Trace?.Invoke($"Using the access token given with -AccessToken{(claims.Describe() is { } who ? " (" + who + ")" : "")}, valid until {lifetime.UtcDateTime:yyyy-MM-dd HH:mm} UTC.");
        return new Result(DelegatedTokenCredential.Create((_, _) => fixedToken), "AccessToken", claims);
    }

    /// <summary>The token is expired: it never reaches the service.</summary>
    public static MigrationException Expired(Uri endpoint, DateTimeOffset expires, TokenClaims claims) =>
        new(MigrationErrorKind.AuthenticationFailed, "AccessTokenExpired",
            $"The access token{(claims.Describe() is { } who ? " of " + who : "")} expired at {expires.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC.", endpoint.ToString(),
            $"Get a new token and connect again, e.g. -AccessToken (Get-AzAccessToken -ResourceUrl {endpoint.Scheme}://{endpoint.Host} -AsSecureString).Token, or use -EntraId, which gets and renews tokens itself.");

    private static async Task<AccessToken> GetTokenAsync(TokenCredential credential, string scope, string? tenant, CancellationToken cancellationToken)
    {
        try
        {
            return await credential.GetTokenAsync(new TokenRequestContext(new[] { scope }, tenantId: tenant), cancellationToken).ConfigureAwait(false);
        }
        catch (AuthenticationFailedException ex) when (ex.Message.Contains("AADSTS500011") && scope != "https://cosmos.azure.com/.default")
        {
            // The tenant does not know the account's own audience: the SDK then asks for the
            // service-wide one, and so does the probe.
            return await credential.GetTokenAsync(new TokenRequestContext(new[] { "https://cosmos.azure.com/.default" }, tenantId: tenant), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The credential, answering the SDK's first request with the token the probe already
    /// got (the Azure CLI and Az PowerShell start a process for every token).</summary>
    private static TokenCredential ReuseFirst(TokenCredential credential, string scope, AccessToken first)
    {
        var pending = 1;
        AccessToken? Take(TokenRequestContext context) =>
            context.Scopes.Length == 1 && context.Scopes[0] == scope && first.ExpiresOn > DateTimeOffset.UtcNow.AddMinutes(5) && Interlocked.Exchange(ref pending, 0) == 1
                ? first
                : null;
        return DelegatedTokenCredential.Create(
            (context, ct) => Take(context) ?? credential.GetToken(context, ct),
            async (context, ct) => Take(context) ?? await credential.GetTokenAsync(context, ct).ConfigureAwait(false));
    }

    private static List<Source> SourcesOf(ConnectionSettings settings)
    {
        var tenant = settings.Tenant;
        var clientId = settings.ManagedIdentityClientId;
        var tenantHint = tenant is null ? "" : " -Tenant " + tenant;
        var namedEndpoint = Environment.GetEnvironmentVariable("IDENTITY_ENDPOINT") is { Length: > 0 } || Environment.GetEnvironmentVariable("MSI_ENDPOINT") is { Length: > 0 };
        var sources = new List<Source>
        {
            new("the environment's service principal", nameof(EnvironmentCredential), _ => new EnvironmentCredential(),
                "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH), as a pipeline's service connection does"),
            new("the environment's workload identity", nameof(WorkloadIdentityCredential), _ => new WorkloadIdentityCredential(new WorkloadIdentityCredentialOptions { TenantId = tenant }),
                "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE (an AKS workload identity sets them; in GitHub Actions or Azure Pipelines, sign in with azure/login or the AzureCLI task, then the Azure CLI source applies)"),
            new("the Az PowerShell context", nameof(AzurePowerShellCredential), bound => new AzurePowerShellCredential(new AzurePowerShellCredentialOptions { TenantId = tenant, ProcessTimeout = bound }),
                $"run Connect-AzAccount{(tenant is null ? "" : " -Tenant " + tenant)} (Az.Accounts 2.2 or later, in PowerShell 7 as pwsh)"),
            new("the Azure CLI", nameof(AzureCliCredential), bound => new AzureCliCredential(new AzureCliCredentialOptions { TenantId = tenant, ProcessTimeout = bound }),
                $"run az login{(tenant is null ? "" : " --tenant " + tenant)}"),
            new("a managed identity", nameof(ManagedIdentityCredential), bound => ManagedIdentity(clientId, namedEndpoint ? bound : Min(bound, MetadataServiceProbe)),
                "run where a managed identity is assigned (Azure Automation, a virtual machine, App Service or Functions, AKS), naming a user-assigned one with -ManagedIdentityClientId"),
        };
        var interactiveFix = $"run Connect-CosmosMigration -EntraId{tenantHint} at an interactive prompt (it opens a browser, or shows a device code)";
        if (!settings.AllowInteractiveSignIn)
        {
            sources.Add(new Source("an interactive sign-in", "InteractiveBrowserCredential, DeviceCodeCredential", _ => null, interactiveFix, Interactive: true,
                SkipReason: "the session is not interactive (a runbook or pipeline, -NonInteractive, or input redirected)"));
            return sources;
        }

        if (CanOpenBrowser())
        {
            sources.Add(new Source("a browser sign-in", nameof(InteractiveBrowserCredential),
                _ => new InteractiveBrowserCredential(new InteractiveBrowserCredentialOptions { TenantId = tenant }), interactiveFix, Interactive: true));
        }

        var prompt = settings.SignInPrompt ?? settings.Trace ?? (_ => { });
        sources.Add(new Source("a device-code sign-in", nameof(DeviceCodeCredential),
            _ => new DeviceCodeCredential(new DeviceCodeCredentialOptions
            {
                TenantId = tenant,
                DeviceCodeCallback = (info, _) =>
                {
                    prompt(info.Message);
                    return Task.CompletedTask;
                },
            }), interactiveFix, Interactive: true));
        return sources;
    }

    private static TokenCredential ManagedIdentity(string? clientId, TimeSpan bound)
    {
        var id = string.IsNullOrEmpty(clientId) ? ManagedIdentityId.SystemAssigned : ManagedIdentityId.FromUserAssignedClientId(clientId!);
        var options = new ManagedIdentityCredentialOptions(id);
        // One attempt within the bound: retries with back-off would outlast -TimeoutSec where no
        // identity endpoint exists.
        options.Retry.MaxRetries = 0;
        options.Retry.NetworkTimeout = bound;
        return new ManagedIdentityCredential(options);
    }

    /// <summary>A browser can open on Windows and macOS, and on Linux with a display outside SSH.</summary>
    private static bool CanOpenBrowser()
    {
        if (RuntimeInformation.IsOSPlatform(OSPlatform.Windows) || RuntimeInformation.IsOSPlatform(OSPlatform.OSX))
        {
            return true;
        }

        var display = Environment.GetEnvironmentVariable("DISPLAY") is { Length: > 0 } || Environment.GetEnvironmentVariable("WAYLAND_DISPLAY") is { Length: > 0 };
        return display && Environment.GetEnvironmentVariable("SSH_CONNECTION") is not { Length: > 0 };
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>What a credential said, in one line (its messages end with links and tracebacks).</summary>
    private static string Reason(Exception ex)
    {
        var inner = ex;
        while (inner is AggregateException { InnerExceptions.Count: 1 } aggregate)
        {
            inner = aggregate.InnerExceptions[0];
        }

        var text = CosmosErrors.FirstLine(inner.Message);
        var troubleshoot = text.IndexOf(" See the troubleshooting guide", StringComparison.Ordinal);
        return troubleshoot > 0 ? text.Substring(0, troubleshoot) : text;
    }

    private static MigrationException NoneAvailable(Uri endpoint, List<(Source Source, string Reason)> failures)
    {
        var lines = failures.Select((f, i) => $"  {i + 1}. {Capitalize(f.Source.Name)} ({f.Source.CredentialName}): {f.Reason.TrimEnd('.')}. Fix: {f.Source.Fix}.");
        return new MigrationException(MigrationErrorKind.AuthenticationFailed, "EntraIdUnavailable",
            $"No Microsoft Entra ID sign-in was available for {endpoint}. Tried, in order:{Environment.NewLine}{string.Join(Environment.NewLine, lines)}",
            endpoint.ToString(),
            $"Sign in one of these ways (at a prompt: Connect-AzAccount or az login), then connect again; or pass a token with -AccessToken. The identity also needs a data-plane role on the account: assign it the {DataContributorRole} role (id {DataContributorRoleId}).");
    }

    private static string Capitalize(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text.Substring(1);
}
