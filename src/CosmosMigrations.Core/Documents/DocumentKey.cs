namespace CosmosMigrations.Documents;

/// <summary>A document's key: enough to read it again and to tell whether it changed since.</summary>
internal static class DocumentKey
{
    /// <summary>What a page's intent and a failure entry keep of a document: its id, the properties that
    /// hold its partition key, and its ETag as read.</summary>
    public static JObject Of(JObject document, PartitionKeyReader partitionKey)
    {
        var key = new JObject { ["id"] = document["id"]?.DeepClone() };
        foreach (var top in partitionKey.Paths.Select(p => p.Segments[0]).Distinct(StringComparer.Ordinal))
        {
            if (top != "id" && document[top] is { } value)
            {
                key[top] = value.DeepClone();
            }
        }

        if (document["_etag"] is { } etag)
        {
            key["_etag"] = etag.DeepClone();
        }

        return key;
    }
}
