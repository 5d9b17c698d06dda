using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using CosmosMigrations.Documents;
using CosmosMigrations.Operations;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Journal;

/// <summary>What a restore would find in a document: still what the migration wrote, already what
/// it was before, or something else (changed since: a conflict).</summary>
public enum RestoreState
{
    Restorable,
    Restored,
    Changed,
}

/// <summary>One field a migration step changed in one document: its value before (absent when the
/// field was not there) and after (absent when the step removed it). For a removed field, where it
/// stood among its siblings, so that a restore puts it back in place, byte for byte.</summary>
public sealed class FieldChange
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

/// <summary>The before-image of one document for one step of a migration, as the journal keeps it:
/// the fields the step changed (their old and new values), or, when a transform rewrote the
/// document, the whole document before and a hash of the document after. It knows how to tell
/// whether a document still holds what the step wrote, and how to put the old values back.</summary>
public sealed class JournalEntry
{
    private const int MaxPatchOperations = DocumentEdit.MaxPatchOperations;

    private JournalEntry(string id, JObject key, IReadOnlyList<FieldChange>? changes, JObject? document, string? afterHash)
    {
        Id = id;
        Key = key;
        Changes = changes;
        Document = document;
        AfterHash = afterHash;
    }

    /// <summary>The document's id (also the entry's id).</summary>
    public string Id { get; }

    /// <summary>The document's partition key values, at their paths.</summary>
    public JObject Key { get; }

    /// <summary>The changed fields (in the order the step wrote them), or null for a whole document.</summary>
    public IReadOnlyList<FieldChange>? Changes { get; }

    /// <summary>The whole document before the step (system properties aside), when a transform replaced it.</summary>
    public JObject? Document { get; }

    /// <summary>The hash of the document the transform wrote (<see cref="ContentHash"/>).</summary>
    public string? AfterHash { get; }

    public bool IsWhole => Document is not null;

    // ---------------------------------------------------------------------------------------
    // Building: from a planned edit, and merged with an entry already in the journal
    // ---------------------------------------------------------------------------------------

    /// <summary>The before-image of <paramref name="edit"/> (which must change the document).</summary>
    public static JournalEntry FromEdit(DocumentEdit edit, IReadOnlyList<FieldPath> partitionKeyPaths)
    {
        var key = KeyOf(edit.Original, partitionKeyPaths);
        if (edit.ReplacesDocument)
        {
            return Whole(edit.Id, key, edit.Original, edit.Current);
        }

        return FromStates(edit.Id, key, edit.Original, edit.Current, edit.Patch.Select(p => FieldPath.FromJsonPointer(p.Path)));
    }

    /// <summary>The entry to write when the journal already holds <paramref name="existing"/> for
    /// this document and step (a resumed, repeated or retried run). If the document still holds what
    /// the earlier write left, that write happened and the earlier before-image is the true one: it
    /// is kept, and only the new "after" is taken. Otherwise the earlier write never happened (or
    /// the document changed since): the document as read now is the before-image.</summary>
    public static JournalEntry Merge(JournalEntry existing, DocumentEdit edit, IReadOnlyList<FieldPath> partitionKeyPaths)
    {
        var next = FromEdit(edit, partitionKeyPaths);
        if (existing.StateOf(edit.Original) != RestoreState.Restorable)
        {
            return next;
        }

        // The document before both writes: the earlier before-image applied to what was read.
        var original = existing.IsWhole ? existing.Document! : existing.RestoreOnto(edit.Original, force: true);
        if (existing.IsWhole || next.IsWhole)
        {
            return Whole(edit.Id, next.Key, original, edit.Current);
        }

        var paths = existing.Changes!.Select(c => c.Path).Concat(next.Changes!.Select(c => c.Path));
        return FromStates(edit.Id, next.Key, original, edit.Current, paths);
    }

    private static JournalEntry Whole(string id, JObject key, JObject before, JObject after) =>
        new(id, key, null, DocumentJson.WithoutSystemProperties(before), ContentHash(after));

    /// <summary>The changes at <paramref name="paths"/> between two states of a document. A path
    /// inside another recorded path is covered by it; a path whose value did not change is left out.</summary>
    private static JournalEntry FromStates(string id, JObject key, JObject before, JObject after, IEnumerable<FieldPath> paths)
    {
        var distinct = new List<FieldPath>();
        foreach (var path in paths)
        {
            if (!distinct.Contains(path))
            {
                distinct.Add(path);
            }
        }

        var changes = new List<FieldChange>();
        foreach (var path in distinct.Where(p => !distinct.Any(p.IsBelow)))
        {
            var old = DocumentJson.Get(before, path);
            var now = DocumentJson.Get(after, path);
            if (Same(old, now))
            {
                continue;
            }

            if (old is not null && now is null)
            {
                // Removed: remember where it stood, to put it back in the same place.
                var parent = (JObject)old.Parent!.Parent!;
                var names = parent.Properties().Select(p => p.Name).ToList();
                var index = names.IndexOf(path.Segments[path.Segments.Count - 1]);
                changes.Add(new FieldChange(path, old.DeepClone(), null, index, index > 0 ? names[index - 1] : null));
            }
            else
            {
                changes.Add(new FieldChange(path, old?.DeepClone(), now?.DeepClone()));
            }
        }

        return new JournalEntry(id, key, changes, null, null);
    }

    /// <summary>The partition key values of a document, at their paths (absent stays absent).</summary>
    public static JObject KeyOf(JObject document, IReadOnlyList<FieldPath> partitionKeyPaths)
    {
        var key = new JObject();
        foreach (var path in partitionKeyPaths)
        {
            var value = DocumentJson.Get(document, path);
            if (value is null)
            {
                continue;
            }

            var parent = key;
            for (var i = 0; i < path.Segments.Count - 1; i++)
            {
                if (parent[path.Segments[i]] is not JObject child)
                {
                    child = new JObject();
                    parent[path.Segments[i]] = child;
                }

                parent = child;
            }

            parent[path.Segments[path.Segments.Count - 1]] = value.DeepClone();
        }

        return key;
    }

    // ---------------------------------------------------------------------------------------
    // Restoring
    // ---------------------------------------------------------------------------------------

    /// <summary>Whether <paramref name="document"/> (as read, system properties aside) still holds
    /// what the step wrote, already holds what was there before, or neither.</summary>
    public RestoreState StateOf(JObject document)
    {
        if (IsWhole)
        {
            var hash = ContentHash(document);
            return hash == AfterHash ? RestoreState.Restorable : hash == ContentHash(Document!) ? RestoreState.Restored : RestoreState.Changed;
        }

        if (Changes!.All(c => Same(DocumentJson.Get(document, c.Path), c.After)))
        {
            return RestoreState.Restorable;
        }

        return Changes!.All(c => Same(DocumentJson.Get(document, c.Path), c.Before)) ? RestoreState.Restored : RestoreState.Changed;
    }

    /// <summary>Why a document is a conflict: the first field that no longer holds what the step wrote.</summary>
    public string DescribeChange(JObject document)
    {
        if (IsWhole)
        {
            return "changed since the migration rewrote it (its content is no longer what the migration wrote)";
        }

        var change = Changes!.First(c => !Same(DocumentJson.Get(document, c.Path), c.After));
        var now = DocumentJson.Get(document, change.Path);
        return $"changed since the migration: '{change.Path}' is {Show(now)}, the migration left it {Show(change.After)}";
    }

    /// <summary>Whether the restore can be sent without reading the document first: a patch whose
    /// filter predicate checks, on the service, that every field still holds what the step wrote.
    /// (A removed field goes back to its place only by a replace, which needs the whole document.)</summary>
    public bool CanRestoreUnread =>
        !IsWhole && Changes!.Count <= MaxPatchOperations && Changes.All(c => !c.Removed && SqlEquals(c.Path, c.After!) is not null);

    /// <summary>The document as the step left it, as far as the entry knows: its id, partition key
    /// and the values the step wrote (enough for a guarded patch).</summary>
    public JObject AsWritten()
    {
        var document = (JObject)Key.DeepClone();
        document.AddFirst(new JProperty("id", Id));
        foreach (var change in Changes ?? Array.Empty<FieldChange>())
        {
            if (change.After is not null)
            {
                SetAt(document, change.Path, change.After.DeepClone());
            }
        }

        return document;
    }

    /// <summary>Plans the restore of the document that <paramref name="edit"/> holds: a patch
    /// guarded by a filter predicate (every field still as the step wrote it) when no field needs
    /// putting back in place, otherwise a replace with the old values (conditioned on the ETag by the
    /// writer). With <paramref name="force"/>, whatever the document holds now is overwritten at the
    /// fields the step changed (the whole document for a transform).</summary>
    public void PlanRestore(DocumentEdit edit, bool force)
    {
        if (IsWhole)
        {
            edit.ReplaceWith(Document!);
            return;
        }

        if (!force && Changes!.Count <= MaxPatchOperations && Changes.All(c => !c.Removed))
        {
            var guards = Changes.Select(c => SqlEquals(c.Path, c.After!)).ToList();
            var guard = guards.All(g => g is not null) ? string.Join(" AND ", guards) : null;
            edit.MarkDerived();
            foreach (var change in Changes)
            {
                if (change.Before is null)
                {
                    edit.Remove(change.Path, guard);
                }
                else
                {
                    edit.Set(change.Path, change.Before, guard);
                }
            }

            return;
        }

        edit.ReplaceWith(RestoreOnto(edit.Current, force));
    }

    /// <summary>A copy of <paramref name="document"/> with every changed field back to its value
    /// before the step: added fields removed, changed ones set back in place, removed ones inserted
    /// where they stood (in their original order, after the same neighbour).</summary>
    public JObject RestoreOnto(JObject document, bool force)
    {
        var restored = (JObject)document.DeepClone();
        foreach (var change in Changes!.Where(c => !c.Removed).Reverse())
        {
            var parent = ParentOf(restored, change.Path, create: change.Before is not null && force);
            var name = change.Path.Segments[change.Path.Segments.Count - 1];
            if (parent is null)
            {
                continue;
            }

            if (change.Before is null)
            {
                parent.Remove(name);
            }
            else if (parent.Property(name) is { } property)
            {
                property.Value = change.Before.DeepClone();
            }
            else
            {
                parent.Add(new JProperty(name, change.Before.DeepClone()));
            }
        }

        // Removed fields go back in the order they stood, each after its former neighbour.
        foreach (var change in Changes!.Where(c => c.Removed).OrderBy(c => c.Path.Segments.Count).ThenBy(c => c.Index))
        {
            var parent = ParentOf(restored, change.Path, create: true);
            var name = change.Path.Segments[change.Path.Segments.Count - 1];
            if (parent is null)
            {
                continue;
            }

            // Forced over a field written back since: it takes its old value and its old place.
            parent.Property(name)?.Remove();
            var property = new JProperty(name, change.Before!.DeepClone());
            if (change.Previous is null)
            {
                parent.AddFirst(property);
            }
            else if (parent.Property(change.Previous) is { } neighbour)
            {
                neighbour.AddAfterSelf(property);
            }
            else
            {
                var siblings = parent.Properties().ToList();
                var at = Math.Min(change.Index ?? siblings.Count, siblings.Count);
                if (at == siblings.Count)
                {
                    parent.Add(property);
                }
                else
                {
                    siblings[at].AddBeforeSelf(property);
                }
            }
        }

        return restored;
    }

    private static JObject? ParentOf(JObject document, FieldPath path, bool create)
    {
        var parent = document;
        for (var i = 0; i < path.Segments.Count - 1; i++)
        {
            if (parent[path.Segments[i]] is JObject child)
            {
                parent = child;
                continue;
            }

            if (!create || parent[path.Segments[i]] is not null)
            {
                return null;
            }

            child = new JObject();
            parent[path.Segments[i]] = child;
            parent = child;
        }

        return parent;
    }

    private static void SetAt(JObject document, FieldPath path, JToken value)
    {
        var parent = ParentOf(document, path, create: true)!;
        parent[path.Segments[path.Segments.Count - 1]] = value;
    }

    // ---------------------------------------------------------------------------------------
    // Values
    // ---------------------------------------------------------------------------------------

    /// <summary>Absent equals absent; JSON values compare by content (numbers by value).</summary>
    private static bool Same(JToken? a, JToken? b) => a is null ? b is null : b is not null && JToken.DeepEquals(a, b);

    private static string Show(JToken? value) => value is null ? "absent" : Truncate(value.ToString(Newtonsoft.Json.Formatting.None));

    private static string Truncate(string text) => text.Length > 80 ? text.Substring(0, 80) + "…" : text;

    /// <summary>The Cosmos SQL condition "the field holds this value", or null when equality cannot
    /// be tested exactly in SQL (objects, arrays, numbers beyond what a double holds exactly).</summary>
    internal static string? SqlEquals(FieldPath path, JToken value) =>
        value.Type == JTokenType.Null ? $"IS_NULL({path.ToSql()})"
        : SqlValue(value) is { } literal ? $"{path.ToSql()} = {literal}"
        : null;

    /// <summary>A value as a Cosmos SQL literal for an equality test, or null (see <see cref="SqlEquals"/>).</summary>
    internal static string? SqlValue(JToken value)
    {
        switch (value.Type)
        {
            case JTokenType.String:
                return FieldPath.SqlLiteral((string)value!);
            case JTokenType.Boolean:
                return (bool)value ? "true" : "false";
            case JTokenType.Integer when value is JValue { Value: long l } && Math.Abs(l) <= (1L << 53):
                return l.ToString(CultureInfo.InvariantCulture);
            case JTokenType.Float when value is JValue { Value: double d } && !double.IsNaN(d) && !double.IsInfinity(d):
                var text = d.ToString("R", CultureInfo.InvariantCulture);
                return text.IndexOfAny(new[] { 'E', 'e' }) >= 0 ? null : text;
            default:
                return null;
        }
    }

    /// <summary>SHA-256 of a document's content, system properties aside, independent of property
    /// order and of how a number is written (1 and 1.0 are one number to the service).</summary>
    public static string ContentHash(JObject document)
    {
        var text = new StringBuilder();
        WriteCanonical(DocumentJson.WithoutSystemProperties(document), text);
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()))).ToLowerInvariant();
    }

    private static void WriteCanonical(JToken token, StringBuilder text)
    {
        switch (token)
        {
            case JObject obj:
                text.Append('{');
                foreach (var property in obj.Properties().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    text.Append(new JValue(property.Name).ToString(Newtonsoft.Json.Formatting.None)).Append(':');
                    WriteCanonical(property.Value, text);
                    text.Append(',');
                }

                text.Append('}');
                break;
            case JArray array:
                text.Append('[');
                foreach (var item in array)
                {
                    WriteCanonical(item, text);
                    text.Append(',');
                }

                text.Append(']');
                break;
            case JValue { Type: JTokenType.Integer or JTokenType.Float } number:
                text.Append(Convert.ToDouble(number.Value, CultureInfo.InvariantCulture).ToString("R", CultureInfo.InvariantCulture));
                break;
            default:
                text.Append(token.ToString(Newtonsoft.Json.Formatting.None));
                break;
        }
    }

    // ---------------------------------------------------------------------------------------
    // Stored form
    // ---------------------------------------------------------------------------------------

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
