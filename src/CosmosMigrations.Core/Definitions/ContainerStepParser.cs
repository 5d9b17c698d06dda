using System.Collections;
using System.Text.RegularExpressions;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;
using CosmosMigrations.Steps;

namespace CosmosMigrations.Definitions;

/// <summary>Container-level steps from their hashtables: AddIndex and RequireField.</summary>
internal static class ContainerStepParser
{
    private static readonly Regex IncludedPathPattern = new(@"^(/[^/?*]+)+/(\?|\*)$", RegexOptions.CultureInvariant);

    public static MigrationStep? Parse(IDictionary table, string where)
    {
        if (DefinitionParser.TryGet(table, "AddIndex", out var index))
        {
            DefinitionParser.TryGet(table, "Timeout", out var timeout);
            return ParseAddIndex(index, timeout, where);
        }

        if (DefinitionParser.TryGet(table, "RequireField", out _))
        {
            DefinitionParser.TryGet(table, "Type", out var type);
            try
            {
                return new RequireFieldStep(DefinitionParser.Path(table, "RequireField", where), ConformanceChecker.NormaliseType(type as string, where));
            }
            catch (MigrationException ex) when (ex.Kind == MigrationErrorKind.InvalidArgument)
            {
                throw DefinitionParser.Invalid(where, ex.Message);
            }
        }

        return null;
    }

    /// <summary>A composite index (<c>@('status ASC', 'publishedAt DESC')</c>) or an included path
    /// (<c>'/status/?'</c>, or a field path such as <c>'status'</c>).</summary>
    public static AddIndexStep ParseAddIndex(object? value, object? timeout, string where)
    {
        var wait = ParseTimeout(timeout, where);
        switch (value)
        {
            case string single when single.Trim().StartsWith("/", StringComparison.Ordinal):
                var path = single.Trim();
                if (!IncludedPathPattern.IsMatch(path))
                {
                    throw DefinitionParser.Invalid(where, $"'{single}' is not an index path: write it as '/status/?' (a value) or '/tags/*' (a subtree).");
                }

                return new AddIndexStep(null, path, wait);
            case string single:
                return new AddIndexStep(null, FieldPath.Parse(single).ToJsonPointer() + "/?", wait);
            case IEnumerable list:
                var entries = list.Cast<object?>().Select(e => e as string ?? throw DefinitionParser.Invalid(where, "AddIndex entries are strings such as 'status ASC'.")).ToList();
                if (entries.Count < 2)
                {
                    throw DefinitionParser.Invalid(where, "A composite index has at least two paths, e.g. @('status ASC', 'publishedAt DESC'); for one field write AddIndex = 'status'.");
                }

                return new AddIndexStep(entries.Select(e => ParseComposite(e, where)).ToList(), null, wait);
            default:
                throw DefinitionParser.Invalid(where, "AddIndex is a path ('/status/?' or 'status') or a list of 'field ASC|DESC' for a composite index.");
        }
    }

    private static CompositePath ParseComposite(string entry, string where)
    {
        var parts = entry.Trim().Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length is < 1 or > 2)
        {
            throw DefinitionParser.Invalid(where, $"'{entry}' is not 'field ASC' or 'field DESC'.");
        }

        var order = parts.Length == 1 ? "ASC" : parts[1].ToUpperInvariant();
        if (order is not ("ASC" or "DESC"))
        {
            throw DefinitionParser.Invalid(where, $"'{entry}': the order is ASC or DESC, not '{parts[1]}'.");
        }

        FieldPath field;
        try
        {
            field = FieldPath.Parse(parts[0]);
        }
        catch (MigrationException ex)
        {
            throw DefinitionParser.Invalid(where, ex.Message);
        }

        return new CompositePath { Path = field.ToJsonPointer(), Order = order == "ASC" ? CompositePathSortOrder.Ascending : CompositePathSortOrder.Descending };
    }

    private static TimeSpan ParseTimeout(object? value, string where) => value switch
    {
        null => TimeSpan.FromMinutes(30),
        TimeSpan span when span > TimeSpan.Zero => span,
        int seconds when seconds > 0 => TimeSpan.FromSeconds(seconds),
        long seconds when seconds > 0 => TimeSpan.FromSeconds(seconds),
        string text when TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var parsed) && parsed > TimeSpan.Zero => parsed,
        _ => throw DefinitionParser.Invalid(where, "Timeout is a positive number of seconds or a time span such as '00:10:00'."),
    };
}
