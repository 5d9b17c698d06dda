using System.Collections;
using System.Collections.Concurrent;
using System.Net.Http;
using CosmosMigrations.Connection;
using CosmosMigrations.Running;
using CosmosMigrations.Tests.Infrastructure;
using Microsoft.Azure.Cosmos;

namespace CosmosMigrations.Tests.Integration;

/// <summary>Connect-CosmosMigration's -LowPriority and -AllowBulkExecution reach the SDK client
/// and, from there, the requests on the wire (seen by a handler in front of the SDK).</summary>
public sealed class ClientOptionsTests(TestDatabase db, ITestOutputHelper output) : DatabaseTests(db, output)
{
    /// <summary>A container of <paramref name="documents"/> documents for the test's migration, and a
    /// connection opened with <paramref name="configure"/>'s settings, whose requests on the wire
    /// the returned handler records.</summary>
    private async Task<(Container Container, MigrationConnection Connection, RecordingHandler Wire)> OpenAsync(string container, int documents, int partitions, Action<ConnectionSettings> configure)
    {
        var seeded = await Db.CreateSeededContainerAsync(container, documents, partitions);
        var wire = new RecordingHandler();
        var settings = Db.Server.Settings(Db.Name);
        settings.HandlerWrapper = inner => { wire.InnerHandler = inner; return wire; };
        configure(settings);
        return (seeded, await MigrationConnection.OpenAsync(settings, null, CancellationToken.None), wire);
    }

    [Fact]
    public async Task Low_priority_marks_every_migration_request()
    {
        var (_, connection, wire) = await OpenAsync("lowpriority", 30, 3, s => s.LowPriority = true);
        using var _ = connection;

        Assert.True(connection.LowPriority);
        Assert.Equal(Microsoft.Azure.Cosmos.PriorityLevel.Low, connection.Client.ClientOptions.PriorityLevel);
        var result = await new MigrationRunner(connection).RunAsync(TestDefinitions.AddFlag("low-add", "lowpriority"), new RunOptions(), null, CancellationToken.None);

        Assert.Equal("completed", result.Status.Status);
        var patches = wire.Requests.Where(r => r.Method == "PATCH").ToList();
        Assert.Equal(30, patches.Count);
        Assert.All(patches, r => Assert.Equal("Low", r.Priority));
        Assert.All(wire.Requests.Where(r => r.Path.Contains("/docs", StringComparison.Ordinal)), r => Assert.Equal("Low", r.Priority));
    }

    [Fact]
    public async Task Without_low_priority_requests_carry_no_priority()
    {
        var (_, connection, wire) = await OpenAsync("normalpriority", 5, 1, _ => { });
        using var _ = connection;

        Assert.False(connection.LowPriority);
        var result = await new MigrationRunner(connection).RunAsync(TestDefinitions.AddFlag("normal-add", "normalpriority"), new RunOptions(), null, CancellationToken.None);

        Assert.Equal("completed", result.Status.Status);
        Assert.All(wire.Requests, r => Assert.Null(r.Priority));
    }

    [Fact]
    public async Task Bulk_mode_sends_the_writes_as_batches()
    {
        var (container, connection, wire) = await OpenAsync("bulk", 10, 2, s => s.AllowBulkExecution = true);
        using var _ = connection;

        Assert.True(connection.AllowBulkExecution);
        Assert.True(connection.Client.ClientOptions.AllowBulkExecution);
        RunResult? result = null;
        Errors.MigrationException? error = null;
        try
        {
            result = await new MigrationRunner(connection).RunAsync(TestDefinitions.AddFlag("bulk-add", "bulk"), new RunOptions(), null, CancellationToken.None);
        }
        catch (Errors.MigrationException ex)
        {
            error = ex;
        }

        // The SDK groups point operations into batch requests instead of sending each alone.
        Assert.Contains(wire.Requests, r => r.Batch);
        Assert.DoesNotContain(wire.Requests, r => r.Method == "PATCH");
        if (Db.Server.IsHarness)
        {
            // The local server cannot parse the SDK's binary batch format (docs/performance.md):
            // the command stops with the server's answer, having written nothing.
            Assert.NotNull(error);
            Assert.Contains("HTTP 500", error!.Message, StringComparison.Ordinal);
            Assert.Empty(await TestDatabase.ReadAllAsync(container, "SELECT * FROM c WHERE IS_DEFINED(c.flag)"));
        }
        else
        {
            Assert.Null(error);
            Assert.Equal("completed", result!.Status.Status);
        }
    }

    private sealed record WireRequest(string Method, string Path, string? Priority, bool Batch);

    private sealed class RecordingHandler : DelegatingHandler
    {
        public ConcurrentQueue<WireRequest> Requests { get; } = new();

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var priority = request.Headers.TryGetValues("x-ms-cosmos-priority-level", out var values) ? values.First() : null;
            var batch = request.Headers.TryGetValues("x-ms-cosmos-is-batch-request", out var flags) && flags.Any(f => string.Equals(f, "True", StringComparison.OrdinalIgnoreCase));
            Requests.Enqueue(new WireRequest(request.Method.Method, request.RequestUri?.AbsolutePath ?? "", priority, batch));
            return base.SendAsync(request, cancellationToken);
        }
    }
}
