using System.IO;
using CosmosMigrations.Definitions;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;
using CosmosMigrations.PowerShell.Infrastructure;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>Runs migrations, from files (a folder's pending ones in name order) or inline, to
/// completion or until a time slice ends; emits one status object per migration.</summary>
[Cmdlet(VerbsLifecycle.Start, "SchemaMigration", DefaultParameterSetName = PathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(MigrationStatus), typeof(MigrationPreview))]
public sealed class StartSchemaMigrationCommand : ForwardRunCommandBase
{
    private const string PathSet = "Path";
    private const string InlineSet = "Inline";
    private readonly List<string> _paths = new();
    private readonly List<string> _names = new();

    /// <summary>Not mandatory: without it, -Name resumes an inline migration or a backfill (whose
    /// status, piped in, has no file) from the definition its tracking document keeps.</summary>
    [Parameter(ParameterSetName = PathSet, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [AllowNull]
    [AllowEmptyString]
    [AllowEmptyCollection]
    public string[]? Path { get; set; }

    [Parameter(ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = InlineSet, Mandatory = true)]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(MigrationNameCompleter))]
    public string? Name { get; set; }

    [Parameter(ParameterSetName = InlineSet, Mandatory = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ContainerNameCompleter))]
    public string? Container { get; set; }

    [Parameter(ParameterSetName = InlineSet, Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public Hashtable[] Operation { get; set; } = Array.Empty<Hashtable>();

    [Parameter(ParameterSetName = InlineSet)]
    public string? Description { get; set; }

    /// <summary>A completed migration whose file changed is an error instead of a warning.</summary>
    [Parameter(ParameterSetName = PathSet)]
    public SwitchParameter Strict { get; set; }

    protected override bool StrictChecksum => Strict;

    protected override void ProcessRecord()
    {
        if (ParameterSetName == PathSet)
        {
            var paths = (Path ?? Array.Empty<string>()).Where(p => !string.IsNullOrEmpty(p)).ToList();
            if (paths.Count == 0)
            {
                // A status without a file (an inline migration's, a backfill's): resume it by name.
                if (Name is null)
                {
                    WriteError(ErrorRecords.From(new MigrationException(MigrationErrorKind.InvalidArgument, "PathMissing",
                        "No migration file was given.", "Path", "Pass -Path (a .psd1 file or a folder), or -Name to resume an inline migration or a backfill.")));
                    return;
                }

                Resume(Name);
                return;
            }

            // Collected over the pipeline; run once, in order, in EndProcessing.
            _paths.AddRange(paths);
            if (Name is not null)
            {
                _names.Add(Name);
            }

            return;
        }

        MigrationDefinition definition;
        try
        {
            var operations = Operation.Select(o => (object?)Normalise(o)).ToList();
            definition = new DefinitionParser().ParseInline(Name!, Container!, Description, operations);
        }
        catch (MigrationException ex)
        {
            WriteError(ErrorRecords.From(ex));
            return;
        }

        Run(new[] { definition });
    }

    protected override void EndProcessing()
    {
        if (ParameterSetName != PathSet || _paths.Count == 0)
        {
            return;
        }

        var errors = new List<ErrorRecord>();
        var files = MigrationFiles.Expand(this, _paths, errors);
        var definitions = MigrationFiles.Load(files, TransformFromFile, errors);
        if (_names.Count > 0)
        {
            var patterns = _names.Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToList();
            definitions = definitions.Where(d => patterns.Any(p => p.IsMatch(d.Name))).ToList();
        }

        if (errors.Count > 0)
        {
            // Every problem is reported before anything is written.
            foreach (var error in errors)
            {
                WriteError(error);
            }

            return;
        }

        if (files.Count == 0 || definitions.Count == 0)
        {
            WriteWarning(files.Count == 0 ? "No migration files (*.psd1) were found." : "No migration matches -Name.");
            return;
        }

        Run(definitions);
    }

    /// <summary>An inline migration or a backfill again, from the definition its tracking
    /// document keeps: it resumes from its checkpoint (or, completed, is skipped as any start is).</summary>
    private void Resume(string name) =>
        Connected(connection =>
        {
            var tracked = RunAsync(ct => TrackingStore.Of(connection).GetRequiredAsync(name, ct));
            if (MoveRecord.Of(tracked) is { } move)
            {
                throw MoveRecord.IsAMove(name, move, "Start-SchemaMigration");
            }

            if (tracked.Definition is null)
            {
                throw tracked.Source is { Length: > 0 } source
                    ? new MigrationException(MigrationErrorKind.InvalidArgument, "ResumeFromFile",
                        $"Migration '{name}' was started from the file '{source}': it resumes from that file.", name,
                        $"Run Start-SchemaMigration -Path '{source}' (or pipe its status: Get-MigrationStatus -Name '{name}' | Start-SchemaMigration).")
                    : new MigrationException(MigrationErrorKind.InvalidState, "DefinitionNotStored",
                        $"Migration '{name}' has no definition in its tracking document (it was started by an older version of the module), so it cannot resume by name.", name,
                        "Run the original Start-SchemaMigration -Operation or Invoke-Backfill command again with the same name: it resumes from the checkpoint.");
            }

            var definition = tracked.Definition.ToDefinition(tracked.Name, tracked.Container);
            RunAsync(ct => connection.GetContainerAsync(definition.Container, ct));
            RunMigrations(connection, new[] { definition });
        });

    private void Run(IReadOnlyList<MigrationDefinition> definitions) =>
        Connected(connection =>
        {
            // A missing container is an error before anything runs, not half-way through a folder.
            foreach (var container in definitions.Select(d => d.Container).Distinct())
            {
                RunAsync(ct => connection.GetContainerAsync(container, ct));
            }

            RunMigrations(connection, definitions);
        });

    private Hashtable Normalise(Hashtable operation)
    {
        var copy = new Hashtable(StringComparer.OrdinalIgnoreCase);
        foreach (DictionaryEntry entry in operation)
        {
            var key = entry.Key?.ToString() ?? string.Empty;
            var value = entry.Value is PSObject wrapped ? wrapped.BaseObject : entry.Value;
            copy[key] = value is ScriptBlock script && string.Equals(key, "Transform", StringComparison.OrdinalIgnoreCase)
                ? TransformFromScriptBlock(script, "inline script block", script.ToString())
                : PowerShellValues.Unwrap(value);
        }

        return copy;
    }

    private TransformFunction TransformFromFile(string migrationFile, string relative)
    {
        var full = MigrationFiles.ResolveTransformPath(migrationFile, relative);
        var text = File.ReadAllText(full);
        ScriptBlock script;
        try
        {
            script = ScriptBlock.Create(text);
        }
        catch (ParseException ex)
        {
            throw new MigrationException(MigrationErrorKind.InvalidDefinition, "TransformSyntaxError", $"Transform script '{relative}' does not parse: {ex.Message}", full);
        }

        return TransformFromScriptBlock(script, System.IO.Path.GetFileName(full), text);
    }
}
