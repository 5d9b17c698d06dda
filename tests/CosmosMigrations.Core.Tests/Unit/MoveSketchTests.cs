using CosmosMigrations.Errors;
using CosmosMigrations.Moving;

namespace CosmosMigrations.Tests.Unit;

/// <summary>The pure parts of a move: the preflight's sketches (distinct keys, heaviest keys, the
/// (key, id) filter), the order-independent content digest, and the new key's validation.</summary>
public sealed class MoveSketchTests
{
    [Fact]
    public void Distinct_keys_are_exact_up_to_the_limit()
    {
        var counter = new DistinctCounter();
        for (var i = 0; i < 3000; i++)
        {
            counter.Add(StableHash.Of("tenant-" + (i % 1234)));
        }

        Assert.False(counter.Estimated);
        Assert.Equal(1234, counter.Count);
    }

    [Theory]
    [InlineData(20_000)]
    [InlineData(250_000)]
    public void Distinct_keys_past_the_limit_are_estimated_within_three_percent(int distinct)
    {
        var counter = new DistinctCounter();
        for (var i = 0; i < distinct; i++)
        {
            counter.Add(StableHash.Of("k" + i));
            counter.Add(StableHash.Of("k" + i));
        }

        Assert.True(counter.Estimated);
        Assert.InRange(counter.Count, distinct * 0.97, distinct * 1.03);
    }

    [Fact]
    public void Heavy_hitters_are_exact_while_every_key_fits()
    {
        var sketch = new HeavyHitters(10);
        foreach (var (key, weight) in new[] { ("a", 5L), ("b", 7L), ("a", 4L), ("c", 1L) })
        {
            sketch.Add(key, weight);
        }

        Assert.False(sketch.Estimated);
        var top = sketch.Top(2);
        Assert.Equal(new[] { "a", "b" }, top.Select(k => k.Key));
        Assert.Equal(9, top[0].Weight);
        Assert.Equal(2, top[0].Documents);
        Assert.Equal(0, top[0].Error);
    }

    [Fact]
    public void Heavy_hitters_keep_a_heavy_key_among_many_light_ones_with_a_bounded_overcount()
    {
        var sketch = new HeavyHitters(50);
        var random = new Random(7);
        long total = 0;
        for (var i = 0; i < 100_000; i++)
        {
            var key = i % 10 == 0 ? "hot" : i % 25 == 1 ? "warm" : "cold-" + random.Next(50_000);
            sketch.Add(key, 1);
            total++;
        }

        Assert.True(sketch.Estimated);
        var top = sketch.Top(2);
        Assert.Equal("hot", top[0].Key);
        Assert.Equal("warm", top[1].Key);
        // Space-Saving: the weight is an upper bound, at most the inherited error too high, and that error is at most total / capacity.
        Assert.InRange(top[0].Weight - top[0].Error, 0, 10_000);
        Assert.True(top[0].Weight >= 10_000);
        Assert.True(top[0].Error <= total / 50);
    }

    [Fact]
    public void The_pair_filter_never_misses_a_repeat_and_rarely_flags_a_new_pair()
    {
        var filter = new PairFilter(100_000);
        var falsePositives = 0;
        for (var i = 0; i < 100_000; i++)
        {
            if (filter.Add(StableHash.Of("[\"t\"]\u0000" + i)))
            {
                falsePositives++;
            }
        }

        for (var i = 0; i < 1000; i++)
        {
            Assert.True(filter.Add(StableHash.Of("[\"t\"]\u0000" + i)));
        }

        Assert.InRange(falsePositives, 0, 100);
        Assert.True(filter.SizeBytes <= PairFilter.MaxBytes);
    }

    [Fact]
    public void The_pair_filter_stays_within_its_memory_ceiling_for_any_count()
    {
        Assert.Equal(PairFilter.MaxBytes, new PairFilter(10_000_000_000).SizeBytes);
    }

    [Fact]
    public void The_digest_ignores_order_system_properties_and_number_spelling()
    {
        var a = JObject.Parse("{\"id\":\"1\",\"pk\":\"x\",\"n\":1.0,\"nested\":{\"b\":2,\"a\":[1,2]},\"_etag\":\"e1\",\"_ts\":10,\"_rid\":\"r\"}");
        var b = JObject.Parse("{\"nested\":{\"a\":[1,2],\"b\":2},\"n\":1,\"pk\":\"x\",\"id\":\"1\",\"_etag\":\"other\",\"_ts\":99}");
        var c = JObject.Parse("{\"id\":\"2\",\"pk\":\"y\"}");
        Assert.Equal(ContentDigest.HashOf(a), ContentDigest.HashOf(b));

        var left = new ContentDigest();
        left.Add(a);
        left.Add(c);
        var right = new ContentDigest();
        right.Add(c);
        right.Add(b);
        Assert.Equal(left, right);
    }

    [Fact]
    public void The_digest_tells_a_changed_value_a_missing_document_and_an_array_order_apart()
    {
        var original = JObject.Parse("{\"id\":\"1\",\"tags\":[\"a\",\"b\"],\"n\":2}");
        var digest = Digest(original, JObject.Parse("{\"id\":\"2\"}"));
        Assert.NotEqual(digest, Digest(JObject.Parse("{\"id\":\"1\",\"tags\":[\"a\",\"b\"],\"n\":3}"), JObject.Parse("{\"id\":\"2\"}")));
        Assert.NotEqual(digest, Digest(JObject.Parse("{\"id\":\"1\",\"tags\":[\"b\",\"a\"],\"n\":2}"), JObject.Parse("{\"id\":\"2\"}")));
        Assert.NotEqual(digest, Digest(original));
        Assert.NotEqual(digest, Digest(original, JObject.Parse("{\"id\":\"2\"}"), JObject.Parse("{\"id\":\"2\"}")));

        // Digests of parts (ranges) add up to the whole's.
        var whole = Digest(original, JObject.Parse("{\"id\":\"2\"}"));
        var sum = Digest(original);
        sum.Add(Digest(JObject.Parse("{\"id\":\"2\"}")));
        Assert.Equal(whole, sum);
    }

    private static ContentDigest Digest(params JObject[] documents)
    {
        var digest = new ContentDigest();
        foreach (var document in documents)
        {
            digest.Add(document);
        }

        return digest;
    }

    [Theory]
    [InlineData("tenantId")]
    [InlineData("/")]
    [InlineData("/a//b")]
    [InlineData("/a/")]
    [InlineData("/tags/[]")]
    [InlineData("/*")]
    [InlineData("/_ts")]
    public void A_key_path_that_is_not_a_path_is_refused(string path)
    {
        var error = Assert.Throws<MigrationException>(() => MoveKey.Parse(new[] { path }));
        Assert.Equal("InvalidPartitionKeyPath", error.ErrorId);
        Assert.Equal(MigrationErrorKind.InvalidArgument, error.Kind);
        Assert.NotNull(error.RecommendedAction);
    }

    [Fact]
    public void A_key_of_four_paths_or_a_repeated_path_is_refused()
    {
        Assert.Equal("InvalidPartitionKeyPath", Assert.Throws<MigrationException>(() => MoveKey.Parse(new[] { "/a", "/b", "/c", "/d" })).ErrorId);
        Assert.Equal("InvalidPartitionKeyPath", Assert.Throws<MigrationException>(() => MoveKey.Parse(new[] { "/a", "/a" })).ErrorId);
    }

    [Fact]
    public void The_source_key_is_refused_as_the_new_key()
    {
        var error = Assert.Throws<MigrationException>(() => MoveKey.Parse(new[] { "/pk" }, new[] { "/pk" }));
        Assert.Equal("SamePartitionKey", error.ErrorId);
        Assert.Equal("/tenant", MoveKey.Parse(new[] { "/tenant" }, new[] { "/pk" }).Paths.Single());
    }

    [Fact]
    public void A_hierarchical_key_reads_missing_values_and_selects_its_partition_by_parameters()
    {
        var key = MoveKey.Parse(new[] { "/tenant", "/user/id" });
        Assert.True(key.Hierarchical);
        var document = JObject.Parse("{\"id\":\"1\",\"tenant\":\"t'1\",\"user\":{\"id\":5}}");
        Assert.False(key.IsMissing(document));
        Assert.Equal("[\"t'1\",5]", key.Describe(document));
        var (condition, parameters) = key.SameKeyCondition(document);
        Assert.Equal("c[\"tenant\"] = @key0 AND c[\"user\"][\"id\"] = @key1", condition.Replace("c.tenant", "c[\"tenant\"]").Replace("c.user.id", "c[\"user\"][\"id\"]"));
        Assert.DoesNotContain("t'1", condition);
        Assert.Equal(2, parameters.Count);

        var partial = JObject.Parse("{\"id\":\"2\",\"tenant\":\"t\"}");
        Assert.True(key.IsMissing(partial));
        Assert.Contains("NOT IS_DEFINED", key.SameKeyCondition(partial).Condition);
    }
}
