using CosmosMigrations.Documents;

namespace CosmosMigrations.Journal;

/// <summary>One field a migration step changed in one document: its value before (absent when the
/// field was not there) and after (absent when the step removed it). For a removed field, where it
/// stood among its siblings, so that a restore puts it back in place, byte for byte.</summary>
internal sealed class FieldChange
{
    public FieldChange(FieldPath path, JToken? before, JToken? after, int? index = null, string? previous = null)
    {
        Path = path;
        Before = before;
        After = after;
        Index = index;
        Previous = previous;
    }

    public FieldPath Path { get; }

    /// <summary>The value before the step; null when the field was absent (JSON null is a JValue).</summary>
    public JToken? Before { get; }

    /// <summary>The value the step wrote; null when the step removed the field.</summary>
    public JToken? After { get; }

    /// <summary>For a removed field: its position in its parent object before the step.</summary>
    public int? Index { get; }

    /// <summary>For a removed field: the name of the property just before it (null when it was first).</summary>
    public string? Previous { get; }

    public bool Removed => Before is not null && After is null;
}
