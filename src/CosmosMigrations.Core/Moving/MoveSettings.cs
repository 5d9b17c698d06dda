namespace CosmosMigrations.Moving;

/// <summary>One setting of the source container: whether a move's target gets it, and why not.</summary>
public sealed record MoveSetting(string Setting, bool CarriesOver, string Value, string Detail);

/// <summary>What a move's target takes from its source: every container setting except the key, as
/// the service allows them at creation, and what cannot carry over, with the reason.</summary>
internal static class MoveSettings
{
    /// <summary>The target's properties: the source's, with the new key and the target's name.</summary>
    public static ContainerProperties ForTarget(ContainerProperties source, string target, MoveKey key)
    {
        var properties = new ContainerProperties(target, key.Paths.ToList())
        {
            IndexingPolicy = source.IndexingPolicy,
            DefaultTimeToLive = source.DefaultTimeToLive,
            UniqueKeyPolicy = source.UniqueKeyPolicy,
            ConflictResolutionPolicy = source.ConflictResolutionPolicy,
            AnalyticalStoreTimeToLiveInSeconds = source.AnalyticalStoreTimeToLiveInSeconds,
            GeospatialConfig = source.GeospatialConfig,
        };
        properties.PartitionKeyDefinitionVersion = PartitionKeyDefinitionVersion.V2;
        if (source.ComputedProperties is { Count: > 0 })
        {
            foreach (var computed in source.ComputedProperties)
            {
                properties.ComputedProperties.Add(computed);
            }
        }

        if (source.ChangeFeedPolicy is { } changeFeed)
        {
            properties.ChangeFeedPolicy = changeFeed;
        }

        return properties;
    }

    public static IReadOnlyList<MoveSetting> Describe(ContainerProperties source, MoveKey key)
    {
        var sourceKey = string.Join(", ", source.PartitionKeyPaths ?? new[] { source.PartitionKeyPath });
        var settings = new List<MoveSetting>
        {
            new("PartitionKey", false, sourceKey, $"the target is partitioned by {key}{(key.Hierarchical ? " (hierarchical: MultiHash)" : "")}: the reason for the move"),
            new("IndexingPolicy", true, Json(source.IndexingPolicy), "copied as is (included and excluded paths, composite, spatial indexes)"),
            new("DefaultTimeToLive", true, source.DefaultTimeToLive?.ToString() ?? "off",
                source.DefaultTimeToLive is null ? "off on both" : "copied (the online container copy does not); a copied document's TTL counts from its copy, when the target sets its _ts"),
            new("UniqueKeyPolicy", true, source.UniqueKeyPolicy?.UniqueKeys.Count > 0 ? string.Join("; ", source.UniqueKeyPolicy.UniqueKeys.Select(u => string.Join(",", u.Paths))) : "none",
                source.UniqueKeyPolicy?.UniqueKeys.Count > 0
                    ? "copied; unique keys hold within a logical partition, which is now one of the new key: documents unique under the old key may collide under the new one (the copy reports them as failures)"
                    : "none on both"),
            new("ComputedProperties", true, source.ComputedProperties?.Count > 0 ? string.Join(", ", source.ComputedProperties.Select(c => c.Name)) : "none", "copied"),
            new("ConflictResolutionPolicy", true, source.ConflictResolutionPolicy is { } conflicts ? $"{conflicts.Mode} {conflicts.ResolutionPath}{conflicts.ResolutionProcedure}".Trim() : "default",
                "copied (it matters with multi-region writes only)"),
        };
        if (source.AnalyticalStoreTimeToLiveInSeconds is { } analytical)
        {
            settings.Add(new("AnalyticalStoreTimeToLive", true, analytical.ToString(), "copied (the account must have Synapse Link on); the analytical store of the target starts empty and fills from the copy"));
        }

        if (source.ChangeFeedPolicy is { } changeFeed && changeFeed.FullFidelityRetention > System.TimeSpan.Zero)
        {
            settings.Add(new("ChangeFeedPolicy", true, changeFeed.FullFidelityRetention.ToString(), "copied; the target's change feed begins with the copy (the source's history stays with the source)"));
        }

        settings.Add(new("Throughput", false, "", "set by Start-ContainerMove -Throughput or -AutoscaleMaxThroughput; without them, the source's own (manual or autoscale) when it has one, else the database's shared throughput or serverless, as the account is"));
        settings.Add(new("StoredProceduresTriggersFunctions", false, "", "not copied: they are resources of their own; deploy them to the target with the application"));
        settings.Add(new("SystemProperties", false, "_rid, _self, _etag, _ts, _attachments", "set by the service on each write: a copied document's _ts is the time of its copy, its _etag new"));
        return settings;
    }

    private static string Json(object? value) => value is null ? "" : JsonConvert.SerializeObject(value, Formatting.None, new JsonSerializerSettings { NullValueHandling = NullValueHandling.Ignore });
}
