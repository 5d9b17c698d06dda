using System.Security.Cryptography;
using System.Text;
using CosmosMigrations.Documents;
using CosmosMigrations.Operations;

namespace CosmosMigrations.Journal;

/// <summary>The before-image of one document for one step of a migration, as the journal keeps it:
/// the fields the step changed (their old and new values), or, when a transform rewrote the
/// document, the whole document before and a hash of the document after. It knows how to tell
/// whether a document still holds what the step wrote, and how to put the old values back.</summary>
internal sealed partial class JournalEntry
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

    // Building: from a planned edit, and merged with an entry already in the journal.

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

    /// <summary>SHA-256 of a document's content (<see cref="CanonicalJson"/>): system properties aside,
    /// independent of property order and of how a number is written.</summary>
    public static string ContentHash(JObject document) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(CanonicalJson.Of(document)))).ToLowerInvariant();
}
