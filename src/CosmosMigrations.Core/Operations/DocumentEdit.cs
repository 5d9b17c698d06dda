using CosmosMigrations.Documents;

namespace CosmosMigrations.Operations;

/// <summary>The change to one document that the operations of a pass build up: a working copy,
/// and the smallest patch that turns the stored document into it. Operations record the SQL guard
/// that must still hold for their change to be right (it becomes the patch's filter predicate) and
/// whether they computed a value from the document (then the write is also conditioned on the
/// ETag, and retried from a fresh read on conflict).</summary>
internal sealed class DocumentEdit
{
    /// <summary>Cosmos DB accepts at most 10 operations in one patch; more become a replace.</summary>
    public const int MaxPatchOperations = 10;

    private static readonly string[] SystemProperties = { "_rid", "_self", "_etag", "_attachments", "_ts" };

    private readonly List<PatchOperation> _patch = new();
    private readonly List<string> _guards = new();

    public DocumentEdit(JObject original)
    {
        Original = original;
        Current = (JObject)original.DeepClone();
        Current.Remove("_lsn");
    }

    /// <summary>The document as read. Never modified.</summary>
    public JObject Original { get; }

    /// <summary>The document with every change so far.</summary>
    public JObject Current { get; private set; }

    public IReadOnlyList<PatchOperation> Patch => _patch;

    public IReadOnlyList<string> Guards => _guards;

    /// <summary>A transform replaced the document: the write is a whole-document replace.</summary>
    public bool ReplacesDocument { get; private set; }

    /// <summary>A value was computed from the document: condition the write on its ETag.</summary>
    public bool DerivesFromDocument { get; private set; }

    public bool Changed => ReplacesDocument || _patch.Count > 0;

    public bool NeedsReplace => ReplacesDocument || _patch.Count > MaxPatchOperations;

    public string Id => (string?)Original["id"] ?? string.Empty;

    public string? ETag => (string?)Original["_etag"];

    public JToken? Get(FieldPath path) => DocumentJson.Get(Current, path);

    public bool IsDefined(FieldPath path) => Get(path) is not null;

    public void MarkDerived() => DerivesFromDocument = true;

    /// <summary>Sets a field, creating missing parent objects. A parent that exists but is not an
    /// object (a string, say) cannot hold the field: that is the document's failure.</summary>
    public void Set(FieldPath path, JToken value, string? guard)
    {
        JObject parent = Current;
        for (var i = 0; i < path.Segments.Count - 1; i++)
        {
            var segment = path.Segments[i];
            if (!parent.TryGetValue(segment, out var child))
            {
                // Cosmos DB patch cannot create parents recursively: set the first missing one whole.
                var subtree = value.DeepClone();
                for (var j = path.Segments.Count - 1; j > i; j--)
                {
                    subtree = new JObject { [path.Segments[j]] = subtree };
                }

                parent[segment] = subtree;
                Record(PatchOperation.Set(Pointer(path, i + 1), subtree.DeepClone()), guard);
                return;
            }

            if (child is not JObject childObject)
            {
                throw new DocumentOperationException(
                    $"cannot set '{path}': '{string.Join(".", Take(path, i + 1))}' is {Describe(child)}, not an object");
            }

            parent = childObject;
        }

        var last = path.Segments[path.Segments.Count - 1];
        if (parent.TryGetValue(last, out var existing) && JToken.DeepEquals(existing, value))
        {
            return;
        }

        parent[last] = value.DeepClone();
        Record(PatchOperation.Set(path.ToJsonPointer(), value.DeepClone()), guard);
    }

    /// <summary>Removes a field if it is there; returns whether it was.</summary>
    public bool Remove(FieldPath path, string? guard)
    {
        JToken? parent = Current;
        for (var i = 0; i < path.Segments.Count - 1; i++)
        {
            if (parent is not JObject obj || !obj.TryGetValue(path.Segments[i], out parent))
            {
                return false;
            }
        }

        if (parent is not JObject container || !container.Remove(path.Segments[path.Segments.Count - 1]))
        {
            return false;
        }

        Record(PatchOperation.Remove(path.ToJsonPointer()), guard);
        return true;
    }

    /// <summary>Takes a transform's result as the new document. The id and system properties stay
    /// those of the stored document.</summary>
    public void ReplaceWith(JObject document)
    {
        document = (JObject)document.DeepClone();
        foreach (var name in SystemProperties)
        {
            document.Remove(name);
            if (Original.TryGetValue(name, out var value))
            {
                document[name] = value.DeepClone();
            }
        }

        document.Remove("_lsn");
        if (JToken.DeepEquals(document, Current))
        {
            return;
        }

        Current = document;
        ReplacesDocument = true;
        DerivesFromDocument = true;
    }

    private void Record(PatchOperation operation, string? guard)
    {
        _patch.Add(operation);
        if (guard is not null && !_guards.Contains(guard))
        {
            _guards.Add(guard);
        }
    }

    private static string Pointer(FieldPath path, int count) =>
        "/" + string.Join("/", Take(path, count).ConvertAll(s => s.Replace("~", "~0").Replace("/", "~1")));

    private static List<string> Take(FieldPath path, int count)
    {
        var list = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            list.Add(path.Segments[i]);
        }

        return list;
    }

    internal static string Describe(JToken token) => token.Type switch
    {
        JTokenType.String => "a string",
        JTokenType.Integer or JTokenType.Float => "a number",
        JTokenType.Boolean => "a boolean",
        JTokenType.Array => "an array",
        JTokenType.Null => "null",
        JTokenType.Object => "an object",
        _ => token.Type.ToString(),
    };
}

/// <summary>A document that an operation cannot change (the run records it, or fails).</summary>
internal sealed class DocumentOperationException : Exception
{
    public DocumentOperationException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}

/// <summary>A document that changed since the change being reverted was made (an undo leaves it
/// alone, counted as a conflict, unless forced).</summary>
internal sealed class DocumentConflictException : Exception
{
    public DocumentConflictException(string message)
        : base(message)
    {
    }
}
