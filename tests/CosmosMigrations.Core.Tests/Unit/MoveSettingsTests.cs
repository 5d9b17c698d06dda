using System.Collections.ObjectModel;
using CosmosMigrations.Moving;
using Microsoft.Azure.Cosmos;

namespace CosmosMigrations.Tests.Unit;

/// <summary>A move's target gets every setting of its source but the key, and the preflight says
/// what does not carry over.</summary>
public sealed class MoveSettingsTests
{
    private static ContainerProperties Source()
    {
        var source = new ContainerProperties("orders", "/pk")
        {
            DefaultTimeToLive = 3600,
            UniqueKeyPolicy = new UniqueKeyPolicy { UniqueKeys = { new UniqueKey { Paths = { "/sku" } } } },
            ConflictResolutionPolicy = new ConflictResolutionPolicy { Mode = ConflictResolutionMode.LastWriterWins, ResolutionPath = "/updatedAt" },
        };
        source.IndexingPolicy.ExcludedPaths.Add(new ExcludedPath { Path = "/blob/*" });
        source.ComputedProperties = new Collection<ComputedProperty> { new() { Name = "cp_lower", Query = "SELECT VALUE LOWER(c.name) FROM c" } };
        return source;
    }

    [Fact]
    public void The_target_takes_every_setting_of_the_source_but_the_key()
    {
        var target = MoveSettings.ForTarget(Source(), "orders2", MoveKey.Parse(new[] { "/tenantId" }, new[] { "/pk" }));
        Assert.Equal("orders2", target.Id);
        Assert.Equal("/tenantId", target.PartitionKeyPath);
        Assert.Equal(3600, target.DefaultTimeToLive);
        Assert.Equal("/sku", target.UniqueKeyPolicy.UniqueKeys.Single().Paths.Single());
        Assert.Contains(target.IndexingPolicy.ExcludedPaths, p => p.Path == "/blob/*");
        Assert.Equal("cp_lower", target.ComputedProperties.Single().Name);
        Assert.Equal("/updatedAt", target.ConflictResolutionPolicy.ResolutionPath);
    }

    [Fact]
    public void A_hierarchical_key_makes_a_multihash_target()
    {
        var target = MoveSettings.ForTarget(Source(), "orders3", MoveKey.Parse(new[] { "/tenantId", "/userId" }, new[] { "/pk" }));
        Assert.Equal(new[] { "/tenantId", "/userId" }, target.PartitionKeyPaths);
    }

    [Fact]
    public void The_preflight_says_what_carries_over_and_what_does_not()
    {
        var settings = MoveSettings.Describe(Source(), MoveKey.Parse(new[] { "/tenantId" }, new[] { "/pk" }));
        Assert.True(settings.Single(s => s.Setting == "DefaultTimeToLive").CarriesOver);
        Assert.Equal("3600", settings.Single(s => s.Setting == "DefaultTimeToLive").Value);
        Assert.Contains("logical partition", settings.Single(s => s.Setting == "UniqueKeyPolicy").Detail);
        Assert.False(settings.Single(s => s.Setting == "PartitionKey").CarriesOver);
        Assert.False(settings.Single(s => s.Setting == "Throughput").CarriesOver);
        Assert.All(settings.Where(s => !s.CarriesOver), s => Assert.False(string.IsNullOrWhiteSpace(s.Detail)));
    }
}
