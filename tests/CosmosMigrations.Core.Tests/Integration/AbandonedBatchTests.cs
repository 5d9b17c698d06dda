using System.Collections.Concurrent;
using CosmosMigrations.Connection;
using CosmosMigrations.Distributed;
using CosmosMigrations.Documents;
using CosmosMigrations.Running;
using CosmosMigrations.Tests.Infrastructure;
using CosmosMigrations.Tracking;
using Microsoft.Azure.Cosmos;

namespace CosmosMigrations.Tests.Integration;

/// <summary>A feed range holds one batch intent at a time. A batch that a live worker left open (it
/// abandoned the batch, or stalls for longer than three leases) must not hold the range for ever:
/// under a loaded full test run, three workers over 15,000 documents waited on such a batch until
/// the test gave up after 240 s.</summary>
public sealed class AbandonedBatchTests(TestDatabase db, ITestOutputHelper output) : DatabaseTests(db, output)
{
    [HarnessFact("the ranges' lease tokens come from the local harness")]
    public async Task A_batch_a_live_worker_left_open_is_counted_by_the_ranges_next_owner_after_three_leases()
    {
        const int total = 4000;
        const string name = "abandoned";
        var container = await Db.CreateSeededContainerAsync("abandon", total, 40);
        using var connection = await MigrationConnection.OpenAsync(Db.Server.Settings(Db.Name), null, CancellationToken.None);
        var definition = TestDefinitions.AddField(name, "abandon", "a", 1);
        RunOptions Options(TimeSpan? slice = null) => new() { Distributed = true, LeaseDuration = TimeSpan.FromSeconds(5), MaxDuration = slice };

        // A first worker starts the run and stops at once (its time slice is over): the run, its
        // generation and its leases exist.
        var first = await new MigrationRunner(connection).RunAsync(definition, Options(TimeSpan.FromMilliseconds(1)), null, CancellationToken.None);
        Assert.Null(first.Error);
        var tracking = (await TrackingStore.Of(connection).GetAsync(name, CancellationToken.None))!;
        // A live worker (its heartbeat a minute and a half ahead) holds an open batch of five
        // unchanged documents of one range on that range's ledger, and never closes it.
        JToken range = null!;
        var left = new System.Collections.Generic.List<JObject>();
        foreach (var candidate in await Db.Server.RangesAsync(Db.Name, "abandon"))
        {
            range = candidate;
            left.Clear();
            var feedRange = FeedRange.FromJsonString($"{{\"Range\":{{\"min\":\"{candidate["minInclusive"]}\",\"max\":\"{candidate["maxExclusive"]}\"}}}}");
            using var iterator = container.GetItemQueryIterator<JObject>(feedRange, new QueryDefinition("SELECT * FROM c WHERE NOT IS_DEFINED(c.a)"));
            while (iterator.HasMoreResults && left.Count < 5)
            {
                left.AddRange((await iterator.ReadNextAsync()).Take(5 - left.Count));
            }

            if (left.Count == 5)
            {
                break;
            }
        }

        Assert.Equal(5, left.Count);
        await TrackingStore.Of(connection).PatchAsync(name, new[]
        {
            PatchOperation.Set("/workers/ghost", JObject.FromObject(new { host = "elsewhere", processId = 1, heartbeat = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 90_000, state = "running" })),
        }, CancellationToken.None);
        var keys = left.Select(d => DocumentKey.Of(d, new PartitionKeyReader(new[] { "/pk" }))).ToList();
        var ledger = new RangeLedger(await connection.EnsureLeaseContainerAsync(CancellationToken.None), name, tracking.Generation ?? 1, tracking.Cursor?.Step ?? 0);
        await ledger.UpdateAsync((string)range["id"]!, null, l =>
        {
            l.Intent = new PageIntent { Page = 1, Worker = "ghost", Documents = keys };
            return true;
        }, CancellationToken.None);

        var log = new ConcurrentQueue<string>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(150));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = await new MigrationRunner(connection) { Log = m => { log.Enqueue(m); Output.WriteLine(m); } }
            .RunAsync(definition, Options(), null, timeout.Token);

        // The range's next owner counted the batch (nothing of it was changed) and then changed
        // and counted its documents itself, well before the ghost's heartbeat runs out (100 s): three leases are 15 s.
        Assert.Null(result.Error);
        Assert.Equal("completed", result.Status.Status);
        Assert.Contains(log, m => m.Contains("ghost still has a batch open there after three leases; counting it here"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(80), $"the run took {clock.Elapsed}");
        tracking = (await TrackingStore.Of(connection).GetAsync(name, CancellationToken.None))!;
        Assert.Equal(total, tracking.Processed);
        Assert.Equal(total, (await TestDatabase.ReadAllAsync(container, "SELECT * FROM c WHERE c.a = 1")).Count);
    }
}
