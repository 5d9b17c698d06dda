using System;
using System.Net.Http;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace CosmosMigrations.TestKit;

/// <summary>The one client of the local server's harness routes (<c>/_harness/…</c>, not part of the
/// Cosmos protocol; tests/LocalCosmos/README.md): the build's server lifecycle, the benchmark, the
/// Pester suites (through <see cref="TestData"/>) and the xunit fixture all go through it. Answers
/// are the server's JSON text; a route that fails throws with its status and answer.</summary>
public sealed class LocalServerAdmin : IDisposable
{
    private readonly HttpClient _http;

    public LocalServerAdmin(string endpoint)
    {
        // The local server's certificate is self-signed.
        _http = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true })
        {
            BaseAddress = new Uri(endpoint),
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    /// <summary>Sets the fault injection (JSON as the server reads it; <c>{}</c> clears it); answers the settings.</summary>
    public Task<string> SetFaultsAsync(string json) => PostAsync("/_harness/faults", json);

    /// <summary>Splits a partition key range of a container (the fullest when <paramref name="range"/>
    /// is null), as the service does when a range grows; answers {"parent", "children"}.</summary>
    public Task<string> SplitAsync(string database, string container, string? range = null) =>
        PostAsync("/_harness/split", JsonSerializer.Serialize(new { database, container, range }));

    /// <summary>Makes a container's all-versions-and-deletes change log forget what it holds, as the
    /// service does past the retention window (an older continuation then gets a 400); answers {"dropped"}.</summary>
    public Task<string> ExpireChangeLogAsync(string database, string container) =>
        PostAsync("/_harness/expire", JsonSerializer.Serialize(new { database, container }));

    /// <summary>The live ranges of a container: {"ranges": [{id, bounds, parents, LSN, document count}]}.</summary>
    public Task<string> RangesAsync(string database, string container) =>
        GetAsync($"/_harness/ranges?database={Uri.EscapeDataString(database)}&container={Uri.EscapeDataString(container)}");

    /// <summary>Requests by status, method, container, range and authorization type, and faults injected.</summary>
    public Task<string> StatsAsync() => GetAsync("/_harness/stats");

    /// <summary>{"ok": true, "partitions": N} (the partition key ranges of a new container).</summary>
    public Task<string> HealthAsync(CancellationToken cancellation = default) => GetAsync("/_harness/health", cancellation);

    /// <summary>The partition key ranges the server gives a new container.</summary>
    public async Task<int> PartitionsAsync()
    {
        using var health = JsonDocument.Parse(await HealthAsync());
        return health.RootElement.GetProperty("partitions").GetInt32();
    }

    /// <summary>True when a server answers the health route within <paramref name="timeout"/>.</summary>
    public bool IsUp(TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            HealthAsync(cancellation.Token).GetAwaiter().GetResult();
            return true;
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or InvalidOperationException)
        {
            return false;
        }
    }

    public async Task<string> PostAsync(string route, string json)
    {
        using var body = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await _http.PostAsync(route, body);
        return await AnswerAsync(route, response);
    }

    /// <summary>Any request to the server as it is (a test signs it as a client would).</summary>
    public Task<HttpResponseMessage> SendAsync(HttpRequestMessage request) => _http.SendAsync(request);

    private async Task<string> GetAsync(string route, CancellationToken cancellation = default)
    {
        using var response = await _http.GetAsync(route, cancellation);
        return await AnswerAsync(route, response);
    }

    private static async Task<string> AnswerAsync(string route, HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{route.Split('?')[0]} answered {(int)response.StatusCode}: {text}");
        }

        return text;
    }

    public void Dispose() => _http.Dispose();
}
