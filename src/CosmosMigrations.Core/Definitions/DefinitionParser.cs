using System.Collections;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;
using CosmosMigrations.Steps;

namespace CosmosMigrations.Definitions;

/// <summary>Builds migrations from hashtables (inline <c>-Operation</c>, or a .psd1 file's data),
/// checking every key: an unknown operation, a misspelt key or a wrong type is an error that names
/// the place, before anything is written.</summary>
internal sealed class DefinitionParser
{
    private static readonly string[] Kinds = { "AddField", "RemoveField", "RenameField", "ConvertField", "AddIndex", "RequireField", "Transform" };

    private static readonly Dictionary<string, string[]> AllowedKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        ["AddField"] = new[] { "Value", "Template", "CopyFrom" },
        ["RemoveField"] = Array.Empty<string>(),
        ["RenameField"] = new[] { "To", "KeepSource" },
        ["ConvertField"] = new[] { "To", "Map", "Default", "Type" },
        ["AddIndex"] = new[] { "Timeout" },
        ["RequireField"] = new[] { "Type" },
        ["Transform"] = Array.Empty<string>(),
    };

    private static readonly string[] FileKeys = { "Name", "Container", "Description", "Operations" };

    private readonly Func<string, TransformFunction>? _resolveTransformFile;
    private readonly Func<IDictionary, string, MigrationStep?>? _containerSteps;

    /// <param name="resolveTransformFile">Turns a Transform path (relative to the migration file)
    /// into a function; the cmdlet layer supplies it, since scripts need PowerShell.</param>
    /// <param name="containerSteps">Builds container-level steps (AddIndex, RequireField).</param>
    public DefinitionParser(Func<string, TransformFunction>? resolveTransformFile = null, Func<IDictionary, string, MigrationStep?>? containerSteps = null)
    {
        _resolveTransformFile = resolveTransformFile;
        _containerSteps = containerSteps ?? ContainerStepParser.Parse;
    }

    /// <summary>A migration file's data: @{ Name; Container; Description; Operations = @(…) }.</summary>
    public MigrationDefinition ParseFile(IDictionary data, string sourcePath)
    {
        foreach (var key in data.Keys.Cast<object>().Select(k => Convert.ToString(k, CultureInfo.InvariantCulture) ?? ""))
        {
            if (!FileKeys.Contains(key, StringComparer.OrdinalIgnoreCase))
            {
                throw Invalid(sourcePath, $"'{key}' is not a known key of a migration file. Known keys: {string.Join(", ", FileKeys)}.");
            }
        }

        var name = RequiredString(data, "Name", sourcePath);
        var container = RequiredString(data, "Container", sourcePath);
        var description = OptionalString(data, "Description", sourcePath);
        if (!TryGet(data, "Operations", out var operations) || operations is null)
        {
            throw Invalid(sourcePath, "It has no Operations: list at least one, e.g. Operations = @( @{ AddField = 'x'; Value = 1 } ).");
        }

        var list = operations is IDictionary single ? new object[] { single } : operations as IEnumerable;
        if (list is null || operations is string)
        {
            throw Invalid(sourcePath, "Operations must be a list of hashtables.");
        }

        return Build(name, container, description, list.Cast<object?>().ToList(), null, sourcePath);
    }

    /// <summary>An inline migration (-Name, -Container, -Operation).</summary>
    public MigrationDefinition ParseInline(string name, string container, string? description, IReadOnlyList<object?> operations, string? filter = null)
    {
        var definition = Build(name, container, description, operations, filter, null);
        definition.Stored = StoredDefinition.FromInline(description, operations, filter);
        return definition;
    }

    /// <summary>A backfill (Invoke-Backfill): renames, then sets, then removals, then a transform,
    /// in one pass over the documents the filter selects. Keys are field paths; -Set values and
    /// -Rename targets are plain values (the cmdlet unwraps PowerShell's wrappers).</summary>
    public static MigrationDefinition Backfill(string name, string container, string? filter, IDictionary? set, IEnumerable<string>? unset, IDictionary? rename, TransformFunction? transform)
    {
        var operations = new List<DocumentOperation>();
        foreach (DictionaryEntry entry in rename ?? new Hashtable())
        {
            var to = entry.Value as string
                ?? throw new MigrationException(MigrationErrorKind.InvalidArgument, "InvalidRename", $"-Rename maps '{entry.Key}' to a non-string.", entry.Key,
                    "Write -Rename @{ oldName = 'newName' }.");
            operations.Add(new RenameFieldOperation(FieldPath.Parse(Key(entry)), FieldPath.Parse(to), keepSource: false));
        }

        foreach (DictionaryEntry entry in set ?? new Hashtable())
        {
            operations.Add(new SetFieldOperation(FieldPath.Parse(Key(entry)), PlainJson.FromObject(entry.Value, Key(entry))));
        }

        foreach (var field in unset ?? Array.Empty<string>())
        {
            operations.Add(new RemoveFieldOperation(FieldPath.Parse(field)));
        }

        if (transform is not null)
        {
            operations.Add(new TransformOperation(transform));
        }

        ValidateName(name, null);
        ResourceName.Validate(container, "container");
        if (operations.Count == 0)
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "NoChange", "A backfill needs something to change.", name,
                "Pass -Set, -Unset, -Rename or -ScriptBlock.");
        }

        ValidateFilter(filter, name);
        return new MigrationDefinition(name, container, null, new MigrationStep[] { new DocumentPass(operations, filter) })
        {
            Stored = StoredDefinition.FromBackfill(filter, set, unset, rename, transform is not null),
        };
    }

    private static string Key(DictionaryEntry entry) => Convert.ToString(entry.Key, CultureInfo.InvariantCulture) ?? string.Empty;

    private MigrationDefinition Build(string name, string container, string? description, IReadOnlyList<object?> operations, string? filter, string? sourcePath)
    {
        ValidateName(name, sourcePath);
        try
        {
            ResourceName.Validate(container, "container");
        }
        catch (MigrationException ex)
        {
            throw Invalid(sourcePath ?? name, ex.Message);
        }

        ValidateFilter(filter, name);
        if (operations.Count == 0)
        {
            throw Invalid(sourcePath ?? name, "It has no operations.");
        }

        var steps = new List<MigrationStep>();
        var pending = new List<DocumentOperation>();
        for (var i = 0; i < operations.Count; i++)
        {
            var where = $"{(sourcePath ?? name)}: operation {i + 1}";
            if (operations[i] is not IDictionary table)
            {
                throw Invalid(where, "An operation is a hashtable, e.g. @{ AddField = 'avatarUrl'; Value = '' }.");
            }

            var step = ParseOperation(table, where, sourcePath);
            if (step is DocumentOperation documentOperation)
            {
                pending.Add(documentOperation);
                continue;
            }

            if (pending.Count > 0)
            {
                steps.Add(new DocumentPass(pending.ToArray(), filter));
                pending.Clear();
            }

            steps.Add((MigrationStep)step);
        }

        if (pending.Count > 0)
        {
            steps.Add(new DocumentPass(pending.ToArray(), filter));
        }

        return new MigrationDefinition(name, container, description, steps, sourcePath);
    }

    private object ParseOperation(IDictionary table, string where, string? sourcePath)
    {
        var keys = table.Keys.Cast<object>().Select(k => Convert.ToString(k, CultureInfo.InvariantCulture) ?? "").ToList();
        var kinds = keys.Where(k => Kinds.Contains(k, StringComparer.OrdinalIgnoreCase)).ToList();
        if (kinds.Count == 0)
        {
            throw Invalid(where, $"It names no known operation (keys: {string.Join(", ", keys)}). Known operations: {string.Join(", ", Kinds)}.");
        }

        if (kinds.Count > 1)
        {
            throw Invalid(where, $"It names more than one operation ({string.Join(", ", kinds)}): write one hashtable per operation.");
        }

        var kind = Kinds.First(k => string.Equals(k, kinds[0], StringComparison.OrdinalIgnoreCase));
        var allowed = AllowedKeys[kind];
        foreach (var key in keys.Where(k => !string.Equals(k, kind, StringComparison.OrdinalIgnoreCase)))
        {
            if (!allowed.Contains(key, StringComparer.OrdinalIgnoreCase))
            {
                throw Invalid(where, $"'{key}' is not a key of {kind}. " +
                    (allowed.Length == 0 ? $"{kind} takes no other key." : $"{kind} takes: {string.Join(", ", allowed)}."));
            }
        }

        switch (kind)
        {
            case "AddField":
                return ParseAddField(table, where);
            case "RemoveField":
                return new RemoveFieldOperation(Path(table, "RemoveField", where));
            case "RenameField":
                var keep = !TryGet(table, "KeepSource", out var keepValue) || Bool(keepValue, "KeepSource", where);
                return new RenameFieldOperation(Path(table, "RenameField", where), Path(table, "To", where, required: true), keep);
            case "ConvertField":
                return ParseConvert(table, where);
            case "Transform":
                return ParseTransform(table, where, sourcePath);
            default:
                return _containerSteps!(table, where) ?? throw Invalid(where, $"{kind} is not available here.");
        }
    }

    private static DocumentOperation ParseAddField(IDictionary table, string where)
    {
        var field = Path(table, "AddField", where);
        var sources = new[] { "Value", "Template", "CopyFrom" }.Where(k => TryGet(table, k, out _)).ToList();
        if (sources.Count != 1)
        {
            throw Invalid(where, "AddField takes exactly one of Value, Template or CopyFrom.");
        }

        TryGet(table, sources[0], out var raw);
        return sources[0] switch
        {
            "Value" => AddFieldOperation.WithValue(field, Json(raw, "Value", where)),
            "Template" => AddFieldOperation.WithTemplate(field, Template(raw, where)),
            _ => AddFieldOperation.WithCopy(field, Path(table, "CopyFrom", where, required: true)),
        };
    }

    private static FieldTemplate Template(object? raw, string where)
    {
        if (raw is not string text || text.Length == 0)
        {
            throw Invalid(where, "Template must be a non-empty string such as 'https://x/{name:uri}'.");
        }

        try
        {
            return FieldTemplate.Parse(text);
        }
        catch (MigrationException ex)
        {
            throw Invalid(where, ex.Message);
        }
    }

    private static DocumentOperation ParseConvert(IDictionary table, string where)
    {
        var field = Path(table, "ConvertField", where);
        var to = Path(table, "To", where, required: true);
        var hasMap = TryGet(table, "Map", out var mapRaw);
        var hasType = TryGet(table, "Type", out var typeRaw);
        if (hasMap == hasType)
        {
            throw Invalid(where, "ConvertField takes exactly one of Map (a hashtable of old value = new value) or Type ('number', 'string' or 'boolean').");
        }

        JToken? defaultValue = TryGet(table, "Default", out var defaultRaw) ? Json(defaultRaw, "Default", where) : null;
        if (hasMap)
        {
            if (mapRaw is not IDictionary mapTable || mapTable.Count == 0)
            {
                throw Invalid(where, "Map must be a non-empty hashtable, e.g. @{ low = 1; medium = 2; high = 3 }.");
            }

            var map = new Dictionary<string, JToken>(StringComparer.Ordinal);
            foreach (DictionaryEntry entry in mapTable)
            {
                map[Convert.ToString(entry.Key, CultureInfo.InvariantCulture) ?? ""] = Json(entry.Value, $"Map.{entry.Key}", where);
            }

            return new ConvertFieldOperation(field, to, map, null, defaultValue);
        }

        var type = (typeRaw as string)?.Trim().ToLowerInvariant();
        if (type is not ("number" or "string" or "boolean"))
        {
            throw Invalid(where, $"Type '{typeRaw}' is not one of number, string, boolean.");
        }

        return new ConvertFieldOperation(field, to, null, type, defaultValue);
    }

    private DocumentOperation ParseTransform(IDictionary table, string where, string? sourcePath)
    {
        TryGet(table, "Transform", out var raw);
        switch (raw)
        {
            case TransformFunction function:
                return new TransformOperation(function);
            case string path when path.Trim().Length > 0:
                if (_resolveTransformFile is null)
                {
                    throw Invalid(where, "A Transform file can only be used from a migration file run by the module.");
                }

                try
                {
                    return new TransformOperation(_resolveTransformFile(path));
                }
                catch (MigrationException ex)
                {
                    throw Invalid(where, ex.Message);
                }

            default:
                throw Invalid(where, "Transform must be a script file path (beside the migration file) or a script block.");
        }
    }

    internal static FieldPath Path(IDictionary table, string key, string where, bool required = true)
    {
        TryGet(table, key, out var raw);
        if (raw is not string text || text.Trim().Length == 0)
        {
            throw Invalid(where, $"{key} must be a field path such as 'avatarUrl' or 'settings.theme'.");
        }

        try
        {
            return FieldPath.Parse(text);
        }
        catch (MigrationException ex)
        {
            throw Invalid(where, ex.Message);
        }
    }

    private static JToken Json(object? raw, string key, string where)
    {
        try
        {
            return PlainJson.FromObject(raw, key);
        }
        catch (MigrationException ex)
        {
            throw Invalid(where, ex.Message);
        }
    }

    private static bool Bool(object? raw, string key, string where) => raw switch
    {
        bool b => b,
        string s when bool.TryParse(s, out var parsed) => parsed,
        int i when i is 0 or 1 => i == 1,
        _ => throw Invalid(where, $"{key} must be $true or $false."),
    };

    public static bool TryGet(IDictionary table, string key, out object? value)
    {
        foreach (DictionaryEntry entry in table)
        {
            if (string.Equals(Convert.ToString(entry.Key, CultureInfo.InvariantCulture), key, StringComparison.OrdinalIgnoreCase))
            {
                value = entry.Value;
                return true;
            }
        }

        value = null;
        return false;
    }

    private static string RequiredString(IDictionary data, string key, string where)
    {
        if (!TryGet(data, key, out var raw) || raw is not string text || text.Trim().Length == 0)
        {
            throw Invalid(where, $"It has no {key} (a non-empty string).");
        }

        return text.Trim();
    }

    private static string? OptionalString(IDictionary data, string key, string where)
    {
        if (!TryGet(data, key, out var raw) || raw is null)
        {
            return null;
        }

        return raw as string ?? throw Invalid(where, $"{key} must be a string.");
    }

    public static void ValidateName(string? name, string? sourcePath)
    {
        if (!ResourceName.IsValid(name))
        {
            throw Invalid(sourcePath ?? name ?? "(no name)",
                $"'{name}' is not a valid migration name: 1–255 characters, no '/', '\\', '?', '#', no leading or trailing space.");
        }
    }

    /// <summary>A filter is a condition over <c>c</c>; it is run as the WHERE clause of a query and
    /// of a patch's filter predicate. Statement separators and comments could smuggle in a second
    /// clause, so they are refused; the service parses the rest and rejects what is not a condition.</summary>
    public static void ValidateFilter(string? filter, string target)
    {
        if (filter is null)
        {
            return;
        }

        if (filter.Contains(";") || filter.Contains("--") || filter.Contains("/*"))
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "InvalidFilter",
                $"The filter '{filter}' contains ';', '--' or '/*': a filter is one condition over c.", target,
                "Write a condition such as NOT IS_DEFINED(c.avatarUrl) or c.status = 'active'.");
        }

        var depth = 0;
        var inString = '\0';
        for (var i = 0; i < filter.Length; i++)
        {
            var ch = filter[i];
            if (inString != '\0')
            {
                if (ch == '\\')
                {
                    i++;
                }
                else if (ch == inString)
                {
                    inString = '\0';
                }

                continue;
            }

            if (ch is '\'' or '"')
            {
                inString = ch;
            }
            else if (ch == '(')
            {
                depth++;
            }
            else if (ch == ')' && --depth < 0)
            {
                break;
            }
        }

        if (depth != 0 || inString != '\0')
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "InvalidFilter",
                $"The filter '{filter}' has unbalanced parentheses or quotes.", target,
                "Write a condition such as NOT IS_DEFINED(c.avatarUrl) or c.status = 'active'.");
        }
    }

    public static MigrationException Invalid(string where, string why) =>
        new(MigrationErrorKind.InvalidDefinition, "InvalidMigrationDefinition", $"{where}: {why}", where,
            "Fix the migration definition; see Get-Help about_CosmosMigrations for the operations and their keys.");
}
