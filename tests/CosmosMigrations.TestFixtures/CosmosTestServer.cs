using System;
using System.Diagnostics;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.TestKit;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Tests.Infrastructure;

/// <summary>The Cosmos DB endpoint the tests talk to: COSMOS_ENDPOINT / COSMOS_KEY when set (the
/// official emulator, a real account, or the local server build.ps1 started), else a local server
/// started here for this test run, which goes with the test host. Never a mock.</summary>
public sealed class CosmosTestServer : IAsyncDisposable
{
    private static readonly SemaphoreSlim StartLock = new(1, 1);
    private static CosmosTestServer? _shared;
    private readonly Process? _process;
    private readonly LocalServerAdmin _admin;

    private CosmosTestServer(string endpoint, string key, bool harness, Process? process)
    {
        Endpoint = endpoint;
        Key = key;
        IsHarness = harness;
        _process = process;
        _admin = new LocalServerAdmin(endpoint);
    }

    /// <summary>The partition key ranges of a new container when this class starts the server
    /// (as build.ps1 starts it: tests/LocalCosmos/README.md).</summary>
    public const int DefaultPartitions = 4;

    public string Endpoint { get; }

    public string Key { get; }

    /// <summary>True when the server is our harness (fault injection and hooks are available).</summary>
    public bool IsHarness { get; }

    /// <summary>Whether the tests will talk to the harness, known before the server starts (for
    /// <see cref="HarnessFactAttribute"/>): the local server this class starts, or an endpoint given
    /// by COSMOS_ENDPOINT / COSMOS_KEY that COSMOSMIGRATIONS_HARNESS=1 says is the local server.</summary>
    public static bool OnHarness =>
        string.IsNullOrEmpty(Environment.GetEnvironmentVariable("COSMOS_ENDPOINT")) || string.IsNullOrEmpty(Environment.GetEnvironmentVariable("COSMOS_KEY"))
        || Environment.GetEnvironmentVariable("COSMOSMIGRATIONS_HARNESS") == "1";

    public static async Task<CosmosTestServer> GetAsync()
    {
        await StartLock.WaitAsync();
        try
        {
            return _shared ??= await StartAsync();
        }
        finally
        {
            StartLock.Release();
        }
    }

    private static async Task<CosmosTestServer> StartAsync()
    {
        var endpoint = Environment.GetEnvironmentVariable("COSMOS_ENDPOINT");
        var key = Environment.GetEnvironmentVariable("COSMOS_KEY");
        if (!string.IsNullOrEmpty(endpoint) && !string.IsNullOrEmpty(key))
        {
            return new CosmosTestServer(endpoint, key, OnHarness, null);
        }

        var (process, started) = await LocalServerProcess.StartAttachedAsync(LocalServerProcess.FindServerScript(AppContext.BaseDirectory), DefaultPartitions);
        return new CosmosTestServer(started, ConnectionSettings.EmulatorKey, true, process);
    }

    internal ConnectionSettings Settings(string database)
    {
        var settings = new ConnectionSettings { Endpoint = Endpoint, Database = database, SkipCertificateCheck = true };
        settings.SetKey(Key);
        return settings;
    }

    public CosmosClient CreateClient(Func<HttpMessageHandler, HttpMessageHandler>? wrap = null) =>
        new(Endpoint, Key, new CosmosClientOptions
        {
            ConnectionMode = ConnectionMode.Gateway,
            LimitToEndpoint = true,
            HttpClientFactory = () =>
            {
                HttpMessageHandler handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
                return new HttpClient(wrap is null ? handler : wrap(handler));
            },
        });

    /// <summary>Sets the harness's fault injection (tests/LocalCosmos/README.md).</summary>
    public Task SetFaultsAsync(object faults) => Harness().SetFaultsAsync(JObject.FromObject(faults).ToString());

    /// <summary>Splits a partition key range of a container (the fullest when <paramref name="range"/>
    /// is null), as the service does when a range grows; answers {"parent", "children"}.</summary>
    public async Task<JObject> SplitAsync(string database, string container, string? range = null) =>
        JObject.Parse(await Harness().SplitAsync(database, container, range));

    /// <summary>The live ranges of a container with their document counts and LSNs.</summary>
    public async Task<JArray> RangesAsync(string database, string container) =>
        (JArray)JObject.Parse(await Harness().RangesAsync(database, container))["ranges"]!;

    /// <summary>The partition key ranges the harness gives a new container.</summary>
    public Task<int> PartitionsAsync() => Harness().PartitionsAsync();

    public async Task<JObject> PostHarnessAsync(string path, JObject body) =>
        JObject.Parse(await Harness().PostAsync(path, body.ToString()));

    public async Task<JObject> StatsAsync() => JObject.Parse(await Harness().StatsAsync());

    /// <summary>Sends a raw request to the server, signed with the account key as a client signs it
    /// (the server checks master-key signatures as the service does).</summary>
    public Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request)
    {
        var segments = request.RequestUri!.OriginalString.Split('?')[0].Trim('/').Split('/');
        // A feed (odd segments: /dbs/x/colls) is signed with its parent's link; an item with its own.
        var (type, link) = segments.Length % 2 == 1
            ? (segments[^1], string.Join("/", segments.Take(segments.Length - 1)))
            : (segments[^2], string.Join("/", segments));
        var date = DateTime.UtcNow.ToString("r", System.Globalization.CultureInfo.InvariantCulture);
        var text = $"{request.Method.Method.ToLowerInvariant()}\n{type.ToLowerInvariant()}\n{link}\n{date.ToLowerInvariant()}\n\n";
        using var hmac = new System.Security.Cryptography.HMACSHA256(Convert.FromBase64String(Key));
        var signature = Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(text)));
        request.Headers.TryAddWithoutValidation("x-ms-date", date);
        request.Headers.TryAddWithoutValidation("authorization", Uri.EscapeDataString($"type=master&ver=1.0&sig={signature}"));
        return _admin.SendAsync(request);
    }

    private LocalServerAdmin Harness() =>
        IsHarness ? _admin : throw new InvalidOperationException("Harness hooks (faults, splits, ranges, stats) need the local server.");

    public async ValueTask DisposeAsync()
    {
        _admin.Dispose();
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }
}
