namespace CosmosMigrations.Journal;

/// <summary>The indexing policy before an AddIndex step changed it, and as the service kept it after.</summary>
internal sealed class IndexImage
{
    [JsonProperty("step")] public int Step { get; set; }

    [JsonProperty("before")] public JObject Before { get; set; } = new();

    /// <summary>Null only if the run stopped between recording the before-image and the change.</summary>
    [JsonProperty("after")] public JObject? After { get; set; }
}
