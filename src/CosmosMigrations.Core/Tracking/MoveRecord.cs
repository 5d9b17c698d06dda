namespace CosmosMigrations.Tracking;

/// <summary>What a move's tracking document holds beside a migration's (its "move" field): the
/// target, the new key, the filter, whether the move created the target, and the last verification.
/// The tracking document's own <c>phase</c> is the move's phase.</summary>
internal sealed class MoveRecord
{
    public const string Field = "move";

    [JsonProperty("source")] public string Source { get; set; } = "";

    [JsonProperty("target")] public string Target { get; set; } = "";

    [JsonProperty("partitionKey")] public List<string> PartitionKey { get; set; } = new();

    [JsonProperty("filter", NullValueHandling = NullValueHandling.Ignore)] public string? Filter { get; set; }

    /// <summary>The -Operation hashtables as data (Complete-ContainerMove applies them again to verify).</summary>
    [JsonProperty("operations", NullValueHandling = NullValueHandling.Ignore)] public JArray? Operations { get; set; }

    [JsonProperty("createdTarget")] public bool CreatedTarget { get; set; }

    /// <summary>How the source's deletes reach the target (<c>Moving/MoveDeleteModes</c>): decided
    /// once, when the move first starts, by asking the source for its all-versions-and-deletes feed.</summary>
    [JsonProperty("deletes", NullValueHandling = NullValueHandling.Ignore)] public string? Deletes { get; set; }

    /// <summary>Documents the all-versions-and-deletes feed deleted from the target before the cut-over.</summary>
    [JsonProperty("deletesCarried", NullValueHandling = NullValueHandling.Ignore)] public long? DeletesCarried { get; set; }

    [JsonProperty("deletesReconciled", NullValueHandling = NullValueHandling.Ignore)] public long? DeletesReconciled { get; set; }

    [JsonProperty("digest", NullValueHandling = NullValueHandling.Ignore)] public string? Digest { get; set; }

    [JsonProperty("verifiedDocuments", NullValueHandling = NullValueHandling.Ignore)] public long? VerifiedDocuments { get; set; }

    /// <summary>With Complete-ContainerMove -Sample: how many documents were compared (no digest then).</summary>
    [JsonProperty("sampled", NullValueHandling = NullValueHandling.Ignore)] public int? Sampled { get; set; }

    /// <summary>The last two samples of the tracking document's <c>scanned</c>, a few seconds apart
    /// (<c>Moving/MoveLiveStatus</c>): the copy's rate, readable by any process.</summary>
    [JsonProperty("rateSamples", NullValueHandling = NullValueHandling.Ignore)] public List<RateSample>? RateSamples { get; set; }

    public static MoveRecord? Of(TrackingDocument? document) =>
        document?.Extra is { } extra && extra.TryGetValue(Field, out var token) && token is JObject obj ? obj.ToObject<MoveRecord>() : null;

    /// <summary>Why the move cannot be undone now, or null (shown as the status's UndoBlocker).</summary>
    public string? UndoBlocker(TrackingDocument tracked) =>
        MovePhase.Of(tracked) == MovePhase.Completed ? $"the move is completed: '{Target}' was verified and is the container to use" : null;

    /// <summary>A schema migration command (Start-SchemaMigration, Invoke-Backfill, Reset-SchemaMigration)
    /// given a move's name: refused, since its run would rewrite the move's status (and write to
    /// its source) without its target.</summary>
    public static Errors.MigrationException IsAMove(string name, MoveRecord record, string command) =>
        new(Errors.MigrationErrorKind.InvalidState, "MigrationIsAMove",
            $"'{name}' is the move of '{record.Source}' to '{record.Target}' by {string.Join(", ", record.PartitionKey)}: {command} does not run or change a move.", name,
            $"Resume it with Start-ContainerMove -Name {name} -Container {record.Source} -Target {record.Target} -PartitionKey {string.Join(",", record.PartitionKey)}; cut over with Complete-ContainerMove; remove it before the cut-over with Undo-SchemaMigration.");

    public void WriteTo(TrackingDocument document)
    {
        document.Extra ??= new Dictionary<string, JToken>();
        document.Extra[Field] = JObject.FromObject(this);
    }
}

/// <summary>The documents a move's copy had read from the source's change feed (all of its
/// workers), at a moment (ms since the epoch).</summary>
internal sealed class RateSample
{
    [JsonProperty("at")] public long At { get; set; }

    [JsonProperty("scanned")] public long Scanned { get; set; }
}

/// <summary>The phases of a move, as its tracking document's <c>phase</c> and its status show them.</summary>
internal static class MovePhase
{
    public const string Copying = "copying";
    public const string Following = "following";
    public const string Copied = "copied";
    public const string Completing = "completing";
    public const string Completed = "completed";

    /// <summary>Undo-SchemaMigration is removing the target and the move's state.</summary>
    public const string Undoing = "undoing";

    /// <summary>The phase to show: a running move without a phase yet is copying; a move whose
    /// copy run completed is copied until Complete-ContainerMove verified it.</summary>
    public static string? Of(TrackingDocument document)
    {
        if (MoveRecord.Of(document) is null)
        {
            return document.Phase;
        }

        return document.Phase ?? (document.Status == TrackingStatus.Completed ? Copied : Copying);
    }

    /// <summary>The status to show: "copied" for a move whose copy run ended at zero lag.</summary>
    public static string StatusOf(TrackingDocument document) =>
        MoveRecord.Of(document) is not null && document.Status == TrackingStatus.Completed && Of(document) != Completed ? Copied : document.Status;
}
