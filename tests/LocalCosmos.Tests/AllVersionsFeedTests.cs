using System.Collections.Concurrent;
using CosmosMigrations.Tests.Infrastructure;

namespace LocalCosmos.Tests;

/// <summary>The all-versions-and-deletes change feed (ChangeFeedMode.AllVersionsAndDeletes) as the
/// .NET SDK reads it: every create, replace and delete in order, per range, across a split, through
/// the iterator and the processor; refused (400) on a container that has not turned it on, as on
/// an account without continuous backup (tests/LocalCosmos/changelog.js).</summary>
public sealed class AllVersionsFeedTests(TestDatabase db, ITestOutputHelper output) : DatabaseTests(db, output)
{
    /// <summary>A container with the feed on (the emulator's opt-in: a change feed retention).</summary>
    private async Task<Container> CreateAllVersionsContainerAsync(string name, int? defaultTtl = null)
    {
        var properties = new ContainerProperties(name, "/pk") { DefaultTimeToLive = defaultTtl };
        properties.ChangeFeedPolicy.FullFidelityRetention = TimeSpan.FromMinutes(10);
        return (await Db.Database.CreateContainerIfNotExistsAsync(properties)).Container;
    }

    private static async Task<List<ChangeFeedItem<JObject>>> DrainAsync(FeedIterator<ChangeFeedItem<JObject>> iterator)
    {
        var changes = new List<ChangeFeedItem<JObject>>();
        while (true)
        {
            var page = await iterator.ReadNextAsync();
            if (page.StatusCode == HttpStatusCode.NotModified)
            {
                return changes;
            }

            changes.AddRange(page);
        }
    }

    private static string IdOf(ChangeFeedItem<JObject> change) =>
        change.Metadata.OperationType == ChangeFeedOperationType.Delete ? change.Metadata.Id : (string)change.Current["id"]!;

    /// <summary>Each document's changes as "create", "replace:x", "delete" …, in the order delivered.</summary>
    private static Dictionary<string, List<string>> History(IEnumerable<ChangeFeedItem<JObject>> changes) =>
        changes.GroupBy(IdOf).ToDictionary(g => g.Key, g => g.Select(c => c.Metadata.OperationType switch
        {
            ChangeFeedOperationType.Delete => "delete",
            ChangeFeedOperationType.Create => $"create:{c.Current["x"]}",
            _ => $"replace:{c.Current["x"]}",
        }).ToList());

    [Fact]
    public async Task The_iterator_from_now_delivers_every_create_replace_and_delete_in_order_with_their_metadata()
    {
        var container = await CreateAllVersionsContainerAsync("avad-ops");
        await TestDatabase.SeedAsync(container, 40, 8);
        var iterator = container.GetChangeFeedIterator<ChangeFeedItem<JObject>>(ChangeFeedStartFrom.Now(), ChangeFeedMode.AllVersionsAndDeletes,
            new ChangeFeedRequestOptions { PageSizeHint = 3 });
        Assert.Empty(await DrainAsync(iterator)); // what was written before "now" is not delivered

        var key = new PartitionKey("p1");
        await container.CreateItemAsync(new JObject { ["id"] = "a", ["pk"] = "p1", ["x"] = 1 }, key);
        await container.ReplaceItemAsync(new JObject { ["id"] = "a", ["pk"] = "p1", ["x"] = 2 }, "a", key);
        await container.UpsertItemAsync(new JObject { ["id"] = "a", ["pk"] = "p1", ["x"] = 3 }, key);
        await container.PatchItemAsync<JObject>("a", key, new[] { PatchOperation.Set("/x", 4) });
        await container.DeleteItemAsync<JObject>("a", key);
        await container.DeleteItemAsync<JObject>("d5", new PartitionKey("p5"));
        await container.UpsertItemAsync(new JObject { ["id"] = "b", ["pk"] = "p2", ["x"] = 1 }, new PartitionKey("p2"));

        var changes = await DrainAsync(iterator);
        var history = History(changes);
        Assert.Equal(new[] { "create:1", "replace:2", "replace:3", "replace:4", "delete" }, history["a"]);
        Assert.Equal(new[] { "delete" }, history["d5"]);
        Assert.Equal(new[] { "create:1" }, history["b"]);
        Assert.Equal(3, history.Count);

        var ofA = changes.Where(c => IdOf(c) == "a").ToList();
        Assert.All(ofA.Zip(ofA.Skip(1)), pair =>
        {
            Assert.True(pair.First.Metadata.Lsn < pair.Second.Metadata.Lsn, "LSNs rise within a range");
            Assert.Equal(pair.First.Metadata.Lsn, pair.Second.Metadata.PreviousLsn);
            Assert.True(pair.First.Metadata.ConflictResolutionTimestamp <= pair.Second.Metadata.ConflictResolutionTimestamp);
        });
        Assert.Equal(0, ofA[0].Metadata.PreviousLsn);
        Assert.Null(ofA[0].Previous);
        Assert.Null(ofA[0].Metadata.Id);

        // A delete: an empty current, the id and the key in the metadata, the deleted version as previous.
        var delete = ofA[^1];
        Assert.Null(delete.Current["id"]);
        Assert.Equal("a", delete.Metadata.Id);
        Assert.Equal("p1", delete.Metadata.PartitionKey["pk"]);
        Assert.False(delete.Metadata.IsTimeToLiveExpired);
        Assert.Equal(4, (int)delete.Previous["x"]!);
        Assert.Equal("p5", changes.Single(c => IdOf(c) == "d5").Metadata.PartitionKey["pk"]);

        // Read again from where it ended: nothing new.
        Assert.Empty(await DrainAsync(iterator));
    }

    [HarnessFact("it splits a range on demand")]
    public async Task A_split_between_reads_loses_and_repeats_nothing_for_the_same_iterator_and_one_resumed_from_a_continuation()
    {
        var container = await CreateAllVersionsContainerAsync("avad-split");
        await TestDatabase.SeedAsync(container, 200, 40, i => new JObject { ["x"] = 0 });
        var iterator = container.GetChangeFeedIterator<ChangeFeedItem<JObject>>(ChangeFeedStartFrom.Now(), ChangeFeedMode.AllVersionsAndDeletes,
            new ChangeFeedRequestOptions { PageSizeHint = 10 });
        Assert.Empty(await DrainAsync(iterator));

        // Before the split: d0..d39 replaced, d40..d59 deleted.
        await TestDatabase.SeedAsync(container, 40, 40, i => new JObject { ["x"] = 1 });
        foreach (var i in Enumerable.Range(40, 20))
        {
            await container.DeleteItemAsync<JObject>($"d{i}", new PartitionKey($"p{i % 40}"));
        }

        var delivered = new List<ChangeFeedItem<JObject>>();
        var page = await iterator.ReadNextAsync();
        delivered.AddRange(page);
        var continuation = page.ContinuationToken;

        var split = await Db.Server.SplitAsync(Db.Name, "avad-split");
        Output.WriteLine($"split {split}");

        // After it: d0..d19 replaced again, d0..d9 then deleted, n0..n9 created.
        await TestDatabase.SeedAsync(container, 20, 40, i => new JObject { ["x"] = 2 });
        foreach (var i in Enumerable.Range(0, 10))
        {
            await container.DeleteItemAsync<JObject>($"d{i}", new PartitionKey($"p{i}"));
            await container.CreateItemAsync(new JObject { ["id"] = $"n{i}", ["pk"] = $"p{i}", ["x"] = 1 }, new PartitionKey($"p{i}"));
        }

        var resumed = new List<ChangeFeedItem<JObject>>(delivered);
        delivered.AddRange(await DrainAsync(iterator));
        resumed.AddRange(await DrainAsync(container.GetChangeFeedIterator<ChangeFeedItem<JObject>>(ChangeFeedStartFrom.ContinuationToken(continuation),
            ChangeFeedMode.AllVersionsAndDeletes, new ChangeFeedRequestOptions { PageSizeHint = 10 })));

        foreach (var changes in new[] { delivered, resumed })
        {
            var history = History(changes);
            Assert.Equal(70, history.Count);
            Assert.All(Enumerable.Range(0, 10), i => Assert.Equal(new[] { "replace:1", "replace:2", "delete" }, history[$"d{i}"]));
            Assert.All(Enumerable.Range(10, 10), i => Assert.Equal(new[] { "replace:1", "replace:2" }, history[$"d{i}"]));
            Assert.All(Enumerable.Range(20, 20), i => Assert.Equal(new[] { "replace:1" }, history[$"d{i}"]));
            Assert.All(Enumerable.Range(40, 20), i => Assert.Equal(new[] { "delete" }, history[$"d{i}"]));
            Assert.All(Enumerable.Range(0, 10), i => Assert.Equal(new[] { "create:1" }, history[$"n{i}"]));
        }
    }

    [HarnessFact("it splits a range on demand")]
    public async Task The_processor_with_all_versions_and_deletes_delivers_each_documents_changes_in_order_across_a_split()
    {
        var container = await CreateAllVersionsContainerAsync("avad-cfp");
        var leases = (await Db.Database.CreateContainerIfNotExistsAsync("avad-cfp-leases", "/id")).Container;
        var ranges = (await Db.Server.RangesAsync(Db.Name, "avad-cfp")).Select(r => (string)r["id"]!).ToList();
        var received = new ConcurrentQueue<ChangeFeedItem<JObject>>();
        var processor = container.GetChangeFeedProcessorBuilderWithAllVersionsAndDeletes<JObject>("avad", (context, changes, cancellationToken) =>
            {
                foreach (var change in changes)
                {
                    received.Enqueue(change);
                }

                return Task.CompletedTask;
            })
            .WithInstanceName("one")
            .WithLeaseContainer(leases)
            .WithPollInterval(TimeSpan.FromMilliseconds(100))
            .Build();
        await processor.StartAsync();
        try
        {
            // The processor starts each range from "now" at its first read: wait until every range was read.
            await WaitUntilAsync(async () =>
            {
                var byRange = (JObject)(await Db.Server.StatsAsync())["byRange"]!;
                return ranges.All(id => byRange[$"avad-cfp {id} 304"] is not null);
            }, "the processor read every range once");

            await TestDatabase.SeedAsync(container, 60, 12, i => new JObject { ["x"] = 1 });
            await TestDatabase.SeedAsync(container, 30, 12, i => new JObject { ["x"] = 2 });
            await WaitUntilAsync(() => Task.FromResult(received.Count >= 90), "the changes before the split arrived");
            await Db.Server.SplitAsync(Db.Name, "avad-cfp");
            foreach (var i in Enumerable.Range(0, 20))
            {
                await container.DeleteItemAsync<JObject>($"d{i}", new PartitionKey($"p{i % 12}"));
            }

            await TestDatabase.SeedAsync(container, 40, 12, i => new JObject { ["x"] = 3 });
            await WaitUntilAsync(() => Task.FromResult(received.Count >= 150), "every change arrived");
        }
        finally
        {
            await processor.StopAsync();
        }

        var history = History(received);
        Output.WriteLine($"{received.Count} change(s) of {history.Count} document(s)");
        Assert.Equal(150, received.Count);
        Assert.All(Enumerable.Range(0, 20), i => Assert.Equal(new[] { "create:1", "replace:2", "delete", "create:3" }, history[$"d{i}"]));
        Assert.All(Enumerable.Range(20, 10), i => Assert.Equal(new[] { "create:1", "replace:2", "replace:3" }, history[$"d{i}"]));
        Assert.All(Enumerable.Range(30, 10), i => Assert.Equal(new[] { "create:1", "replace:3" }, history[$"d{i}"]));
        Assert.All(Enumerable.Range(40, 20), i => Assert.Equal(new[] { "create:1" }, history[$"d{i}"]));
    }

    [Fact]
    public async Task A_ttl_expiry_is_a_delete_marked_as_expired_without_a_previous_version()
    {
        var container = await CreateAllVersionsContainerAsync("avad-ttl", defaultTtl: -1);
        var iterator = container.GetChangeFeedIterator<ChangeFeedItem<JObject>>(ChangeFeedStartFrom.Now(), ChangeFeedMode.AllVersionsAndDeletes);
        Assert.Empty(await DrainAsync(iterator));
        await container.CreateItemAsync(new JObject { ["id"] = "short", ["pk"] = "p1", ["ttl"] = 1 }, new PartitionKey("p1"));
        var changes = new List<ChangeFeedItem<JObject>>();
        await WaitUntilAsync(async () =>
        {
            changes.AddRange(await DrainAsync(iterator));
            return changes.Any(c => c.Metadata.OperationType == ChangeFeedOperationType.Delete);
        }, "the expiry arrived");
        var expiry = changes.Single(c => c.Metadata.OperationType == ChangeFeedOperationType.Delete);
        Assert.True(expiry.Metadata.IsTimeToLiveExpired);
        Assert.Equal("short", expiry.Metadata.Id);
        Assert.Null(expiry.Previous);
    }

    [HarnessFact("whether an account serves this feed is the account's setting, which the harness plays per container")]
    public async Task A_container_without_the_feed_answers_400_as_an_account_without_continuous_backup_and_a_start_from_the_beginning_is_refused()
    {
        var plain = await Db.CreateSeededContainerAsync("avad-off", 10, 2);
        var refused = await Assert.ThrowsAsync<CosmosException>(() =>
            plain.GetChangeFeedIterator<ChangeFeedItem<JObject>>(ChangeFeedStartFrom.Now(), ChangeFeedMode.AllVersionsAndDeletes).ReadNextAsync());
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("'All Versions and Deletes' mode must be enabled", refused.Message);

        // Its latest-version feed is unaffected.
        var latest = plain.GetChangeFeedIterator<JObject>(ChangeFeedStartFrom.Beginning(), ChangeFeedMode.LatestVersion);
        var documents = 0;
        for (var page = await latest.ReadNextAsync(); page.StatusCode != HttpStatusCode.NotModified; page = await latest.ReadNextAsync())
        {
            documents += page.Count;
        }

        Assert.Equal(10, documents);

        var on = await CreateAllVersionsContainerAsync("avad-beginning");
        var beginning = await Assert.ThrowsAsync<CosmosException>(() =>
            on.GetChangeFeedIterator<ChangeFeedItem<JObject>>(ChangeFeedStartFrom.Beginning(), ChangeFeedMode.AllVersionsAndDeletes).ReadNextAsync());
        Assert.Equal(HttpStatusCode.BadRequest, beginning.StatusCode);
    }
}
