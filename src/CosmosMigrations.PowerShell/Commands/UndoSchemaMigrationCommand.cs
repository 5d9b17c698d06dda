using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Errors;
using CosmosMigrations.Moving;
using CosmosMigrations.PowerShell.Infrastructure;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>Returns the documents a migration changed to exactly what they were, from the
/// before-images its runs kept; by name, or a folder's migrations in reverse name order (down to
/// -To). Documents changed since the migration are left alone unless -Force.</summary>
[Cmdlet(VerbsCommon.Undo, "SchemaMigration", DefaultParameterSetName = NameSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(MigrationStatus), typeof(MigrationPreview))]
public sealed class UndoSchemaMigrationCommand : MigrationRunCommandBase
{
    private const string NameSet = "Name";
    private const string PathSet = "Path";

    [Parameter(ParameterSetName = NameSet, Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(MigrationNameCompleter))]
    public string? Name { get; set; }

    [Parameter(ParameterSetName = PathSet, Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    /// <summary>Undo the folder's migrations after this one (it stays).</summary>
    [Parameter(ParameterSetName = PathSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(MigrationNameCompleter))]
    public string? To { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == NameSet)
        {
            Connected(connection =>
            {
                var tracked = RunAsync(ct => TrackingStore.Of(connection).GetRequiredAsync(Name!, ct));
                if (MoveUndo.Check(tracked) is { } move)
                {
                    UndoMove(connection, move);
                    return;
                }

                RunEach(connection, new[] { Item(tracked.Name, tracked.Container, tracked.Processed, fileContainer: null) });
            });
            return;
        }

        var errors = new List<ErrorRecord>();
        var definitions = new List<MigrationDefinition>();
        foreach (var file in MigrationFiles.Expand(this, Path, errors))
        {
            try
            {
                definitions.Add(MigrationFiles.ReadStatically(file));
            }
            catch (MigrationException ex)
            {
                errors.Add(ErrorRecords.From(ex));
            }
        }

        if (errors.Count > 0)
        {
            // Every problem is reported before anything is written.
            errors.ForEach(WriteError);
            return;
        }

        var from = 0;
        if (To is not null)
        {
            from = definitions.FindIndex(d => string.Equals(d.Name, To, StringComparison.Ordinal)) + 1;
            if (from == 0)
            {
                WriteError(ErrorRecords.Create(MigrationErrorKind.InvalidArgument, "UndoTargetNotFound",
                    $"'{To}' is not a migration of {string.Join(", ", Path)}: -To names the migration to undo down to (it stays).", To,
                    "Use the name of one of the folder's migrations (Get-MigrationStatus -Path lists them)."));
                return;
            }
        }

        var candidates = definitions.Skip(from).Reverse().ToList();
        if (candidates.Count == 0)
        {
            WriteWarning(definitions.Count == 0 ? "No migration files (*.psd1) were found." : $"No migration comes after '{To}': nothing to undo.");
            return;
        }

        Connected(connection =>
        {
            var items = new List<RunItem>();
            foreach (var definition in candidates)
            {
                var tracked = RunAsync(ct => TrackingStore.Of(connection).GetAsync(definition.Name, ct));
                if (tracked is null)
                {
                    WriteVerbose($"'{definition.Name}' has never run: nothing to undo.");
                    continue;
                }

                items.Add(Item(definition.Name, tracked.Container, tracked.Processed, definition.Container));
            }

            RunEach(connection, items);
        });
    }

    /// <summary>A move before its cut-over: its target (when the move created it), leases and
    /// tracking state are deleted; -WhatIf reads nothing more and deletes nothing.</summary>
    private void UndoMove(MigrationConnection connection, MoveRecord move)
    {
        var target = move.CreatedTarget ? $"container '{move.Target}' (move '{Name}' of '{move.Source}')" : $"move '{Name}' of '{move.Source}' to '{move.Target}'";
        var action = move.CreatedTarget
            ? "Undo the move: delete the target container it created with every document copied, its change feed leases and its tracking state"
            : "Undo the move: delete its change feed leases and its tracking state (the target was not created by the move and stays)";
        if (!ShouldProcess(target, action))
        {
            return;
        }

        var undo = new MoveUndo(connection) { Log = Verbose };
        WriteObject(RunAsync(ct => undo.UndoAsync(Name!, LeaseDuration, ct)));
    }

    /// <summary>One undo: by name, or for a file (whose container must be the one it ran on).</summary>
    private RunItem Item(string name, string container, long processed, string? fileContainer) => new(
        name,
        $"container '{container}' (migration '{name}')",
        $"Undo: restore the documents it changed ({processed} counted by its last run) from their before-images{(Force ? ", overwriting changes made since" : "")}",
        TrackingStatus.Undone,
        (runner, options, progress, ct) => runner.UndoAsync(name, fileContainer, options, progress, ct),
        (runner, options, progress, ct) => runner.PreviewUndoAsync(name, fileContainer, options, progress, ct));
}
