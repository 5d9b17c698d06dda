using System.Globalization;
using System.Net.Http;
using System.Reflection;
using System.Text;
using CosmosMigrations.Tests.Infrastructure;

namespace LocalCosmos.Tests;

/// <summary>Containers of several physical partitions, as real large ones are: partition key
/// ranges, effective partition keys, range-scoped reads, query plans, hierarchical keys and
/// splits, all through the .NET SDK (tests/LocalCosmos/README.md has the fidelity table). Tests
/// that need harness hooks (splits, fault injection, EPKs) say so; the rest is plain SDK
/// behaviour and runs unchanged against the emulator or an account.</summary>
public sealed class PartitionTests(TestDatabase db, ITestOutputHelper output) : DatabaseTests(db, output)
{
    private static (string Min, string Max) Bounds(FeedRange range)
    {
        var json = JObject.Parse(range.ToJsonString());
        var inner = (JObject)json["Range"]!;
        return ((string)inner["min"]!, (string)inner["max"]!);
    }

    [Fact]
    public async Task GetFeedRanges_returns_every_range_and_per_range_queries_partition_the_documents()
    {
        var container = await Db.CreateSeededContainerAsync("ranges", 2000, 50);
        var ranges = await container.GetFeedRangesAsync();
        if (Db.Server.IsHarness)
        {
            Assert.Equal(await Db.Server.PartitionsAsync(), ranges.Count);
            Assert.True(ranges.Count > 1, "the suite runs on several ranges");
        }

        var queried = new List<string>();
        var fed = new List<string>();
        foreach (var range in ranges)
        {
            var ids = await DrainAsync(container.GetItemQueryIterator<JObject>(range, new QueryDefinition("SELECT c.id FROM c"), requestOptions: new QueryRequestOptions { MaxItemCount = 100 }));
            var feed = await DrainAsync(container.GetItemQueryIterator<JObject>(range, queryDefinition: null, requestOptions: new QueryRequestOptions { MaxItemCount = 100 }));
            Output.WriteLine($"{range.ToJsonString()}: {ids.Count} documents");
            queried.AddRange(ids.Select(d => (string)d["id"]!));
            fed.AddRange(feed.Select(d => (string)d["id"]!));
        }

        Assert.Equal(2000, queried.Count);
        Assert.Equal(2000, queried.Distinct().Count());
        Assert.Equal(queried.OrderBy(s => s, StringComparer.Ordinal), fed.OrderBy(s => s, StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_query_on_part_of_a_range_returns_only_that_part()
    {
        var container = await Db.CreateSeededContainerAsync("subranges", 1000, 100);
        var range = (await container.GetFeedRangesAsync())[0];
        var whole = await DrainAsync(container.GetItemQueryIterator<JObject>(range, new QueryDefinition("SELECT c.id FROM c")));
        var (min, max) = Bounds(range);
        // A point inside the range that cuts its documents in two: the median of their keys'
        // EPKs as the SDK computes them (the SDK then sends x-ms-start-epk / x-ms-end-epk).
        var properties = (await container.ReadContainerAsync()).Resource;
        var inside = Enumerable.Range(0, 100).Select(i => DotNetEpk(properties, new PartitionKey($"p{i}")))
            .Where(e => string.CompareOrdinal(e, min) >= 0 && string.CompareOrdinal(e, max) < 0).OrderBy(e => e, StringComparer.Ordinal).ToList();
        Assert.True(inside.Count >= 2, "the first range holds several keys");
        var middle = inside[inside.Count / 2];
        var halves = new[] { (min, middle), (middle, max) }.Select(b => FeedRange.FromJsonString(new JObject { ["Range"] = new JObject { ["min"] = b.Item1, ["max"] = b.Item2 } }.ToString())).ToList();
        var parts = new List<string>();
        foreach (var half in halves)
        {
            var ids = (await DrainAsync(container.GetItemQueryIterator<JObject>(half, new QueryDefinition("SELECT c.id FROM c")))).Select(d => (string)d["id"]!).ToList();
            Output.WriteLine($"{half.ToJsonString()}: {ids.Count}");
            Assert.True(ids.Count < whole.Count, "a part of a range holds fewer documents than the range");
            parts.AddRange(ids);
        }

        Assert.Equal(whole.Select(d => (string)d["id"]!).OrderBy(s => s, StringComparer.Ordinal), parts.OrderBy(s => s, StringComparer.Ordinal));
    }

    /// <summary>The EPK the .NET SDK computes (internal API, read by reflection: the test pins
    /// the server's hashing to the SDK's, which is what routing depends on).</summary>
    private static string DotNetEpk(ContainerProperties properties, PartitionKey key)
    {
        var internalKey = typeof(PartitionKey).GetProperty("InternalKey", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(key)!;
        if (internalKey.GetType().GetProperty("Components")!.GetValue(internalKey) is null)
        {
            // PartitionKey.None: on a partitioned container the SDK sends it as Undefined ([{}]).
            internalKey = internalKey.GetType().GetProperty("Undefined", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)!.GetValue(null)!;
        }

        var definition = typeof(ContainerProperties).GetProperty("PartitionKey", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(properties)!;
        var methods = internalKey.GetType().GetMethods(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        var components = ((System.Collections.ICollection)internalKey.GetType().GetProperty("Components", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)!.GetValue(internalKey)!).Count;
        var paths = ((System.Collections.ICollection)definition.GetType().GetProperty("Paths")!.GetValue(definition)!).Count;
        if (components < paths)
        {
            // A prefix of a hierarchical key: the SDK routes it as the EPK range that starts here.
            var prefix = methods.First(m => m.Name == "GetEPKRangeForPrefixPartitionKey");
            var epkRange = prefix.Invoke(internalKey, new[] { definition })!;
            return (string)epkRange.GetType().GetProperty("Min")!.GetValue(epkRange)!;
        }

        var method = methods.First(m => m.Name == "GetEffectivePartitionKeyString" && m.GetParameters().Length == 2 && m.GetParameters()[1].ParameterType == typeof(bool));
        return (string)method.Invoke(internalKey, new[] { definition, true })!;
    }

    private static PartitionKey KeyOf(IEnumerable<JToken?> values)
    {
        var builder = new PartitionKeyBuilder();
        foreach (var value in values)
        {
            switch (value?.Type)
            {
                case null: builder.AddNoneType(); break;
                case JTokenType.Null: builder.AddNullValue(); break;
                case JTokenType.Boolean: builder.Add((bool)value); break;
                case JTokenType.Integer or JTokenType.Float: builder.Add((double)value); break;
                default: builder.Add((string)value!); break;
            }
        }

        return builder.Build();
    }

    [HarnessFact("the server's hashing is only observable through the harness")]
    public async Task Effective_partition_keys_are_the_ones_the_dotnet_sdk_computes()
    {
        JToken?[] scalars =
        {
            "pk0", "pk1", "abc", "", "ü日本語 ☃", new string('x', 150), "p" + new string('y', 99),
            0, 1, -1, 42, 3.5, -2.25, 1e15, 9007199254740991d, -1e-7, true, false, JValue.CreateNull(), null,
        };
        var hash1 = new ContainerProperties("v1", "/pk");
        var hash2 = new ContainerProperties("v2", "/pk") { PartitionKeyDefinitionVersion = PartitionKeyDefinitionVersion.V2 };
        var multi = new ContainerProperties("mh", new List<string> { "/a", "/b", "/c" });
        var cases = new List<(ContainerProperties Properties, JObject Definition, JToken?[] Key)>();
        foreach (var s in scalars)
        {
            cases.Add((hash1, new JObject { ["paths"] = new JArray("/pk"), ["kind"] = "Hash" }, new[] { s }));
            cases.Add((hash2, new JObject { ["paths"] = new JArray("/pk"), ["kind"] = "Hash", ["version"] = 2 }, new[] { s }));
        }

        var multiDefinition = new JObject { ["paths"] = new JArray("/a", "/b", "/c"), ["kind"] = "MultiHash", ["version"] = 2 };
        var random = new Random(7);
        for (var i = 0; i < 20; i++)
        {
            JToken?[] key = { scalars[random.Next(scalars.Length - 1)], $"user{i}", i % 3 == 0 ? (JToken)(i * 1.5) : $"s{i}" };
            cases.Add((multi, multiDefinition, key));
            cases.Add((multi, multiDefinition, key.Take(1 + (i % 2)).ToArray()));
        }

        var failures = new List<string>();
        foreach (var group in cases.GroupBy(c => c.Definition.ToString()))
        {
            var keys = new JArray(group.Select(c => new JArray(c.Key.Select(v => v ?? new JObject()))));
            var answer = await Db.Server.PostHarnessAsync("/_harness/epk", new JObject { ["partitionKey"] = JObject.Parse(group.Key), ["keys"] = keys });
            var epks = answer["epks"]!.Select(e => (string)e!).ToList();
            var list = group.ToList();
            for (var i = 0; i < list.Count; i++)
            {
                var expected = DotNetEpk(list[i].Properties, KeyOf(list[i].Key));
                if (!string.Equals(expected, epks[i], StringComparison.Ordinal))
                {
                    failures.Add($"{list[i].Definition["kind"]} v{list[i].Definition["version"]} {keys[i].ToString(Newtonsoft.Json.Formatting.None)}: .NET {expected}, server {epks[i]}");
                }
            }
        }

        Output.WriteLine($"{cases.Count} keys compared");
        failures.ForEach(Output.WriteLine);
        Assert.Empty(failures);
    }

    private static JObject CorpusDocument(int i)
    {
        var doc = new JObject
        {
            ["id"] = $"d{i}",
            ["pk"] = $"p{i % 17}",
            ["n"] = i,
            ["g"] = i % 5,
            ["s"] = $"name{i % 23:00}",
            ["price"] = (i * 37 % 101) + 0.5,
        };
        if (i % 2 == 0)
        {
            doc["opt"] = i;
        }

        return doc;
    }

    private sealed record CorpusQuery(string Sql, string Compare, params (string Name, object Value)[] Parameters);

    private static async Task<List<string>> RunAsync(Container container, CorpusQuery query)
    {
        var definition = new QueryDefinition(query.Sql);
        foreach (var (name, value) in query.Parameters)
        {
            definition = definition.WithParameter(name, value);
        }

        // Small pages: the SDK merges and continues per range across many round trips.
        var rows = await DrainAsync(container.GetItemQueryIterator<JToken>(definition, requestOptions: new QueryRequestOptions { MaxItemCount = 7 }));
        // System properties differ between the two containers; the documents' own do not.
        foreach (var row in rows.OfType<JObject>())
        {
            foreach (var name in new[] { "_rid", "_self", "_etag", "_ts", "_attachments" })
            {
                row.Remove(name);
            }
        }

        var texts = rows.Select(r => r.ToString(Newtonsoft.Json.Formatting.None)).ToList();
        return query.Compare == "ordered" ? texts : texts.OrderBy(t => t, StringComparer.Ordinal).ToList();
    }

    [Fact]
    public async Task A_corpus_of_cross_partition_queries_gives_the_same_answers_on_one_range_and_on_several()
    {
        // 400 RU/s makes one physical partition on the service and on the harness; without
        // throughput the harness gives its default ranges (several).
        var single = (await Db.Database.CreateContainerIfNotExistsAsync(new ContainerProperties("corpus1", "/pk"), throughput: 400)).Container;
        var several = await Db.CreateContainerAsync("corpusN");
        if (Db.Server.IsHarness)
        {
            Assert.Single(await single.GetFeedRangesAsync());
            Assert.True((await several.GetFeedRangesAsync()).Count > 1);
        }

        const int count = 300;
        await Task.WhenAll(Enumerable.Range(0, count).SelectMany(i => new[]
        {
            single.UpsertItemAsync(CorpusDocument(i), new PartitionKey($"p{i % 17}")),
            several.UpsertItemAsync(CorpusDocument(i), new PartitionKey($"p{i % 17}")),
        }));

        var corpus = new[]
        {
            new CorpusQuery("SELECT * FROM c", "set"),
            new CorpusQuery("SELECT c.id, c.g FROM c WHERE c.g = 2 AND c.n > 40", "set"),
            new CorpusQuery("SELECT c.id, c.n FROM c ORDER BY c.n", "ordered"),
            new CorpusQuery("SELECT c.id FROM c ORDER BY c.n DESC", "ordered"),
            new CorpusQuery("SELECT VALUE c.n FROM c WHERE c.g = 1 ORDER BY c.n", "ordered"),
            new CorpusQuery("SELECT * FROM c WHERE c.price > 50 ORDER BY c.n DESC", "ordered"),
            new CorpusQuery("SELECT TOP 10 c.id FROM c ORDER BY c.n DESC", "ordered"),
            new CorpusQuery("SELECT TOP 5 c.id, c.price AS p FROM c WHERE c.g = 3 ORDER BY c.n", "ordered"),
            new CorpusQuery("SELECT c.id FROM c ORDER BY c.n OFFSET 20 LIMIT 15", "ordered"),
            new CorpusQuery("SELECT VALUE c.n FROM c ORDER BY c.n OFFSET 290 LIMIT 50", "ordered"),
            new CorpusQuery("SELECT VALUE c.id FROM c WHERE c.n >= @lo ORDER BY c.n DESC OFFSET @o LIMIT @l", "ordered", ("@lo", 100), ("@o", 3), ("@l", 9)),
            new CorpusQuery("SELECT DISTINCT VALUE c.g FROM c", "set"),
            new CorpusQuery("SELECT DISTINCT c.g FROM c WHERE c.n < 100", "set"),
            new CorpusQuery("SELECT DISTINCT VALUE c.s FROM c ORDER BY c.s", "ordered"),
            new CorpusQuery("SELECT DISTINCT VALUE c.s FROM c ORDER BY c.s DESC OFFSET 2 LIMIT 5", "ordered"),
            new CorpusQuery("SELECT DISTINCT TOP 3 VALUE c.g FROM c ORDER BY c.g", "ordered"),
            new CorpusQuery("SELECT VALUE COUNT(1) FROM c", "ordered"),
            new CorpusQuery("SELECT VALUE COUNT(1) FROM c WHERE c.g = @g", "ordered", ("@g", 4)),
            new CorpusQuery("SELECT VALUE COUNT(c.opt) FROM c", "ordered"),
            new CorpusQuery("SELECT VALUE SUM(c.n) FROM c", "ordered"),
            new CorpusQuery("SELECT VALUE SUM(c.price) FROM c WHERE c.g = 2", "ordered"),
            new CorpusQuery("SELECT VALUE MIN(c.price) FROM c", "ordered"),
            new CorpusQuery("SELECT VALUE MAX(c.n) FROM c WHERE c.g = 0", "ordered"),
            new CorpusQuery("SELECT VALUE MIN(c.n) FROM c WHERE c.pk = 'p3'", "ordered"),
            new CorpusQuery("SELECT VALUE MAX(c.s) FROM c", "ordered"),
            new CorpusQuery("SELECT VALUE MAX(c.n) FROM c WHERE c.n > 100000", "ordered"),
            new CorpusQuery("SELECT VALUE AVG(c.price) FROM c", "ordered"),
            new CorpusQuery("SELECT VALUE AVG(c.n) FROM c WHERE c.pk = 'p5'", "ordered"),
            new CorpusQuery("SELECT COUNT(1) AS total, SUM(c.n) AS sum, MAX(c.price) AS highest FROM c WHERE c.g > 1", "ordered"),
        };

        var differences = new List<string>();
        foreach (var query in corpus)
        {
            var one = await RunAsync(single, query);
            var many = await RunAsync(several, query);
            Output.WriteLine($"{query.Sql}: {one.Count} row(s){(one.Count == 1 ? " " + one[0] : "")}");
            if (!one.SequenceEqual(many))
            {
                differences.Add($"{query.Sql}\n  1 range:  {string.Join(",", one.Take(12))}\n  N ranges: {string.Join(",", many.Take(12))}");
            }
        }

        Assert.Empty(differences);

        // And the answers are right, not merely equal.
        var docs = Enumerable.Range(0, count).Select(CorpusDocument).ToList();
        Assert.Equal(new[] { $"{count}" }, await RunAsync(several, corpus[16]));
        Assert.Equal(new[] { docs.Sum(d => (int)d["n"]!).ToString(CultureInfo.InvariantCulture) }, await RunAsync(several, corpus[19]));
        Assert.Equal(new[] { docs.Count(d => d["opt"] is not null).ToString(CultureInfo.InvariantCulture) }, await RunAsync(several, corpus[18]));
        Assert.Equal(Enumerable.Range(20, 15).Select(i => new JObject { ["id"] = $"d{i}" }.ToString(Newtonsoft.Json.Formatting.None)), await RunAsync(several, corpus[8]));
        Assert.Equal(new[] { "0", "1", "2", "3", "4" }, await RunAsync(several, corpus[11]));
        Assert.Empty(await RunAsync(several, corpus[25]));
        var p3 = docs.Where(d => (string)d["pk"]! == "p3").Min(d => (int)d["n"]!);
        Assert.Equal(new[] { p3.ToString(CultureInfo.InvariantCulture) }, await RunAsync(several, corpus[23]));

        // What the service rejects, the plan request rejects (GROUP BY is not served by the harness).
        var invalid = await Assert.ThrowsAsync<CosmosException>(() => RunAsync(several, new CorpusQuery("SELECT c.id, COUNT(1) FROM c", "set")));
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
    }

    [Fact]
    public async Task Hierarchical_keys_keep_documents_apart_and_scope_queries_by_prefix()
    {
        var container = (await Db.Database.CreateContainerIfNotExistsAsync(new ContainerProperties("tenants", new List<string> { "/tenant", "/user", "/session" }))).Container;
        var ids = new List<(string Tenant, string User, string Session)>();
        for (var t = 0; t < 6; t++)
        {
            for (var u = 0; u < 5; u++)
            {
                for (var s = 0; s < 2; s++)
                {
                    ids.Add(($"t{t}", $"u{u}", $"s{s}"));
                }
            }
        }

        // Same id in every logical partition: documents differing only in the 2nd or 3rd key value.
        foreach (var (tenant, user, session) in ids)
        {
            var key = new PartitionKeyBuilder().Add(tenant).Add(user).Add(session).Build();
            await container.CreateItemAsync(new JObject { ["id"] = "same", ["tenant"] = tenant, ["user"] = user, ["session"] = session }, key);
        }

        Assert.Equal(ids.Count, (await DrainAsync(container.GetItemQueryIterator<JObject>("SELECT * FROM c"))).Count);
        var point = new PartitionKeyBuilder().Add("t2").Add("u3").Add("s1").Build();
        var read = await container.ReadItemAsync<JObject>("same", point);
        Assert.Equal(("t2", "u3", "s1"), ((string)read.Resource["tenant"]!, (string)read.Resource["user"]!, (string)read.Resource["session"]!));
        await container.PatchItemAsync<JObject>("same", point, new[] { PatchOperation.Set("/seen", true) });
        Assert.Single(await DrainAsync(container.GetItemQueryIterator<JObject>("SELECT * FROM c WHERE c.seen = true")));

        // A prefix of the key (tenant, or tenant and user) scopes a query to its partitions,
        // which the SDK sends as an EPK sub-range; they may span physical ranges.
        var ofTenant = await DrainAsync(container.GetItemQueryIterator<JObject>("SELECT * FROM c", requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKeyBuilder().Add("t4").Build() }));
        Assert.Equal(10, ofTenant.Count);
        Assert.All(ofTenant, d => Assert.Equal("t4", (string)d["tenant"]!));
        var ofUser = await DrainAsync(container.GetItemQueryIterator<long>("SELECT VALUE COUNT(1) FROM c", requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKeyBuilder().Add("t4").Add("u1").Build() }));
        Assert.Equal(2L, ofUser.Sum());

        await container.DeleteItemAsync<JObject>("same", point);
        Assert.Equal(ids.Count - 1, (await DrainAsync(container.GetItemQueryIterator<long>("SELECT VALUE COUNT(1) FROM c"))).Sum());
        var wrongKey = await Assert.ThrowsAsync<CosmosException>(() => container.CreateItemAsync(new JObject { ["id"] = "x", ["tenant"] = "t0", ["user"] = "u0", ["session"] = "s9" }, new PartitionKeyBuilder().Add("t0").Add("u0").Add("s0").Build()));
        Assert.Equal(HttpStatusCode.BadRequest, wrongKey.StatusCode);
    }

    [HarnessFact("creating a container with a hand-written body needs the harness (no signature)")]
    public async Task Container_replace_judges_the_partition_key_definition_by_meaning()
    {
        // Created by another client: the same definition, its properties in another order.
        using var create = new HttpRequestMessage(HttpMethod.Post, $"/dbs/{Db.Name}/colls")
        {
            Content = new StringContent("{\"id\":\"foreign\",\"partitionKey\":{\"version\":1,\"kind\":\"Hash\",\"paths\":[\"/pk\"]}}", Encoding.UTF8, "application/json"),
        };
        using (var created = await Db.Server.SendRawAsync(create))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var container = Db.Database.GetContainer("foreign");
        var properties = (await container.ReadContainerAsync()).Resource;
        properties.IndexingPolicy.IncludedPaths.Add(new IncludedPath { Path = "/status/?" });
        var replaced = await container.ReplaceContainerAsync(properties);
        Assert.Equal(HttpStatusCode.OK, replaced.StatusCode);

        properties.PartitionKeyPath = "/other";
        var changed = await Assert.ThrowsAsync<CosmosException>(() => container.ReplaceContainerAsync(properties));
        Assert.Equal(HttpStatusCode.BadRequest, changed.StatusCode);
    }

    [HarnessFact("it injects faults")]
    public async Task Faults_can_target_one_range_only()
    {
        var container = await Db.CreateSeededContainerAsync("faultyrange", 400, 40);
        var ranges = await Db.Server.RangesAsync(Db.Name, "faultyrange");
        var target = (string)ranges.First(r => (int)r["documents"]! > 0)["id"]!;
        using var client = new CosmosClient(Db.Server.Endpoint, Db.Server.Key, new CosmosClientOptions
        {
            ConnectionMode = ConnectionMode.Gateway,
            LimitToEndpoint = true,
            MaxRetryAttemptsOnRateLimitedRequests = 0,
            HttpClientFactory = () => new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true }),
        });
        var faulty = client.GetContainer(Db.Name, "faultyrange");
        // Only this container's requests (test classes run in parallel on one server).
        await Db.Server.SetFaultsAsync(new { rate429 = 1.0, ranges = new[] { target }, retryAfterMs = 1, pathPattern = "/colls/faultyrange/docs" });
        try
        {
            var outcomes = new Dictionary<string, (int Ok, int Throttled)>();
            foreach (var feedRange in await faulty.GetFeedRangesAsync())
            {
                var (min, _) = Bounds(feedRange);
                var id = (string)ranges.First(r => (string)r["minInclusive"]! == min)["id"]!;
                try
                {
                    await DrainAsync(faulty.GetItemQueryIterator<JObject>(feedRange, new QueryDefinition("SELECT * FROM c")));
                    outcomes[id] = (1, 0);
                }
                catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    outcomes[id] = (0, 1);
                }
            }

            Assert.Equal(ranges.Count, outcomes.Count);
            Assert.Equal((0, 1), outcomes[target]);
            Assert.All(outcomes.Where(o => o.Key != target), o => Assert.Equal((1, 0), o.Value));

            // Point operations are judged by the range their partition key lies in.
            var throttledReads = 0;
            for (var i = 0; i < 40; i++)
            {
                try
                {
                    await faulty.ReadItemAsync<JObject>($"d{i}", new PartitionKey($"p{i}"));
                }
                catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    throttledReads++;
                }
            }

            var inTarget = (int)ranges.First(r => (string)r["id"]! == target)["documents"]! / 10;
            Assert.Equal(inTarget, throttledReads);
        }
        finally
        {
            await Db.Server.SetFaultsAsync(new { });
        }
    }

    [HarnessFact("it splits a range on demand")]
    public async Task Reads_addressed_to_a_split_range_get_410_and_the_sdk_follows_the_children()
    {
        var container = await Db.CreateSeededContainerAsync("gone", 600, 60);
        var before = await container.GetFeedRangesAsync();
        var split = await Db.Server.SplitAsync(Db.Name, "gone");
        var parent = (string)split["parent"]!;
        var children = split["children"]!.Select(c => (string)c!).ToList();
        Assert.Equal(2, children.Count);
        var after = await Db.Server.RangesAsync(Db.Name, "gone");
        Assert.Equal(before.Count + 1, after.Count);
        Assert.All(after.Where(r => children.Contains((string)r["id"]!)), r => Assert.Equal(parent, (string)r["parents"]![0]!));
        Assert.True(after.Where(r => children.Contains((string)r["id"]!)).All(r => (int)r["documents"]! > 0), "a split of the fullest range halves its documents");

        using var request = new HttpRequestMessage(HttpMethod.Get, $"/dbs/{Db.Name}/colls/gone/docs");
        request.Headers.Add("x-ms-documentdb-partitionkeyrangeid", parent);
        using var response = await Db.Server.SendRawAsync(request);
        Assert.Equal(HttpStatusCode.Gone, response.StatusCode);
        Assert.Equal("1002", response.Headers.GetValues("x-ms-substatus").Single());

        // The client's routing map still names the parent: the 410 makes it re-read /pkranges.
        var all = await DrainAsync(container.GetItemQueryIterator<JObject>("SELECT c.id FROM c"));
        Assert.Equal(600, all.Select(d => (string)d["id"]!).Distinct().Count());
        Assert.Equal(before.Count + 1, (await container.GetFeedRangesAsync()).Count);
        using var fresh = Db.Server.CreateClient();
        Assert.Equal(before.Count + 1, (await fresh.GetContainer(Db.Name, "gone").GetFeedRangesAsync()).Count);
    }

    [HarnessFact("it splits a range on demand")]
    public async Task A_split_during_a_paged_query_loses_and_repeats_nothing()
    {
        var container = await Db.CreateSeededContainerAsync("splitquery", 1200, 120);

        // One iterator across the split (the SDK's cross-partition pipeline).
        var seen = new List<string>();
        using (var iterator = container.GetItemQueryIterator<JObject>("SELECT c.id FROM c", requestOptions: new QueryRequestOptions { MaxItemCount = 50 }))
        {
            var pages = 0;
            while (iterator.HasMoreResults)
            {
                seen.AddRange((await iterator.ReadNextAsync()).Select(d => (string)d["id"]!));
                if (++pages == 5)
                {
                    await Db.Server.SplitAsync(Db.Name, "splitquery");
                }
            }
        }

        Assert.Equal(1200, seen.Count);
        Assert.Equal(1200, seen.Distinct().Count());

        // A stored continuation of one feed range, resumed after its range split, by a new
        // client (as a resumed migration does): the children accept the parent's continuation.
        var range = (await container.GetFeedRangesAsync())[0];
        var expected = (await DrainAsync(container.GetItemQueryIterator<JObject>(range, new QueryDefinition("SELECT c.id FROM c")))).Select(d => (string)d["id"]!).ToList();
        var first = new List<string>();
        string? continuation;
        using (var iterator = container.GetItemQueryIterator<JObject>(range, new QueryDefinition("SELECT c.id FROM c"), null, new QueryRequestOptions { MaxItemCount = 40 }))
        {
            var page = await iterator.ReadNextAsync();
            first.AddRange(page.Select(d => (string)d["id"]!));
            continuation = page.ContinuationToken;
        }

        Assert.NotNull(continuation);
        var (min, _) = Bounds(range);
        var physical = (string)(await Db.Server.RangesAsync(Db.Name, "splitquery")).First(r => (string)r["minInclusive"]! == min)["id"]!;
        await Db.Server.SplitAsync(Db.Name, "splitquery", physical);
        using var client = Db.Server.CreateClient();
        var rest = await DrainAsync(client.GetContainer(Db.Name, "splitquery").GetItemQueryIterator<JObject>(range, new QueryDefinition("SELECT c.id FROM c"), continuation, new QueryRequestOptions { MaxItemCount = 40 }));
        var resumed = first.Concat(rest.Select(d => (string)d["id"]!)).ToList();
        Output.WriteLine($"range {range.ToJsonString()}: {first.Count} before the split, {rest.Count} after");
        Assert.Equal(expected.Count, resumed.Count);
        Assert.Equal(expected.OrderBy(s => s, StringComparer.Ordinal), resumed.OrderBy(s => s, StringComparer.Ordinal));
    }

    [HarnessFact("it splits a range on demand")]
    public async Task A_split_during_a_change_feed_loses_and_repeats_nothing()
    {
        var container = await Db.CreateSeededContainerAsync("splitfeed", 600, 60);
        var delivered = new List<string>();
        var iterator = container.GetChangeFeedIterator<JObject>(ChangeFeedStartFrom.Beginning(), ChangeFeedMode.LatestVersion, new ChangeFeedRequestOptions { PageSizeHint = 50 });
        string? continuation = null;
        while (delivered.Count < 200)
        {
            var page = await iterator.ReadNextAsync();
            delivered.AddRange(page.Select(d => (string)d["id"]!));
            continuation = page.ContinuationToken;
        }

        await Db.Server.SplitAsync(Db.Name, "splitfeed");
        await TestDatabase.SeedAsync(container, 100, 60, i => new JObject { ["late"] = true });
        await container.UpsertItemAsync(new JObject { ["id"] = "new1", ["pk"] = "p7" }, new PartitionKey("p7"));

        // The same iterator goes on, and a new one resumes from the saved continuation.
        var resumed = new List<string>(delivered);
        var rest = container.GetChangeFeedIterator<JObject>(ChangeFeedStartFrom.ContinuationToken(continuation), ChangeFeedMode.LatestVersion, new ChangeFeedRequestOptions { PageSizeHint = 50 });
        foreach (var (feed, list) in new[] { (iterator, delivered), (rest, resumed) })
        {
            while (true)
            {
                var page = await feed.ReadNextAsync();
                if (page.StatusCode == HttpStatusCode.NotModified)
                {
                    break;
                }

                list.AddRange(page.Select(d => (string)d["id"]!));
            }
        }

        // d0..d99 were rewritten after the split (late = true): delivered again at their new
        // version, as the change feed does; every other document exactly once.
        foreach (var list in new[] { delivered, resumed })
        {
            var counts = list.GroupBy(id => id).ToDictionary(g => g.Key, g => g.Count());
            Assert.Equal(601, counts.Count);
            Assert.All(counts.Where(c => !IsRewritten(c.Key)), c => Assert.Equal(1, c.Value));
            Assert.All(counts.Where(c => IsRewritten(c.Key)), c => Assert.InRange(c.Value, 1, 2));
        }

        static bool IsRewritten(string id) => id.StartsWith('d') && int.Parse(id.AsSpan(1), CultureInfo.InvariantCulture) < 100;
    }
}
