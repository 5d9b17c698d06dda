using CosmosMigrations.Definitions;
using CosmosMigrations.Errors;
using CosmosMigrations.PowerShell.Infrastructure;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>Validates migration files statically, with no connection: syntax, known operations
/// and keys, types, transform scripts that parse, duplicate names. One result per file.</summary>
[Cmdlet(VerbsDiagnostic.Test, "MigrationFile")]
[OutputType(typeof(MigrationFileResult))]
public sealed class TestMigrationFileCommand : PSCmdlet
{
    private readonly List<string> _paths = new();

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    protected override void ProcessRecord() => _paths.AddRange(Path);

    protected override void EndProcessing()
    {
        var errors = new List<ErrorRecord>();
        var files = MigrationFiles.Expand(this, _paths, errors);
        errors.ForEach(WriteError);
        var results = files.Select(Check).ToList();
        foreach (var duplicate in results.Where(r => r.Name is not null).GroupBy(r => r.Name, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            foreach (var result in duplicate)
            {
                result.AddProblem($"Migration name '{duplicate.Key}' is used by {duplicate.Count()} files: {string.Join(", ", duplicate.Select(d => System.IO.Path.GetFileName(d.Path)))}.");
            }
        }

        results.ForEach(WriteObject);
    }

    private static MigrationFileResult Check(string file)
    {
        var result = new MigrationFileResult(file);
        try
        {
            var definition = MigrationFiles.ReadStatically(file);
            result.Name = definition.Name;
            result.Container = definition.Container;
            result.Steps = definition.Steps.Select(s => s.Describe()).ToArray();
            result.Checksum = definition.Checksum;
        }
        catch (MigrationException ex)
        {
            result.AddProblem(ex.Message);
            try
            {
                // Still say which migration it is, when the file gets that far.
                var data = MigrationFiles.ReadData(file);
                result.Name ??= DefinitionParser.TryGet(data, "Name", out var name) ? name as string : null;
                result.Container ??= DefinitionParser.TryGet(data, "Container", out var container) ? container as string : null;
            }
            catch (MigrationException)
            {
            }
        }

        return result;
    }
}

/// <summary>The verdict on one migration file.</summary>
public sealed class MigrationFileResult
{
    private readonly List<string> _problems = new();

    public MigrationFileResult(string path)
    {
        Path = path;
    }

    public string Path { get; }

    public string? Name { get; set; }

    public string? Container { get; set; }

    public bool Valid => _problems.Count == 0;

    public string[] Problems => _problems.ToArray();

    public string[] Steps { get; set; } = Array.Empty<string>();

    public string? Checksum { get; set; }

    internal void AddProblem(string problem) => _problems.Add(problem);

    public override string ToString() => $"{System.IO.Path.GetFileName(Path)}: {(Valid ? "valid" : string.Join("; ", _problems))}";
}
