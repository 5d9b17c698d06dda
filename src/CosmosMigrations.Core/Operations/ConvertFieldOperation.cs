using CosmosMigrations.Documents;

namespace CosmosMigrations.Operations;

/// <summary>Changes a field's type through a new field: writes the converted value of
/// <see cref="Field"/> into <see cref="To"/>, by a lookup table or to a JSON type. A value that
/// cannot be converted is the document's failure (with its id and value), unless a Default is given.</summary>
internal sealed class ConvertFieldOperation : SyncDocumentOperation
{
    private readonly string _guard;

    public ConvertFieldOperation(FieldPath field, FieldPath to, IReadOnlyDictionary<string, JToken>? map, string? type, JToken? defaultValue)
    {
        Field = field;
        To = to.EnsureWritable();
        Map = map;
        Type = type;
        Default = defaultValue;
        _guard = $"NOT IS_DEFINED({To.ToSql()})";
        SelectionCondition = $"(IS_DEFINED({Field.ToSql()}) AND {_guard})";
    }

    public FieldPath Field { get; }

    public FieldPath To { get; }

    public IReadOnlyDictionary<string, JToken>? Map { get; }

    /// <summary>number, string or boolean (when there is no Map).</summary>
    public string? Type { get; }

    public JToken? Default { get; }

    public override string Kind => "ConvertField";

    public override string? SelectionCondition { get; }

    public override IEnumerable<FieldPath> Fields => new[] { Field, To };

    public override string Describe() => Map is not null
        ? $"convert '{Field}' into '{To}' by a map of {Map.Count} value(s)"
        : $"convert '{Field}' into '{To}' as {Type}";

    public override JObject ToCanonical() => new()
    {
        ["op"] = Kind,
        ["field"] = Field.Text,
        ["to"] = To.Text,
        ["map"] = Map is null ? null : new JObject(Map.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => new JProperty(p.Key, p.Value.DeepClone()))),
        ["type"] = Type,
        ["default"] = Default?.DeepClone(),
    };

    public override void Apply(DocumentEdit edit)
    {
        var source = edit.Get(Field);
        if (source is null || edit.IsDefined(To))
        {
            return;
        }

        var converted = Convert(source);
        if (converted is null)
        {
            if (Default is null)
            {
                throw new DocumentOperationException(
                    $"'{Field}' = {source.ToString(Newtonsoft.Json.Formatting.None)} cannot be converted " +
                    (Map is not null ? "(no entry in Map; add one, or a Default)" : $"to {Type} (give a Default to use for such values)"));
            }

            converted = Default.DeepClone();
        }

        edit.MarkDerived();
        edit.Set(To, converted, _guard);
    }

    private JToken? Convert(JToken source)
    {
        if (Map is not null)
        {
            var key = source.Type switch
            {
                JTokenType.String => (string?)source,
                JTokenType.Integer or JTokenType.Float => System.Convert.ToString(((JValue)source).Value, CultureInfo.InvariantCulture),
                JTokenType.Boolean => (bool)source ? "true" : "false",
                _ => null,
            };
            if (key is null)
            {
                return null;
            }

            if (Map.TryGetValue(key, out var exact))
            {
                return exact.DeepClone();
            }

            var loose = Map.FirstOrDefault(p => string.Equals(p.Key, key, StringComparison.OrdinalIgnoreCase));
            return loose.Value?.DeepClone();
        }

        return Type switch
        {
            "number" => ToNumber(source),
            "string" => ToText(source),
            "boolean" => ToBoolean(source),
            _ => null,
        };
    }

    private static JToken? ToNumber(JToken source)
    {
        switch (source.Type)
        {
            case JTokenType.Integer:
            case JTokenType.Float:
                return source.DeepClone();
            case JTokenType.Boolean:
                return new JValue((bool)source ? 1 : 0);
            case JTokenType.String:
                var text = ((string)source!).Trim();
                if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var whole))
                {
                    return new JValue(whole);
                }

                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var real) && !double.IsNaN(real) && !double.IsInfinity(real))
                {
                    return new JValue(real);
                }

                return null;
            default:
                return null;
        }
    }

    private static JToken? ToText(JToken source) => source.Type switch
    {
        JTokenType.String => source.DeepClone(),
        JTokenType.Integer or JTokenType.Float => new JValue(System.Convert.ToString(((JValue)source).Value, CultureInfo.InvariantCulture)),
        JTokenType.Boolean => new JValue((bool)source ? "true" : "false"),
        _ => null,
    };

    private static JToken? ToBoolean(JToken source)
    {
        switch (source.Type)
        {
            case JTokenType.Boolean:
                return source.DeepClone();
            case JTokenType.Integer:
                var n = (long)source;
                return n is 0 or 1 ? new JValue(n == 1) : null;
            case JTokenType.String:
                var text = ((string)source!).Trim().ToLowerInvariant();
                return text switch
                {
                    "true" or "yes" or "1" => new JValue(true),
                    "false" or "no" or "0" => new JValue(false),
                    _ => null,
                };
            default:
                return null;
        }
    }
}
