using CosmosMigrations.Documents;

namespace CosmosMigrations.Journal;

/// <summary>The entry as the journal stores it, and back.</summary>
internal sealed partial class JournalEntry
{
    /// <summary>The entry as stored: identity and scope from <paramref name="scope"/>, then the key
    /// and the before-image.</summary>
    public JObject ToJson(JournalScope scope, int step, int? ttl)
    {
        var json = new JObject
        {
            ["id"] = Id,
            ["pk"] = scope.PartitionKeyFor(step, Key),
            ["journal"] = scope.JournalId,
            ["migration"] = scope.Migration,
            ["container"] = scope.Container,
            ["step"] = step,
            ["key"] = Key.DeepClone(),
        };
        if (IsWhole)
        {
            json["document"] = Document!.DeepClone();
            json["afterHash"] = AfterHash;
        }
        else
        {
            json["changes"] = ChangesJson();
        }

        if (ttl is { } seconds)
        {
            json["ttl"] = seconds;
        }

        return json;
    }

    /// <summary>The changed fields as stored (path, before, after, and where a removed field stood).</summary>
    public JArray ChangesJson() => new(Changes!.Select(ChangeToJson));

    private static JObject ChangeToJson(FieldChange change)
    {
        var json = new JObject { ["path"] = change.Path.ToJsonPointer() };
        if (change.Before is not null)
        {
            json["before"] = change.Before.DeepClone();
        }

        if (change.After is not null)
        {
            json["after"] = change.After.DeepClone();
        }

        if (change.Index is { } index)
        {
            json["at"] = index;
            if (change.Previous is not null)
            {
                json["prev"] = change.Previous;
            }
        }

        return json;
    }

    public static JournalEntry FromJson(JObject json)
    {
        var id = (string?)json["id"] ?? throw new FormatException("A journal entry has no id.");
        var key = json["key"] as JObject ?? new JObject();
        if (json["document"] is JObject document)
        {
            return new JournalEntry(id, key, null, document, (string?)json["afterHash"]);
        }

        var changes = (json["changes"] as JArray ?? new JArray()).OfType<JObject>().Select(c => new FieldChange(
            FieldPath.FromJsonPointer((string?)c["path"] ?? ""),
            c.TryGetValue("before", out var before) ? before : null,
            c.TryGetValue("after", out var after) ? after : null,
            (int?)c["at"],
            (string?)c["prev"])).ToList();
        return new JournalEntry(id, key, changes, null, null);
    }
}
