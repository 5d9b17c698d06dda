using System.Security.Cryptography;
using System.Text;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Failures;

/// <summary>One document a migration step could not change, as the failure store keeps it: what
/// an operator needs to fix it (the error, its class, the document before) and what a retry needs
/// to find it again (its id and partition key values, by point read).</summary>
internal sealed class FailureEntry
{
    /// <summary>Before-images above this size are not kept (the entry says how large the document
    /// was): an entry stays a small write, whatever the documents.</summary>
    public const int MaxBeforeImageBytes = 16 * 1024;

    /// <summary>The entry's own id: a hash of migration, step, document id and partition key, so
    /// that the same failure met again lands on the same entry.</summary>
    [JsonProperty("id")] public string Id { get; set; } = "";

    /// <summary>The entry's logical partition: its id (entries spread evenly, whatever the target's keys).</summary>
    [JsonProperty("pk")] public string PartitionKeyValue { get; set; } = "";

    [JsonProperty("migration")] public string Migration { get; set; } = "";

    [JsonProperty("step")] public int Step { get; set; }

    [JsonProperty("documentId")] public string DocumentId { get; set; } = "";

    /// <summary>The partition key values as JSON text (as in messages).</summary>
    [JsonProperty("partitionKey")] public string PartitionKey { get; set; } = "";

    /// <summary>The document's id and the properties that hold its partition key: what a retry's point read needs.</summary>
    [JsonProperty("key")] public JObject Key { get; set; } = new();

    [JsonProperty("class")] public string Class { get; set; } = nameof(FailureClass.Transform);

    [JsonProperty("error")] public string Error { get; set; } = "";

    /// <summary>Runs that tried the document and failed (a first failure is 1; each failed retry adds one).</summary>
    [JsonProperty("attempts")] public int Attempts { get; set; } = 1;

    /// <summary>The document as the step read it (system properties left out), when it fits
    /// <see cref="MaxBeforeImageBytes"/>.</summary>
    [JsonProperty("beforeImage", NullValueHandling = NullValueHandling.Ignore)] public JObject? BeforeImage { get; set; }

    /// <summary>The before-image's size in bytes (as JSON), also when it was too large to keep.</summary>
    [JsonProperty("beforeImageBytes")] public int BeforeImageBytes { get; set; }

    /// <summary>Epoch ms of the latest failure.</summary>
    [JsonProperty("at")] public long At { get; set; }

    /// <summary>The tracking document's failure epoch when recorded (see <see cref="Tracking.TrackingDocument.FailureEpoch"/>).</summary>
    [JsonProperty("epoch")] public long Epoch { get; set; }

    /// <summary>Set when a retry changed the document (or found it no longer needing the change)
    /// and the entry waits to be removed: no longer a failure, not counted.</summary>
    [JsonProperty("resolved", NullValueHandling = NullValueHandling.Ignore)] public bool? Resolved { get; set; }

    /// <summary>Per-item retention (seconds), like the journal's; absent keeps the entry until resolved.</summary>
    [JsonProperty("ttl", NullValueHandling = NullValueHandling.Ignore)] public int? Ttl { get; set; }

    [JsonProperty("_etag", NullValueHandling = NullValueHandling.Ignore)] public string? ETag { get; set; }

    [JsonIgnore] public FailureClass FailureClass => FailureClasses.Parse(Class);

    /// <summary>The entry of <paramref name="document"/> (as the step read it) failing in
    /// <paramref name="step"/> of <paramref name="migration"/>.</summary>
    public static FailureEntry For(string migration, int step, JObject document, PartitionKeyReader partitionKey, FailureClass failureClass, string error,
        long epoch, long now, int? ttl)
    {
        var documentId = (string?)document["id"] ?? "";
        var keyText = partitionKey.Describe(document);
        var id = EntryId(migration, step, documentId, keyText);
        var image = DocumentJson.WithoutSystemProperties(document);
        var bytes = Encoding.UTF8.GetByteCount(image.ToString(Formatting.None));
        return new FailureEntry
        {
            Id = id,
            PartitionKeyValue = id,
            Migration = migration,
            Step = step,
            DocumentId = documentId,
            PartitionKey = keyText,
            Key = DocumentKey.Of(document, partitionKey).WithoutETag(),
            Class = failureClass.ToString(),
            Error = error,
            BeforeImage = bytes <= MaxBeforeImageBytes ? image : null,
            BeforeImageBytes = bytes,
            At = now,
            Epoch = epoch,
            Ttl = ttl,
        };
    }

    public static string EntryId(string migration, int step, string documentId, string partitionKeyText) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(
            migration + "\n" + step.ToString(CultureInfo.InvariantCulture) + "\n" + documentId + "\n" + partitionKeyText)), 0, 16).ToLowerInvariant();
}

internal static class KeyObjects
{
    /// <summary>A document key (<see cref="DocumentKey.Of"/>) without its ETag.</summary>
    public static JObject WithoutETag(this JObject key)
    {
        key.Remove("_etag");
        return key;
    }
}
