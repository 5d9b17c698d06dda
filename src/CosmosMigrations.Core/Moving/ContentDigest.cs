using System;
using System.Globalization;
using System.Linq;
using System.Text;
using CosmosMigrations.Documents;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Moving;

/// <summary>An order-independent digest of a container's user content: the count of documents and
/// the sum (mod 2^64) of each document's 64-bit hash. Two containers read in any order, in pages of
/// any size, by any number of ranges, give the same digest exactly when (up to a 2^-64 chance) they
/// hold the same documents. A document's hash is that of its canonical form: system properties left
/// out, properties in ordinal order at every level, numbers in one spelling (1 and 1.0 alike).</summary>
public sealed class ContentDigest : IEquatable<ContentDigest>
{
    public long Documents { get; private set; }

    public ulong Sum { get; private set; }

    public void Add(JObject document)
    {
        Documents++;
        Sum += HashOf(document);
    }

    /// <summary>Adds another digest's documents (digests of ranges add up to the container's).</summary>
    public void Add(ContentDigest other)
    {
        Documents += other.Documents;
        Sum += other.Sum;
    }

    public static ulong HashOf(JObject document) => StableHash.Of(Canonical(document));

    /// <summary>The document's user content in one spelling.</summary>
    public static string Canonical(JObject document)
    {
        var text = new StringBuilder();
        Write(text, document, topLevel: true);
        return text.ToString();
    }

    private static void Write(StringBuilder text, JToken token, bool topLevel = false)
    {
        switch (token)
        {
            case JObject obj:
                text.Append('{');
                var first = true;
                foreach (var property in obj.Properties().Where(p => !topLevel || !DocumentJson.SystemProperties.Contains(p.Name)).OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    if (!first)
                    {
                        text.Append(',');
                    }

                    first = false;
                    text.Append(Newtonsoft.Json.JsonConvert.ToString(property.Name)).Append(':');
                    Write(text, property.Value);
                }

                text.Append('}');
                break;
            case JArray array:
                text.Append('[');
                for (var i = 0; i < array.Count; i++)
                {
                    if (i > 0)
                    {
                        text.Append(',');
                    }

                    Write(text, array[i]);
                }

                text.Append(']');
                break;
            case JValue { Type: JTokenType.Integer or JTokenType.Float } number:
                var value = Convert.ToDouble(number.Value, CultureInfo.InvariantCulture);
                text.Append(value.ToString("R", CultureInfo.InvariantCulture));
                break;
            case JValue { Type: JTokenType.Date or JTokenType.Guid or JTokenType.Uri or JTokenType.TimeSpan } other:
                // Read as text from the service; compared as the text it was.
                text.Append(Newtonsoft.Json.JsonConvert.ToString(Convert.ToString(other.Value, CultureInfo.InvariantCulture)));
                break;
            default:
                text.Append(token.ToString(Newtonsoft.Json.Formatting.None));
                break;
        }
    }

    public bool Equals(ContentDigest? other) => other is not null && other.Documents == Documents && other.Sum == Sum;

    public override bool Equals(object? obj) => Equals(obj as ContentDigest);

    public override int GetHashCode() => HashCode.Combine(Documents, Sum);

    /// <summary>As the tracking document and the verification show it: count and sum in hex.</summary>
    public override string ToString() => $"{Documents}:{Sum:x16}";
}
