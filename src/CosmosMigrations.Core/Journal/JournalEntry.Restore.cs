using CosmosMigrations.Documents;
using CosmosMigrations.Operations;

namespace CosmosMigrations.Journal;

/// <summary>Restoring: whether a document still holds what the step wrote, and putting the old
/// values back (a guarded patch, or the whole document).</summary>
internal sealed partial class JournalEntry
{
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
        !IsWhole && Changes!.Count <= MaxPatchOperations && Changes.All(c => !c.Removed && SqlEquality.Condition(c.Path, c.After!) is not null);

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
            var guards = Changes.Select(c => SqlEquality.Condition(c.Path, c.After!)).ToList();
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

    /// <summary>Absent equals absent; JSON values compare by content (numbers by value).</summary>
    private static bool Same(JToken? a, JToken? b) => a is null ? b is null : b is not null && JToken.DeepEquals(a, b);

    /// <summary>Whether two entries record the same changes (paths and values, in order).</summary>
    internal static bool SameChanges(IReadOnlyList<FieldChange> a, IReadOnlyList<FieldChange> b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        for (var i = 0; i < a.Count; i++)
        {
            if (!a[i].Path.Equals(b[i].Path) || !Same(a[i].Before, b[i].Before) || !Same(a[i].After, b[i].After)
                || a[i].Index != b[i].Index || a[i].Previous != b[i].Previous)
            {
                return false;
            }
        }

        return true;
    }

    private static string Show(JToken? value) => value is null ? "absent" : Truncate(value.ToString(Newtonsoft.Json.Formatting.None));

    private static string Truncate(string text) => text.Length > 80 ? text.Substring(0, 80) + "…" : text;
}
