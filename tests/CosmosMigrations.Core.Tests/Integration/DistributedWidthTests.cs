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
}
