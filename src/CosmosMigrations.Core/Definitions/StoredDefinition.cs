using System.Collections;
using System.Collections.Specialized;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;

namespace CosmosMigrations.Definitions;

/// <summary>What an inline migration (-Operation) or a backfill was started with, kept in its
/// tracking document, so that a stopped one resumes by name (<c>Start-SchemaMigration -Name</c>,
/// or its status piped in) without the original command. A migration from a file keeps its path
/// instead. A script-block transform cannot be stored: <see cref="Transform"/> records that there
/// was one, and a resume asks for the original command.</summary>
internal sealed class StoredDefinition
{
    public const string InlineKind = "inline";
    public const string BackfillKind = "backfill";

    /// <summary>inline (Start-SchemaMigration -Operation) or backfill (Invoke-Backfill).</summary>
    [JsonProperty("kind")] public string Kind { get; set; } = InlineKind;

    [JsonProperty("description", NullValueHandling = NullValueHandling.Ignore)] public string? Description { get; set; }

    [JsonProperty("filter", NullValueHandling = NullValueHandling.Ignore)] public string? Filter { get; set; }

    /// <summary>Inline: the operations as given, each a table of plain values (a transform's script
    /// block left out).</summary>
    [JsonProperty("operations", NullValueHandling = NullValueHandling.Ignore)] public JArray? Operations { get; set; }

    /// <summary>Backfill: -Set, -Unset and -Rename.</summary>
    [JsonProperty("set", NullValueHandling = NullValueHandling.Ignore)] public JObject? Set { get; set; }

    [JsonProperty("unset", NullValueHandling = NullValueHandling.Ignore)] public List<string>? Unset { get; set; }

    [JsonProperty("rename", NullValueHandling = NullValueHandling.Ignore)] public JObject? Rename { get; set; }

    /// <summary>It had a script-block transform, which is code and is not stored.</summary>
    [JsonProperty("transform", NullValueHandling = NullValueHandling.Ignore)] public bool? Transform { get; set; }

    internal static StoredDefinition FromInline(string? description, IReadOnlyList<object?> operations, string? filter)
    {
        var stored = new StoredDefinition { Kind = InlineKind, Description = description, Filter = filter, Operations = new JArray() };
        foreach (var operation in operations)
        {
            if (operation is not IDictionary table)
            {
                continue;
            }

            var stepJson = new JObject();
            foreach (DictionaryEntry entry in table)
            {
                var key = Convert.ToString(entry.Key, CultureInfo.InvariantCulture) ?? string.Empty;
                if (entry.Value is TransformFunction)
                {
                    stored.Transform = true;
                    continue;
                }

                stepJson[key] = PlainJson.FromObject(entry.Value, key);
            }

            stored.Operations.Add(stepJson);
        }

        return stored;
    }

    internal static StoredDefinition FromBackfill(string? filter, IDictionary? set, IEnumerable<string>? unset, IDictionary? rename, bool transform) => new()
    {
        Kind = BackfillKind,
        Filter = filter,
        Set = set is null || set.Count == 0 ? null : (JObject)PlainJson.FromObject(set, "-Set"),
        Unset = unset?.ToList() is { Count: > 0 } fields ? fields : null,
        Rename = rename is null || rename.Count == 0 ? null : (JObject)PlainJson.FromObject(rename, "-Rename"),
        Transform = transform ? true : null,
    };

    /// <summary>The migration again, for a resume; a stored transform cannot be rebuilt.</summary>
    public MigrationDefinition ToDefinition(string name, string container)
    {
        if (Transform == true)
        {
            var command = Kind == BackfillKind ? "Invoke-Backfill" : "Start-SchemaMigration -Operation";
            var parameter = Kind == BackfillKind ? "-ScriptBlock" : "Transform script block";
            throw new MigrationException(MigrationErrorKind.InvalidState, "TransformNotStored",
                $"Migration '{name}' has a script-block transform, which is code and is not kept in its tracking document, so it cannot resume by name.",
                name,
                $"Run the original {command} again with the same name and its {parameter}: it resumes from the checkpoint.");
        }

        if (Kind == BackfillKind)
        {
            return DefinitionParser.Backfill(name, container, Filter, ToTable(Set), Unset, ToTable(Rename), null);
        }

        var operations = (Operations ?? new JArray()).Select(o => (object?)PlainJson.ToPlain(o)).ToList();
        return new DefinitionParser().ParseInline(name, container, Description, operations, Filter);
    }

    /// <summary>In the stored order, which was the original table's: a backfill's operations
    /// follow it, and so does its checksum.</summary>
    private static OrderedDictionary? ToTable(JObject? json)
    {
        if (json is null)
        {
            return null;
        }

        var table = new OrderedDictionary(StringComparer.OrdinalIgnoreCase);
        foreach (var property in json.Properties())
        {
            table[property.Name] = PlainJson.ToPlain(property.Value);
        }

        return table;
    }
}
