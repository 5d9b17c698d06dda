using System.Text;

namespace CosmosMigrations.Documents;

/// <summary>A document's user content in one spelling: system properties left out, properties in
/// ordinal order at every level, numbers as the one number they are to the service (1 and 1.0
/// alike). The journal's after-hashes and a move's content digest are taken of it. Journals store
/// hashes of this spelling, so it must not change.</summary>
internal static class CanonicalJson
{
    public static string Of(JObject document)
    {
        var text = new StringBuilder();
        Write(document, text, topLevel: true);
        return text.ToString();
    }

    private static void Write(JToken token, StringBuilder text, bool topLevel = false)
    {
        switch (token)
        {
            case JObject obj:
                text.Append('{');
                foreach (var property in obj.Properties().Where(p => !topLevel || !DocumentJson.SystemProperties.Contains(p.Name)).OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    text.Append(new JValue(property.Name).ToString(Newtonsoft.Json.Formatting.None)).Append(':');
                    Write(property.Value, text);
                    text.Append(',');
                }

                text.Append('}');
                break;
            case JArray array:
                text.Append('[');
                foreach (var item in array)
                {
                    Write(item, text);
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
}
