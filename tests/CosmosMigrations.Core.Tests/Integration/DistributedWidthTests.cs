using CosmosMigrations.Connection;
using CosmosMigrations.Errors;
using CosmosMigrations.Running;
using CosmosMigrations.Tests.Infrastructure;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Tests.Integration;

/// <summary>A distributed run at width: many change feed processor instances in one process share
/// one migration over many feed ranges, and the count is exact by construction (each range's
/// ledger beside its lease), with no document that every worker writes per batch.</summary>
public sealed class DistributedWidthTests(TestDatabase db, ITestOutputHelper output) : DatabaseTests(db, output)
{
    [HarnessFact("splitting ranges on demand needs the local harness")]
    public async Task Sixteen_instances_over_sixteen_ranges_change_every_document_once_and_count_it_once()
    {
        const int total = 2000;
        var container = await Db.CreateSeededContainerAsync("width16", total, 200);
        while ((await Db.Server.RangesAsync(Db.Name, "width16")).Count < 16)
        {
            await Db.Server.SplitAsync(Db.Name, "width16");
        }

        static long Patches(JObject stats) => (long?)stats["byContainer"]?["width16 PATCH 200"] ?? 0;
        var before = Patches(await Db.Server.StatsAsync());
        var connections = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => MigrationConnection.OpenAsync(Db.Server.Settings(Db.Name), null, CancellationToken.None)));
        try
        {
            var definition = TestDefinitions.AddField("width-16", "width16", "w", 1);
            var results = await Task.WhenAll(connections.Select((connection, i) =>
                new MigrationRunner(connection) { Log = m => Output.WriteLine($"[{i}] {m}") }
                    .RunAsync(definition, new RunOptions { Distributed = true, LeaseDuration = TimeSpan.FromSeconds(5) }, null, CancellationToken.None)));

            Assert.All(results, r => Assert.Null(r.Error));
            Assert.All(results, r => Assert.Equal("completed", r.Status.Status));
            var tracking = await TrackingStore.Of(connections[0]).GetAsync("width-16", CancellationToken.None);
            Assert.Equal(total, tracking!.Processed);
            Assert.Equal(16, tracking.Workers!.Count);
            Assert.Equal(total, tracking.Workers.Values.Sum(w => w.Processed));
            Assert.Equal(total, (await TestDatabase.ReadAllAsync(container, "SELECT * FROM c WHERE c.w = 1")).Count);
            Assert.Equal(total, Patches(await Db.Server.StatsAsync()) - before);
        }
        finally
        {
            foreach (var connection in connections)
            {
                connection.Dispose();
            }
        }
    }

    [HarnessFact("counting requests by container needs the local harness")]
    public async Task Eight_workers_starting_together_all_start_at_once_and_return_together()
    {
        // Four ranges, eight workers started at the same moment. The SDK initializes the lease
        // store under a lock and makes every instance that finds it taken sleep 15 s: before
        // ProcessorStart, seven of eight workers started 15 s late and returned 13 s after the run
        // had ended. Now one claims the start and the others wait for it, not for the SDK's sleep.
        // At most four hold a range at any time; the others read the tracking document between
        // beats rather than running the change feed estimator every 250 ms.
        const int total = 2000;
        var container = await Db.CreateSeededContainerAsync("rangeless", total, 20);
        Assert.Equal(4, (await Db.Server.RangesAsync(Db.Name, "rangeless")).Count);
        static long Count(JObject stats, string key) => (long?)stats["byContainer"]?[key] ?? 0;
        var settings = Db.Server.Settings(Db.Name);
        settings.TrackingContainer = "rangeless-tracking";
        var connections = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => MigrationConnection.OpenAsync(settings, null, CancellationToken.None)));
        try
        {
            var before = await Db.Server.StatsAsync();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var returned = new double[connections.Length];
            var definition = TestDefinitions.AddField("rangeless", "rangeless", "r", 1);
            var results = await Task.WhenAll(connections.Select(async (connection, i) =>
            {
                var result = await new MigrationRunner(connection) { Log = m => Output.WriteLine($"[{i}] {clock.Elapsed.TotalSeconds:0.00} s {m}") }
                    .RunAsync(definition, new RunOptions { Distributed = true, LeaseDuration = TimeSpan.FromSeconds(30) }, null, CancellationToken.None);
                returned[i] = clock.Elapsed.TotalSeconds;
                return result;
            }));
            var seconds = clock.Elapsed.TotalSeconds;
            var after = await Db.Server.StatsAsync();

            Assert.All(results, r => Assert.Null(r.Error));
            Assert.All(results, r => Assert.Equal("completed", r.Status.Status));
            var tracking = await TrackingStore.Of(connections[0]).GetAsync("rangeless", CancellationToken.None);
            Assert.Equal(total, tracking!.Processed);
            Assert.Equal(total, (await TestDatabase.ReadAllAsync(container, "SELECT * FROM c WHERE c.r = 1")).Count);

            var leaseQueries = Count(after, "rangeless-tracking-leases POST 200") - Count(before, "rangeless-tracking-leases POST 200");
            Output.WriteLine($"{seconds:0.00} s, {leaseQueries} lease queries ({leaseQueries / seconds:0.0}/s), tracking reads {Count(after, "rangeless-tracking GET 200") - Count(before, "rangeless-tracking GET 200")}");
            Output.WriteLine($"returned at {string.Join(", ", returned.Select(r => r.ToString("0.00")))} s; by container: {string.Join("  ", ((JObject)after["byContainer"]!).Properties().Where(p => p.Name.StartsWith("rangeless", StringComparison.Ordinal)).Select(p => $"{p.Name}={(long)p.Value - Count(before, p.Name)}"))}");
            // Every worker back within the rangeless look (1 s) and a request or two of the first
            // (13 s or more apart before).
            Assert.True(returned.Max() - returned.Min() < 3, $"workers returned at {string.Join(", ", returned.Select(r => r.ToString("0.00")))} s");
        }
        finally
        {
            foreach (var connection in connections)
            {
                connection.Dispose();
            }
        }
    }
}
