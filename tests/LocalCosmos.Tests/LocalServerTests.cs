using System.Diagnostics;
using System.IO;
using System.Text;
using CosmosMigrations.Tests.Infrastructure;

namespace LocalCosmos.Tests;

/// <summary>What the .NET SDK needs of the server, one test per fix in tests/LocalCosmos (store.js, feeds.js, items.js, containers.js; see its README).
/// Plain SDK behaviour: the same tests pass against the emulator or a real account.</summary>
public sealed class LocalServerTests(TestDatabase db, ITestOutputHelper output) : DatabaseTests(db, output)
{
    private static Task<List<T>> QueryAsync<T>(Container container, string sql, QueryRequestOptions? options = null) =>
        DrainAsync(container.GetItemQueryIterator<T>(sql, requestOptions: options));

    [Fact]
    public async Task Cross_partition_queries_work_through_the_query_plan()
    {
        var container = await Db.CreateSeededContainerAsync("plan", 50, 5, i => new JObject { ["n"] = i });

        Assert.Equal(10, (await QueryAsync<JObject>(container, "SELECT * FROM c WHERE c.n < 10")).Count);
        Assert.Equal(50L, (await QueryAsync<long>(container, "SELECT VALUE COUNT(1) FROM c")).Sum());
        var top = await QueryAsync<JObject>(container, "SELECT TOP 3 * FROM c ORDER BY c.n DESC");
        Assert.Equal(new[] { 49, 48, 47 }, top.Select(d => (int)d["n"]!));
    }

    [Fact]
    public async Task Partition_scoped_queries_and_feeds_return_only_that_partition()
    {
        var container = await Db.CreateSeededContainerAsync("scoped", 40, 4);
        var options = new QueryRequestOptions { PartitionKey = new PartitionKey("p1") };

        var queried = await QueryAsync<JObject>(container, "SELECT * FROM c", options);
        Assert.Equal(10, queried.Count);
        Assert.All(queried, d => Assert.Equal("p1", (string?)d["pk"]));

        var feed = new List<JObject>();
        using var iterator = container.GetItemQueryIterator<JObject>(queryText: null, requestOptions: options);
        while (iterator.HasMoreResults)
        {
            feed.AddRange(await iterator.ReadNextAsync());
        }

        Assert.Equal(10, feed.Count);
        Assert.All(feed, d => Assert.Equal("p1", (string?)d["pk"]));
    }

    [Fact]
    public async Task Reading_a_missing_or_deleted_item_is_404()
    {
        var container = await Db.CreateContainerAsync("missing");
        await container.CreateItemAsync(new JObject { ["id"] = "a", ["pk"] = "x" }, new PartitionKey("x"));
        var missing = await Assert.ThrowsAsync<CosmosException>(() => container.ReadItemAsync<JObject>("nope", new PartitionKey("x")));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);

        await container.DeleteItemAsync<JObject>("a", new PartitionKey("x"));
        var deleted = await Assert.ThrowsAsync<CosmosException>(() => container.ReadItemAsync<JObject>("a", new PartitionKey("x")));
        Assert.Equal(HttpStatusCode.NotFound, deleted.StatusCode);
    }

    [Fact]
    public async Task The_change_feed_is_incremental()
    {
        var container = await Db.CreateSeededContainerAsync("feed", 30, 3);
        var iterator = container.GetChangeFeedIterator<JObject>(ChangeFeedStartFrom.Beginning(), ChangeFeedMode.LatestVersion, new ChangeFeedRequestOptions { PageSizeHint = 100 });
        var seen = new List<JObject>();
        while (iterator.HasMoreResults)
        {
            var page = await iterator.ReadNextAsync();
            if (page.StatusCode == HttpStatusCode.NotModified)
            {
                break;
            }

            seen.AddRange(page);
        }

        Assert.Equal(30, seen.Count);
        await container.UpsertItemAsync(new JObject { ["id"] = "d5", ["pk"] = "p2", ["changed"] = true }, new PartitionKey("p2"));
        await container.CreateItemAsync(new JObject { ["id"] = "new", ["pk"] = "p0" }, new PartitionKey("p0"));

        var next = await iterator.ReadNextAsync();
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(new[] { "d5", "new" }, next.Select(d => (string)d["id"]!).OrderBy(s => s));
        Assert.Equal(HttpStatusCode.NotModified, (await iterator.ReadNextAsync()).StatusCode);
    }

    [Fact]
    public async Task A_range_change_feed_pages_in_write_order_and_brings_a_rewritten_document_again_at_its_latest_version()
    {
        var container = await Db.CreateSeededContainerAsync("feedorder", 60, 6);
        var total = 0;
        foreach (var range in await container.GetFeedRangesAsync())
        {
            var iterator = container.GetChangeFeedIterator<JObject>(ChangeFeedStartFrom.Beginning(range), ChangeFeedMode.LatestVersion, new ChangeFeedRequestOptions { PageSizeHint = 7 });
            var seen = new List<JObject>();
            string? rewritten = null;
            while (true)
            {
                var page = await iterator.ReadNextAsync();
                if (page.StatusCode == HttpStatusCode.NotModified)
                {
                    break;
                }

                Assert.InRange(page.Count, 1, 7);
                seen.AddRange(page);
                if (rewritten is null)
                {
                    // Written again while the feed is read: it comes once more, after the rest.
                    var first = page.First();
                    rewritten = (string)first["id"]!;
                    await container.UpsertItemAsync(new JObject { ["id"] = rewritten, ["pk"] = first["pk"], ["changed"] = true }, new PartitionKey((string)first["pk"]!));
                }
            }

            if (rewritten is null)
            {
                continue;
            }

            var lsns = seen.Select(d => (long)d["_lsn"]!).ToList();
            Assert.Equal(lsns.OrderBy(l => l).Distinct(), lsns);
            Assert.Equal(seen.Count - 1, seen.Select(d => (string)d["id"]!).Distinct().Count());
            Assert.Equal(rewritten, (string)seen[^1]["id"]!);
            Assert.True((bool)seen[^1]["changed"]!);
            total += seen.Count - 1;
        }

        Assert.Equal(60, total);
    }

    [Fact]
    public async Task Replacing_a_container_keeps_its_documents()
    {
        var container = await Db.CreateSeededContainerAsync("indexed", 25, 5);
        var properties = (await container.ReadContainerAsync()).Resource;
        properties.IndexingPolicy.CompositeIndexes.Add(new System.Collections.ObjectModel.Collection<CompositePath>
        {
            new() { Path = "/name", Order = CompositePathSortOrder.Ascending },
            new() { Path = "/email", Order = CompositePathSortOrder.Descending },
        });
        await container.ReplaceContainerAsync(properties);

        Assert.Equal(25L, (await QueryAsync<long>(container, "SELECT VALUE COUNT(1) FROM c")).Sum());
        Assert.Single((await container.ReadContainerAsync()).Resource.IndexingPolicy.CompositeIndexes);
    }

    [Fact]
    public async Task A_write_that_asks_for_no_content_is_answered_with_its_status_and_etag_only()
    {
        var container = await Db.CreateContainerAsync("minimal");
        var quiet = new ItemRequestOptions { EnableContentResponseOnWrite = false };
        var loud = new ItemRequestOptions { EnableContentResponseOnWrite = true };
        var key = new PartitionKey("x");

        async Task AssertAnswer(Func<ItemRequestOptions, Task<ResponseMessage>> write, ItemRequestOptions options, HttpStatusCode status)
        {
            using var response = await write(options);
            Assert.Equal(status, response.StatusCode);
            Assert.False(string.IsNullOrEmpty(response.Headers.ETag));
            if (options.EnableContentResponseOnWrite == false)
            {
                Assert.True(response.Content is null || response.Content.Length == 0, "a quiet write's answer carries no document");
            }
            else
            {
                Assert.Equal("a", (string?)JObject.Parse(await new StreamReader(response.Content).ReadToEndAsync())["id"]);
            }
        }

        foreach (var options in new[] { quiet, loud })
        {
            Stream Body(int n) => new MemoryStream(Encoding.UTF8.GetBytes(new JObject { ["id"] = "a", ["pk"] = "x", ["n"] = n }.ToString()));
            await AssertAnswer(o => container.CreateItemStreamAsync(Body(1), key, o), options, HttpStatusCode.Created);
            await AssertAnswer(o => container.ReplaceItemStreamAsync(Body(2), "a", key, o), options, HttpStatusCode.OK);
            await AssertAnswer(o => container.UpsertItemStreamAsync(Body(3), key, o), options, HttpStatusCode.OK);
            await AssertAnswer(o => container.PatchItemStreamAsync("a", key, new[] { PatchOperation.Set("/n", 4) },
                new PatchItemRequestOptions { EnableContentResponseOnWrite = o.EnableContentResponseOnWrite }), options, HttpStatusCode.OK);
            // A read answers with the document whatever the write asked.
            Assert.Equal(4, (int)(await container.ReadItemAsync<JObject>("a", key)).Resource["n"]!);
            await container.DeleteItemAsync<JObject>("a", key);
        }
    }

    [Fact]
    public async Task A_conditional_patch_is_judged_on_the_document_with_case_preserved()
    {
        var container = await Db.CreateContainerAsync("conditional");
        await container.CreateItemAsync(new JObject { ["id"] = "has", ["pk"] = "x", ["avatarUrl"] = "a", ["status"] = "Active" }, new PartitionKey("x"));
        await container.CreateItemAsync(new JObject { ["id"] = "lacks", ["pk"] = "x", ["status"] = "active" }, new PartitionKey("x"));
        var set = new[] { PatchOperation.Set("/avatarUrl", "new") };
        var missing = new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE NOT IS_DEFINED(c.avatarUrl)" };

        var refused = await Assert.ThrowsAsync<CosmosException>(() => container.PatchItemAsync<JObject>("has", new PartitionKey("x"), set, missing));
        Assert.Equal(HttpStatusCode.PreconditionFailed, refused.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await container.PatchItemAsync<JObject>("lacks", new PartitionKey("x"), set, missing)).StatusCode);

        var literal = new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.status = 'Active'" };
        Assert.Equal(HttpStatusCode.OK, (await container.PatchItemAsync<JObject>("has", new PartitionKey("x"), new[] { PatchOperation.Set("/seen", 1) }, literal)).StatusCode);
        var wrongCase = await Assert.ThrowsAsync<CosmosException>(() => container.PatchItemAsync<JObject>("lacks", new PartitionKey("x"), new[] { PatchOperation.Set("/seen", 1) }, literal));
        Assert.Equal(HttpStatusCode.PreconditionFailed, wrongCase.StatusCode);
    }

    [Fact]
    public async Task A_patch_whose_target_has_no_parent_is_refused_as_the_service_does()
    {
        var container = await Db.CreateContainerAsync("patchpaths");
        await container.CreateItemAsync(new JObject { ["id"] = "d", ["pk"] = "x", ["counts"] = new JObject() }, new PartitionKey("x"));

        foreach (var orphan in new[] { PatchOperation.Set("/missing/child", 1), PatchOperation.Increment("/missing/n", 1), PatchOperation.Add("/missing/child", 1) })
        {
            var refused = await Assert.ThrowsAsync<CosmosException>(() => container.PatchItemAsync<JObject>("d", new PartitionKey("x"), new[] { orphan }));
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        }

        // Refused as a whole: nothing of it lands one level up, as the package used to write it.
        var document = (await container.ReadItemAsync<JObject>("d", new PartitionKey("x"))).Resource;
        Assert.Null(document["child"]);
        Assert.Null(document["n"]);

        // A parent that exists, or that an earlier operation of the same patch creates, is fine.
        var patched = (await container.PatchItemAsync<JObject>("d", new PartitionKey("x"), new[]
        {
            PatchOperation.Increment("/counts/a", 2),
            PatchOperation.Set("/made", new JObject()),
            PatchOperation.Set("/made/child", 1),
        })).Resource;
        Assert.Equal(2, (int)patched["counts"]!["a"]!);
        Assert.Equal(1, (int)patched["made"]!["child"]!);
    }

    [Fact]
    public async Task A_paged_scan_of_20000_documents_sees_each_document_once_and_takes_seconds()
    {
        var container = await Db.CreateSeededContainerAsync("large", 20000, 40);
        var clock = Stopwatch.StartNew();
        var ids = new HashSet<string>();
        var pages = 0;
        using var iterator = container.GetItemQueryIterator<JObject>("SELECT * FROM c WHERE NOT IS_DEFINED(c.avatarUrl)", requestOptions: new QueryRequestOptions { MaxItemCount = 100 });
        while (iterator.HasMoreResults)
        {
            foreach (var document in await iterator.ReadNextAsync())
            {
                Assert.True(ids.Add((string)document["id"]!), "a document was returned twice");
            }

            pages++;
        }

        Output.WriteLine($"{ids.Count} documents in {pages} pages: {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.Equal(20000, ids.Count);
        // A correctness guard against the quadratic engine (~7 minutes), not a speed goal.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(90), $"the scan took {clock.Elapsed}");
    }
}
