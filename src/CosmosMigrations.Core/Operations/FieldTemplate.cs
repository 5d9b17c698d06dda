using System.Text;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Operations;

/// <summary>A string with placeholders over the document's fields: <c>{name}</c>,
/// <c>{profile.first}</c>, <c>{name:uri}</c> (URL-encoded), <c>{name:lower}</c>, <c>{name:upper}</c>.
/// <c>{{</c> and <c>}}</c> stand for literal braces.</summary>
internal sealed class FieldTemplate
{
    private readonly List<(string? Literal, FieldPath? Field, string? Format)> _parts = new();

    private FieldTemplate(string text)
    {
        Text = text;
    }

    public string Text { get; }

    public IEnumerable<FieldPath> Fields
    {
        get
        {
            foreach (var part in _parts)
            {
                if (part.Field is not null)
                {
                    yield return part.Field;
                }
            }
        }
    }

    public static FieldTemplate Parse(string text)
    {
        var template = new FieldTemplate(text);
        var literal = new StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            var ch = text[i];
            if ((ch == '{' || ch == '}') && i + 1 < text.Length && text[i + 1] == ch)
            {
                literal.Append(ch);
                i++;
                continue;
            }

            if (ch == '}')
            {
                throw Invalid(text, "It has a '}' without a matching '{' (write '}}' for a literal brace).");
            }

            if (ch != '{')
            {
                literal.Append(ch);
                continue;
            }

            var end = text.IndexOf('}', i + 1);
            if (end < 0)
            {
                throw Invalid(text, "A '{' is not closed (write '{{' for a literal brace).");
            }

            if (literal.Length > 0)
            {
                template._parts.Add((literal.ToString(), null, null));
                literal.Clear();
            }

            var inner = text.Substring(i + 1, end - i - 1);
            var colon = inner.LastIndexOf(':');
            string? format = null;
            if (colon > 0 && inner.IndexOf(']', colon) < 0)
            {
                format = inner.Substring(colon + 1).Trim().ToLowerInvariant();
                inner = inner.Substring(0, colon);
                if (format is not ("uri" or "lower" or "upper"))
                {
                    throw Invalid(text, $"'{format}' is not a known format: use uri, lower or upper.");
                }
            }

            template._parts.Add((null, FieldPath.Parse(inner), format));
            i = end;
        }

        if (literal.Length > 0)
        {
            template._parts.Add((literal.ToString(), null, null));
        }

        return template;
    }

    public JToken Render(JObject document)
    {
        var sb = new StringBuilder();
        foreach (var (literal, field, format) in _parts)
        {
            if (literal is not null)
            {
                sb.Append(literal);
                continue;
            }

            var value = DocumentJson.Get(document, field!);
            if (value is null || value.Type == JTokenType.Null)
            {
                throw new DocumentOperationException($"template field '{field}' is {(value is null ? "missing" : "null")}");
            }

            var text = value.Type switch
            {
                JTokenType.String => (string)value!,
                JTokenType.Integer or JTokenType.Float => Convert.ToString(((JValue)value).Value, CultureInfo.InvariantCulture),
                JTokenType.Boolean => (bool)value ? "true" : "false",
                _ => value.ToString(Newtonsoft.Json.Formatting.None),
            };
            sb.Append(format switch
            {
                "uri" => Uri.EscapeDataString(text!),
                "lower" => text!.ToLowerInvariant(),
                "upper" => text!.ToUpperInvariant(),
                _ => text,
            });
        }

        return new JValue(sb.ToString());
    }

    private static MigrationException Invalid(string text, string why) =>
        new(MigrationErrorKind.InvalidDefinition, "InvalidTemplate", $"Template '{text}' is not valid. {why}", text,
            "Write placeholders as {field} or {field:uri}.");

    public override string ToString() => Text;
}
