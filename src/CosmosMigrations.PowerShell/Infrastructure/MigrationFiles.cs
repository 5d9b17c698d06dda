using System.Collections.ObjectModel;
using System.IO;
using System.Management.Automation.Language;
using CosmosMigrations.Definitions;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;

namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>Finds and loads migration files (.psd1 data files; a folder's run in name order). A
/// data file is parsed, never executed: only literal values are accepted, as Import-PowerShellDataFile does.</summary>
internal static class MigrationFiles
{
    /// <summary>Expands paths (files, folders, wildcards) into .psd1 files, folders' files in ordinal name order.</summary>
    public static List<string> Expand(PSCmdlet cmdlet, IEnumerable<string> paths, List<ErrorRecord> errors)
    {
        var files = new List<string>();
        foreach (var path in paths)
        {
            Collection<string> resolved;
            try
            {
                resolved = cmdlet.GetResolvedProviderPathFromPSPath(path, out _);
            }
            catch (Exception ex) when (ex is ItemNotFoundException or System.Management.Automation.DriveNotFoundException or ProviderNotFoundException)
            {
                errors.Add(ErrorRecords.Create(MigrationErrorKind.InvalidArgument, "MigrationPathNotFound", $"'{path}' does not exist.", path,
                    "Pass a migration file (.psd1) or a folder of them."));
                continue;
            }

            foreach (var item in resolved)
            {
                if (Directory.Exists(item))
                {
                    files.AddRange(Directory.GetFiles(item, "*.psd1").OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal));
                }
                else if (File.Exists(item))
                {
                    files.Add(item);
                }
            }
        }

        return files.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Parses a data file into its hashtable, or throws InvalidDefinition naming the line.</summary>
    public static Hashtable ReadData(string path)
    {
        var ast = Parser.ParseFile(path, out _, out var parseErrors);
        if (parseErrors.Length > 0)
        {
            var first = parseErrors[0];
            throw DefinitionParser.Invalid(path, $"line {first.Extent.StartLineNumber}: {first.Message}");
        }

        var table = ast.EndBlock?.Statements.Count == 1 ? ast.Find(a => a is HashtableAst, false) as HashtableAst : null;
        if (table is null || ast.BeginBlock is not null || ast.ProcessBlock is not null)
        {
            throw DefinitionParser.Invalid(path, "A migration file holds one hashtable: @{ Name = '…'; Container = '…'; Operations = @( … ) }.");
        }

        try
        {
            return (Hashtable)table.SafeGetValue();
        }
        catch (InvalidOperationException ex)
        {
            throw DefinitionParser.Invalid(path, $"It may hold only literal values (strings, numbers, $true/$false/$null, arrays, hashtables): {ex.Message}");
        }
    }

    /// <summary>Loads and validates every file; duplicate names are an error. Nothing is run.</summary>
    public static List<MigrationDefinition> Load(IReadOnlyList<string> files, Func<string, string, TransformFunction> transformFromFile, List<ErrorRecord> errors)
    {
        var definitions = new List<MigrationDefinition>();
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            try
            {
                var parser = new DefinitionParser(relative => transformFromFile(file, relative));
                var definition = parser.ParseFile(ReadData(file), file);
                if (names.TryGetValue(definition.Name, out var other))
                {
                    throw DefinitionParser.Invalid(file, $"Migration name '{definition.Name}' is already used by {other}: names must be unique.");
                }

                names[definition.Name] = file;
                definitions.Add(definition);
            }
            catch (MigrationException ex)
            {
                errors.Add(ErrorRecords.From(ex));
            }
        }

        return definitions;
    }

    /// <summary>Parses a migration file without running anything: Transform scripts are read
    /// (their text is part of the checksum) and checked to parse, but never executed. For
    /// Get-MigrationStatus -Path and Test-MigrationFile.</summary>
    public static MigrationDefinition ReadStatically(string file) =>
        new DefinitionParser(relative => StaticTransform(file, relative)).ParseFile(ReadData(file), file);

    private static TransformFunction StaticTransform(string file, string relative)
    {
        var full = ResolveTransformPath(file, relative);
        var text = File.ReadAllText(full);
        Parser.ParseInput(text, out _, out var parseErrors);
        if (parseErrors.Length > 0)
        {
            throw new MigrationException(MigrationErrorKind.InvalidDefinition, "TransformSyntaxError",
                $"Transform script '{relative}' does not parse: line {parseErrors[0].Extent.StartLineNumber}: {parseErrors[0].Message}", full);
        }

        return new TransformFunction(Path.GetFileName(full), text, (_, _) => System.Threading.Tasks.Task.FromResult<Newtonsoft.Json.Linq.JObject?>(null));
    }

    /// <summary>Resolves a Transform script beside the migration file (no escaping the folder tree by '..').</summary>
    public static string ResolveTransformPath(string migrationFile, string relative)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(migrationFile))!;
        var full = Path.GetFullPath(Path.Combine(folder, relative));
        if (!full.StartsWith(folder + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new MigrationException(MigrationErrorKind.InvalidDefinition, "TransformOutsideFolder",
                $"Transform '{relative}' is outside the migration's folder.", relative, "Keep transform scripts beside (or below) the migration files.");
        }

        if (!File.Exists(full))
        {
            throw new MigrationException(MigrationErrorKind.InvalidDefinition, "TransformNotFound",
                $"Transform script '{relative}' was not found (looked for {full}).", relative, "Put the script beside the migration file.");
        }

        return full;
    }
}
