using CosmosMigrations.Documents;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Moving;

/// <summary>The partition key a move gives its target: one path (Hash), or two or three
/// (hierarchical, MultiHash), each as the service writes it (<c>/tenantId</c>, <c>/address/city</c>).
/// A document's key is read as the target will place it; a missing value is a missing key.</summary>
internal sealed class MoveKey
{
    private MoveKey(IReadOnlyList<string> paths)
    {
        Paths = paths;
        Reader = new PartitionKeyReader(paths);
    }

    public IReadOnlyList<string> Paths { get; }

    public PartitionKeyReader Reader { get; }

    public bool Hierarchical => Paths.Count > 1;

    public override string ToString() => string.Join(", ", Paths);

    /// <summary>Checks the paths as the service would (and a few mistakes it would not name
    /// clearly): 1 to 3 paths, each '/' then non-empty segments, no wildcard, no system property,
    /// no repeats; then refuses the source's own key (nothing would move).</summary>
    public static MoveKey Parse(IReadOnlyList<string>? paths, IReadOnlyList<string>? sourcePaths = null)
    {
        var given = (paths ?? Array.Empty<string>()).Select(p => p?.Trim() ?? "").ToList();
        if (given.Count is < 1 or > 3)
        {
            throw Invalid(string.Join(",", given), $"A partition key has one path, or two or three for a hierarchical key; {given.Count} were given.");
        }

        foreach (var path in given)
        {
            if (!path.StartsWith("/", StringComparison.Ordinal) || path.Length < 2)
            {
                throw Invalid(path, $"'{path}' is not a partition key path: a path starts with '/' and names a property, e.g. /tenantId or /address/city.");
            }

            var segments = path.Substring(1).Split('/');
            if (segments.Any(s => s.Length == 0))
            {
                throw Invalid(path, $"'{path}' is not a partition key path: it has an empty segment (a doubled or trailing '/').");
            }

            if (segments.Any(s => s is "*" or "?" || s.Contains('[') || s.Contains(']')))
            {
                throw Invalid(path, $"'{path}' is not a partition key path: a partition key names one property, with no wildcard or array index.");
            }

            if (segments.Length == 1 && DocumentJson.SystemProperties.Contains(segments[0]))
            {
                throw Invalid(path, $"'{path}' is a system property the service sets on every document; it cannot be a partition key.");
            }
        }

        if (given.Distinct(StringComparer.Ordinal).Count() != given.Count)
        {
            throw Invalid(string.Join(",", given), "The same path is given twice in the partition key.");
        }

        if (sourcePaths is not null && sourcePaths.SequenceEqual(given, StringComparer.Ordinal))
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "SamePartitionKey",
                $"The container is already partitioned by {string.Join(", ", given)}: a move to the same key changes nothing.", string.Join(",", given),
                "Name the new key with -PartitionKey (e.g. -PartitionKey /tenantId, or /tenantId,/userId for a hierarchical key).");
        }

        return new MoveKey(given);
    }

    private static MigrationException Invalid(string path, string message) =>
        new(MigrationErrorKind.InvalidArgument, "InvalidPartitionKeyPath", message, path,
            "Give each path as the service writes it: a '/' then the property names, e.g. -PartitionKey /tenantId or -PartitionKey /tenantId,/userId.");

    /// <summary>Whether a value of the key is missing (the document would land in the
    /// partition of documents without a key).</summary>
    public bool IsMissing(JObject document) => Reader.Paths.Any(p => DocumentJson.Get(document, p) is null or { Type: JTokenType.Undefined });

    /// <summary>The document's key values as text (a JSON array): the logical partition it lands in.</summary>
    public string Describe(JObject document) => Reader.Describe(document);

    /// <summary>A condition selecting the documents of the same logical partition of the new key
    /// as <paramref name="document"/>, with parameters (never a value spliced into the text).</summary>
    public (string Condition, IReadOnlyList<(string Name, JToken? Value)> Parameters) SameKeyCondition(JObject document)
    {
        var conditions = new List<string>();
        var parameters = new List<(string, JToken?)>();
        for (var i = 0; i < Reader.Paths.Count; i++)
        {
            var path = Reader.Paths[i];
            var value = DocumentJson.Get(document, path);
            if (value is null or { Type: JTokenType.Undefined })
            {
                conditions.Add($"NOT IS_DEFINED({path.ToSql()})");
            }
            else
            {
                var name = "@key" + i;
                conditions.Add($"{path.ToSql()} = {name}");
                parameters.Add((name, value));
            }
        }

        return (string.Join(" AND ", conditions), parameters);
    }
}
