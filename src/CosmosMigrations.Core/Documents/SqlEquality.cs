namespace CosmosMigrations.Documents;

/// <summary>Equality of a field and a JSON value in Cosmos SQL, exact or not at all: what a guarded
/// write's filter predicate may test.</summary>
internal static class SqlEquality
{
    /// <summary>The Cosmos SQL condition "the field holds this value", or null when equality cannot
    /// be tested exactly in SQL (objects, arrays, numbers beyond what a double holds exactly).</summary>
    public static string? Condition(FieldPath path, JToken value) =>
        value.Type == JTokenType.Null ? $"IS_NULL({path.ToSql()})"
        : Literal(value) is { } literal ? $"{path.ToSql()} = {literal}"
        : null;

    /// <summary>A value as a Cosmos SQL literal for an equality test, or null (see <see cref="Condition"/>).</summary>
    public static string? Literal(JToken value)
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
}
