using System;
using System.Linq;
using System.Diagnostics;
using System.IO;
using System.Net.Http;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Tests.Infrastructure;

/// <summary>The Cosmos DB endpoint the tests talk to: COSMOS_ENDPOINT / COSMOS_KEY when set (the
/// official emulator, a real account, or the harness build.ps1 started), else the local harness
/// started here for this test run. Never a mock.</summary>
public sealed class CosmosTestServer : IAsyncDisposable
{
    private static readonly SemaphoreSlim StartLock = new(1, 1);
    private static CosmosTestServer? _shared;
    private readonly Process? _process;
    private readonly HttpClient _admin;

    private CosmosTestServer(string endpoint, string key, bool harness, Process? process)
    {
        Endpoint = endpoint;
        Key = key;
        IsHarness = harness;
        _process = process;
        _admin = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true })
        {
            BaseAddress = new Uri(endpoint),
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    /// <summary>The partition key ranges of a new container when this class starts the server.</summary>
    public const int DefaultPartitions = 4;

    public string Endpoint { get; }

    public string Key { get; }

    /// <summary>True when the server is our harness (fault injection and hooks are available).</summary>
    public bool IsHarness { get; }

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
            var harness = Environment.GetEnvironmentVariable("COSMOSMIGRATIONS_HARNESS") == "1";
            return new CosmosTestServer(endpoint, key, harness, null);
        }

        var root = FindRepositoryRoot();
        var script = Path.Combine(root, "tests", "LocalCosmos", "server.js");
        if (!Directory.Exists(Path.Combine(root, "tests", "LocalCosmos", "node_modules")))
        {
            throw new InvalidOperationException("The local Cosmos DB harness is not installed: run 'npm ci' in tests/LocalCosmos, or use build.ps1 -Task Test.");
        }

        // As build.ps1 starts it: several partition key ranges per container (tests/LocalCosmos/README.md).
        var start = new ProcessStartInfo
        {
            // Its standard input is a pipe from this process: the server stops when it closes
            // (--exit-with-stdin), even if this process is killed.
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (OperatingSystem.IsWindows())
        {
            start.FileName = "node";
        }
        else
        {
            // Through sh, which closes every descriptor above stderr first (as build.ps1 does): a
            // server that outlived this process kept the lock of 'flock … dotnet test' (inherited
            // through the test host), and every build waiting on that lock waited for ever.
            start.FileName = "sh";
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add("for fd in /proc/$$/fd/*; do n=${fd##*/}; [ \"$n\" -gt 2 ] && [ \"$n\" -lt 10 ] && eval \"exec $n>&-\"; done; exec node \"$@\"");
            start.ArgumentList.Add("sh");
        }

        foreach (var argument in new[] { script, "--port", "0", "--partitions", $"{DefaultPartitions}", "--exit-with-stdin" })
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start)!;
        // The shared server is never disposed: without this it outlived the test run, holding the
        // files it inherited (the shared build lock of `flock … dotnet test` among them).
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
            catch (InvalidOperationException)
            {
                // Exited meanwhile.
            }
        };
        var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var state = JObject.Parse(line ?? throw new InvalidOperationException("The harness printed nothing."));
        _ = process.StandardError.ReadToEndAsync();
        return new CosmosTestServer((string)state["endpoint"]!, ConnectionSettings.EmulatorKey, true, process);
    }

    private static string FindRepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Cmdlets.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (Cmdlets.sln).");
    }

    public ConnectionSettings Settings(string database)
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

    /// <summary>Sets the harness's fault injection (see tests/LocalCosmos/server.js).</summary>
    public async Task SetFaultsAsync(object faults)
    {
        if (!IsHarness)
        {
            throw new InvalidOperationException("Fault injection needs the local harness.");
        }

        using var body = new StringContent(JObject.FromObject(faults).ToString(), Encoding.UTF8, "application/json");
        using var response = await _admin.PostAsync("/_harness/faults", body);
        response.EnsureSuccessStatusCode();
    }

    /// <summary>Splits a partition key range of a container (the fullest when <paramref name="range"/>
    /// is null), as the service does when a range grows; answers {"parent", "children"}.</summary>
    public Task<JObject> SplitAsync(string database, string container, string? range = null) =>
        PostHarnessAsync("/_harness/split", new JObject { ["database"] = database, ["container"] = container, ["range"] = range });

    /// <summary>The live ranges of a container with their document counts and LSNs.</summary>
    public async Task<JArray> RangesAsync(string database, string container)
    {
        using var response = await _admin.GetAsync($"/_harness/ranges?database={Uri.EscapeDataString(database)}&container={Uri.EscapeDataString(container)}");
        response.EnsureSuccessStatusCode();
        return (JArray)JObject.Parse(await response.Content.ReadAsStringAsync())["ranges"]!;
    }

    /// <summary>The partition key ranges the harness gives a new container.</summary>
    public async Task<int> PartitionsAsync()
    {
        using var response = await _admin.GetAsync("/_harness/health");
        response.EnsureSuccessStatusCode();
        return (int)JObject.Parse(await response.Content.ReadAsStringAsync())["partitions"]!;
    }

    public async Task<JObject> PostHarnessAsync(string path, JObject body)
    {
        if (!IsHarness)
        {
            throw new InvalidOperationException("Harness hooks need the local harness.");
        }

        using var content = new StringContent(body.ToString(), Encoding.UTF8, "application/json");
        using var response = await _admin.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{path} answered {(int)response.StatusCode}: {text}");
        }

        return JObject.Parse(text);
    }

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

    public async Task<JObject> StatsAsync()
    {
        using var response = await _admin.GetAsync("/_harness/stats");
        return JObject.Parse(await response.Content.ReadAsStringAsync());
    }

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
