using System.IO;
using System.Text;

namespace CosmosMigrations.Documents;

/// <summary>Reads and writes documents exactly as stored. Dates stay strings (Json.NET would turn
/// ISO strings into DateTime and write them back in another form), and nothing is added: a replace
/// writes back precisely what was read plus the migration's change.</summary>
internal static class DocumentJson
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    public static JsonSerializerSettings Settings { get; } = new()
    {
        DateParseHandling = DateParseHandling.None,
        FloatParseHandling = FloatParseHandling.Double,
        NullValueHandling = NullValueHandling.Ignore,
        MaxDepth = 128,
    };

    public static JsonSerializer Serializer { get; } = JsonSerializer.Create(Settings);

    /// <summary>The properties the service keeps on every document (never written by a migration,
    /// never part of what a user compares).</summary>
    public static IReadOnlyList<string> SystemProperties { get; } = new[] { "_rid", "_self", "_etag", "_attachments", "_ts", "_lsn" };

    /// <summary>A copy of a document as a user knows it: without the service's system properties.</summary>
    public static JObject WithoutSystemProperties(JObject document)
    {
        var copy = (JObject)document.DeepClone();
        foreach (var name in SystemProperties)
        {
            copy.Remove(name);
        }

        return copy;
    }

    /// <summary>No line numbers on every token read: nothing reads them back, and they were an
    /// object per token of every document of every page.</summary>
    private static readonly JsonLoadSettings NoLineInfo = new() { LineInfoHandling = LineInfoHandling.Ignore };

    private static JsonTextReader NewReader(Stream stream) =>
        new(new StreamReader(stream, Utf8)) { DateParseHandling = DateParseHandling.None, FloatParseHandling = FloatParseHandling.Double, MaxDepth = 128 };

    public static JObject ReadObject(Stream stream)
    {
        using var reader = NewReader(stream);
        return JObject.Load(reader, NoLineInfo);
    }

    public static JToken Parse(string json)
    {
        using var reader = new JsonTextReader(new StringReader(json)) { DateParseHandling = DateParseHandling.None, FloatParseHandling = FloatParseHandling.Double };
        return JToken.Load(reader, NoLineInfo);
    }

    /// <summary>The items of one query or feed page (<c>{"Documents": [...]}</c>), read one at a time.</summary>
    public static IEnumerable<JToken> ReadPage(Stream stream)
    {
        using var reader = NewReader(stream);
        while (reader.Read())
        {
            if (reader.TokenType == JsonToken.PropertyName && (string?)reader.Value == "Documents" && reader.Depth == 1)
            {
                reader.Read();
                while (reader.Read() && reader.TokenType != JsonToken.EndArray)
                {
                    yield return JToken.Load(reader, NoLineInfo);
                }

                yield break;
            }
        }
    }

    public static MemoryStream ToStream(JToken token) => ToStream(json => token.WriteTo(json));

    /// <summary>UTF-8 JSON written by <paramref name="write"/> straight to a stream: a body made of
    /// many small parts (a journal record) need not be built as a document first.</summary>
    public static MemoryStream ToStream(Action<JsonWriter> write)
    {
        var stream = new MemoryStream();
        using (var writer = new StreamWriter(stream, Utf8, 4096, leaveOpen: true))
        using (var json = new JsonTextWriter(writer))
        {
            write(json);
        }

        stream.Position = 0;
        return stream;
    }

    public static MemoryStream ToStream(object value)
    {
        var stream = new MemoryStream();
        using (var writer = new StreamWriter(stream, Utf8, 4096, leaveOpen: true))
        using (var json = new JsonTextWriter(writer))
        {
            Serializer.Serialize(json, value);
        }

        stream.Position = 0;
        return stream;
    }

    public static T Read<T>(Stream stream)
    {
        using var reader = NewReader(stream);
        return Serializer.Deserialize<T>(reader)!;
    }

    /// <summary>Value at a path, or null when any segment is missing (JSON null is a JValue).</summary>
    public static JToken? Get(JObject document, FieldPath path)
    {
        JToken? current = document;
        foreach (var segment in path.Segments)
        {
            if (current is not JObject obj || !obj.TryGetValue(segment, out var next))
            {
                return null;
            }

            current = next;
        }

        return current;
    }
}
