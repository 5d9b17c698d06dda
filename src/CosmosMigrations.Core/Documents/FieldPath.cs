using System.Text;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Documents;

/// <summary>A field of a document, written by users as <c>settings.theme</c> (dots for nesting).
/// A segment that itself contains a dot is written in brackets: <c>a["b.c"]</c> or <c>a['b.c']</c>.
/// Every rendering escapes: Cosmos SQL as <c>c["…"]</c> with a JSON string literal, patch paths as
/// JSON Pointer (RFC 6901). User input is never concatenated raw into a query.</summary>
internal sealed class FieldPath : IEquatable<FieldPath>
{
    private static readonly HashSet<string> SystemProperties = new(StringComparer.Ordinal)
    {
        "id", "_rid", "_self", "_etag", "_ts", "_attachments", "_lsn",
    };

    private FieldPath(IReadOnlyList<string> segments, string text)
    {
        Segments = segments;
        Text = text;
    }

    public IReadOnlyList<string> Segments { get; }

    /// <summary>The path as the user wrote it (normalised).</summary>
    public string Text { get; }

    public static FieldPath Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            throw Invalid(text, "A field path cannot be empty.");
        }

        var segments = new List<string>();
        var current = new StringBuilder();
        var i = 0;
        var s = text!.Trim();
        var expectSegment = true;
        while (i < s.Length)
        {
            var ch = s[i];
            if (ch == '[')
            {
                if (current.Length > 0)
                {
                    segments.Add(current.ToString());
                    current.Clear();
                }

                i = ReadBracket(s, i, segments, text);
                expectSegment = false;
                if (i < s.Length && s[i] == '.')
                {
                    i++;
                    expectSegment = true;
                }

                continue;
            }

            if (ch == '.')
            {
                if (current.Length == 0 && expectSegment)
                {
                    throw Invalid(text, "It has an empty segment (two dots, or a dot at either end).");
                }

                if (current.Length > 0)
                {
                    segments.Add(current.ToString());
                    current.Clear();
                }

                expectSegment = true;
                i++;
                continue;
            }

            current.Append(ch);
            expectSegment = false;
            i++;
        }

        if (current.Length > 0)
        {
            segments.Add(current.ToString());
        }
        else if (expectSegment)
        {
            throw Invalid(text, "It has an empty segment (two dots, or a dot at either end).");
        }

        return new FieldPath(segments, string.Join(".", segments.Select(Display)));
    }

    /// <summary>The path a JSON Pointer (RFC 6901) names, as <see cref="ToJsonPointer"/> writes it.</summary>
    public static FieldPath FromJsonPointer(string pointer)
    {
        if (string.IsNullOrEmpty(pointer) || pointer[0] != '/' || pointer.Length == 1)
        {
            throw Invalid(pointer, "A JSON Pointer to a field starts with '/' and names at least one segment.");
        }

        var segments = pointer.Substring(1).Split('/').Select(s => s.Replace("~1", "/").Replace("~0", "~")).ToList();
        if (segments.Any(s => s.Length == 0))
        {
            throw Invalid(pointer, "It has an empty segment.");
        }

        return new FieldPath(segments, string.Join(".", segments.Select(Display)));
    }

    /// <summary>Whether this path lies inside <paramref name="ancestor"/> (and is not the same path).</summary>
    public bool IsBelow(FieldPath ancestor) =>
        Segments.Count > ancestor.Segments.Count && ancestor.Segments.Select((s, i) => s == Segments[i]).All(same => same);

    private static int ReadBracket(string s, int start, List<string> segments, string original)
    {
        // [ "name" ] or [ 'name' ]: quotes escape with a backslash.
        var i = start + 1;
        if (i >= s.Length || (s[i] != '"' && s[i] != '\''))
        {
            throw Invalid(original, "A bracketed segment must be quoted, e.g. a[\"b.c\"].");
        }

        var quote = s[i++];
        var segment = new StringBuilder();
        while (i < s.Length && s[i] != quote)
        {
            if (s[i] == '\\' && i + 1 < s.Length)
            {
                i++;
            }

            segment.Append(s[i++]);
        }

        if (i + 1 >= s.Length || s[i + 1] != ']')
        {
            throw Invalid(original, "A bracketed segment is not closed with a quote and ']'.");
        }

        if (segment.Length == 0)
        {
            throw Invalid(original, "A bracketed segment cannot be empty.");
        }

        segments.Add(segment.ToString());
        return i + 2;
    }

    private static string Display(string segment) =>
        segment.IndexOfAny(new[] { '.', '[', ']', '"' }) >= 0 ? "[\"" + segment.Replace("\"", "\\\"") + "\"]" : segment;

    /// <summary>Throws when the path names a system property or the id, which migrations must not change.</summary>
    public FieldPath EnsureWritable()
    {
        if (Segments.Count == 1 && SystemProperties.Contains(Segments[0]))
        {
            throw Invalid(Text, $"'{Segments[0]}' is a system property: a migration cannot set, move or remove it.");
        }

        return this;
    }

    /// <summary><c>c["settings"]["theme"]</c>: every segment a JSON string literal, so quotes,
    /// brackets, spaces and SQL keywords in names cannot change the query.</summary>
    public string ToSql(string alias = "c")
    {
        var sb = new StringBuilder(alias);
        foreach (var segment in Segments)
        {
            sb.Append('[').Append(SqlLiteral(segment)).Append(']');
        }

        return sb.ToString();
    }

    /// <summary>JSON Pointer (RFC 6901): <c>~</c> as <c>~0</c>, <c>/</c> as <c>~1</c>.</summary>
    public string ToJsonPointer() =>
        "/" + string.Join("/", Segments.Select(EscapePointer));

    /// <summary>One property name as a JSON Pointer segment.</summary>
    public static string EscapePointer(string segment) => segment.Replace("~", "~0").Replace("/", "~1");

    /// <summary>A string as a Cosmos SQL string literal (JSON escaping, double quotes).</summary>
    public static string SqlLiteral(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('"');
        foreach (var ch in value)
        {
            switch (ch)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\'': sb.Append("\\u0027"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (ch < 0x20)
                    {
                        sb.Append("\\u").Append(((int)ch).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(ch);
                    }

                    break;
            }
        }

        return sb.Append('"').ToString();
    }

    private static MigrationException Invalid(string? text, string why) =>
        new(MigrationErrorKind.InvalidArgument, "InvalidFieldPath", $"'{text}' is not a valid field path. {why}", text,
            "Write nested fields with dots (settings.theme); quote a name that contains a dot in brackets: a[\"b.c\"].");

    public bool Equals(FieldPath? other) => other is not null && Segments.SequenceEqual(other.Segments, StringComparer.Ordinal);

    public override bool Equals(object? obj) => Equals(obj as FieldPath);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(string.Join("\u0001", Segments));

    public override string ToString() => Text;
}
