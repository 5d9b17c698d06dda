using System.Buffers;
using System.Globalization;
using System.IO;
using System.Numerics;
using System.Text;
using System.Text.Json;

namespace CosmosMigrations.Documents;

/// <summary>One change feed page (<c>{"Documents": [...]}</c>) read as bytes: each item's id and
/// ETag are found without building a document, and a document is built only for the items the
/// caller keeps, with only the top-level properties it names. A distributed pass meets every
/// document twice (its own writes come back through the feed) and the feed has no projection:
/// building every item whole was most of a worker's allocations beyond a single run's.</summary>
internal sealed class FeedPage : IDisposable
{
    // Documents nest at most as deep as Json.NET reads them (DocumentJson.Settings), plus the page's two levels.
    private static readonly JsonReaderOptions Options = new() { MaxDepth = 130 };

    private byte[]? _rented;
    private readonly int _length;
    private readonly List<FeedItem> _items = new();

    private FeedPage(byte[] rented, int length)
    {
        _rented = rented;
        _length = length;
    }

    /// <summary>The page's items in feed order.</summary>
    public IReadOnlyList<FeedItem> Items => _items;

    public static FeedPage Read(Stream stream)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(stream.CanSeek ? (int)Math.Max(256, stream.Length - stream.Position) : 64 * 1024);
        var length = 0;
        int read;
        while ((read = stream.Read(buffer, length, buffer.Length - length)) > 0)
        {
            length += read;
            if (length == buffer.Length)
            {
                var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                Buffer.BlockCopy(buffer, 0, larger, 0, length);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = larger;
            }
        }

        var page = new FeedPage(buffer, length);
        page.Index();
        return page;
    }

    private ReadOnlySpan<byte> Bytes => new(_rented ?? throw new ObjectDisposedException(nameof(FeedPage)), 0, _length);

    private void Index()
    {
        var reader = new Utf8JsonReader(Bytes, Options);
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1 && reader.ValueTextEquals("Documents"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    return;
                }

                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    var start = (int)reader.TokenStartIndex;
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        // Not a document (a feed item is always one): kept, as the whole-page reader kept it, for the caller to ignore.
                        reader.Skip();
                        _items.Add(new FeedItem(string.Empty, null, start, (int)reader.BytesConsumed - start, false));
                        continue;
                    }

                    string? id = null;
                    string? etag = null;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                    {
                        var isId = reader.ValueTextEquals("id"u8);
                        var isETag = !isId && reader.ValueTextEquals("_etag"u8);
                        reader.Read();
                        if (reader.TokenType == JsonTokenType.String && (isId || isETag))
                        {
                            if (isId)
                            {
                                id = reader.GetString();
                            }
                            else
                            {
                                etag = reader.GetString();
                            }
                        }
                        else
                        {
                            reader.Skip();
                        }
                    }

                    _items.Add(new FeedItem(id ?? string.Empty, etag, start, (int)reader.BytesConsumed - start, true));
                }

                return;
            }
        }
    }

    /// <summary>The item as a document: whole, or with only <paramref name="properties"/> (the
    /// others are skipped unread). Values as <see cref="DocumentJson"/> reads them: dates stay
    /// strings, integers are 64-bit (larger ones exact), other numbers doubles.</summary>
    public JObject Load(FeedItem item, ISet<string>? properties = null)
    {
        var reader = new Utf8JsonReader(Bytes.Slice(item.Start, item.Length), Options);
        reader.Read();
        var document = new JObject();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var name = reader.GetString()!;
            reader.Read();
            if (properties is not null && !properties.Contains(name))
            {
                reader.Skip();
                continue;
            }

            // A repeated name keeps its last value, as Json.NET's loader does.
            document[name] = ReadValue(ref reader);
        }

        return document;
    }

    private static JToken ReadValue(ref Utf8JsonReader reader)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                var obj = new JObject();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                {
                    var name = reader.GetString()!;
                    reader.Read();
                    obj[name] = ReadValue(ref reader);
                }

                return obj;
            case JsonTokenType.StartArray:
                var array = new JArray();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    array.Add(ReadValue(ref reader));
                }

                return array;
            case JsonTokenType.String:
                return new JValue(reader.GetString());
            case JsonTokenType.Number:
                return Number(ref reader);
            case JsonTokenType.True:
                return new JValue(true);
            case JsonTokenType.False:
                return new JValue(false);
            default:
                return JValue.CreateNull();
        }
    }

    private static JValue Number(ref Utf8JsonReader reader)
    {
        if (reader.TryGetInt64(out var integer))
        {
            return new JValue(integer);
        }

        var text = Encoding.UTF8.GetString(reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan.ToArray());
        // An integer beyond 64 bits stays exact, as Json.NET reads it; anything else is a double.
        return text.IndexOfAny(['.', 'e', 'E']) < 0 && BigInteger.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var big)
            ? new JValue(big)
            : new JValue(double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture));
    }

    public void Dispose()
    {
        if (_rented is { } rented)
        {
            _rented = null;
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}

/// <summary>An item of a <see cref="FeedPage"/>: its id and ETag (as stored), and where its bytes are.</summary>
internal readonly record struct FeedItem(string Id, string? ETag, int Start, int Length, bool IsDocument);
