namespace CosmosMigrations.Documents;

/// <summary>Builds a document's <see cref="PartitionKey"/> from the container's key paths (one, or
/// up to three for hierarchical keys). A missing key value is <see cref="PartitionKey.None"/>.</summary>
internal sealed class PartitionKeyReader
{
    private readonly IReadOnlyList<FieldPath> _paths;

    public PartitionKeyReader(IEnumerable<string> keyPaths)
    {
        _paths = keyPaths.Select(p => FieldPath.Parse(string.Join(".", p.TrimStart('/').Split('/').Select(Quote)))).ToList();
        if (_paths.Count == 0)
        {
            throw new ArgumentException("A container has at least one partition key path.", nameof(keyPaths));
        }
    }

    public IReadOnlyList<FieldPath> Paths => _paths;

    private static string Quote(string segment) =>
        segment.IndexOfAny(new[] { '.', '[', ']' }) >= 0 ? "[\"" + segment.Replace("\"", "\\\"") + "\"]" : segment;

    public PartitionKey Read(JObject document)
    {
        if (_paths.Count == 1)
        {
            return ToKey(DocumentJson.Get(document, _paths[0]));
        }

        var builder = new PartitionKeyBuilder();
        foreach (var path in _paths)
        {
            var value = DocumentJson.Get(document, path);
            switch (value?.Type)
            {
                case null or JTokenType.Undefined: builder.AddNoneType(); break;
                case JTokenType.Null: builder.AddNullValue(); break;
                case JTokenType.Boolean: builder.Add(value.Value<bool>()); break;
                case JTokenType.Integer or JTokenType.Float: builder.Add(value.Value<double>()); break;
                default: builder.Add(value.ToString()); break;
            }
        }

        return builder.Build();
    }

    /// <summary>A JSON rendering of the key values, for failure records and messages.</summary>
    public string Describe(JObject document) =>
        new JArray(_paths.Select(p => DocumentJson.Get(document, p) ?? JValue.CreateUndefined())).ToString(Newtonsoft.Json.Formatting.None);

    private static PartitionKey ToKey(JToken? value) => value?.Type switch
    {
        null or JTokenType.Undefined => PartitionKey.None,
        JTokenType.Null => PartitionKey.Null,
        JTokenType.Boolean => new PartitionKey(value.Value<bool>()),
        JTokenType.Integer or JTokenType.Float => new PartitionKey(value.Value<double>()),
        _ => new PartitionKey(value.ToString()),
    };

    /// <summary>True when both documents carry the same key values (a transform must not move a document).</summary>
    public bool SameKey(JObject a, JObject b) =>
        _paths.All(p => JToken.DeepEquals(DocumentJson.Get(a, p), DocumentJson.Get(b, p)));
}
