using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Management.Automation;
using CosmosMigrations.Definitions;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;
using CosmosMigrations.PowerShell.Infrastructure;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>The primitive under every migration: changes the documents a filter selects, tracked
/// and resumable under a name.</summary>
[Cmdlet(VerbsLifecycle.Invoke, "Backfill", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(MigrationStatus), typeof(MigrationPreview))]
public sealed class InvokeBackfillCommand : MigrationRunCommandBase
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ContainerNameCompleter))]
    public string? Container { get; set; }

    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(MigrationNameCompleter))]
    public string? Name { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Filter { get; set; }

    [Parameter]
    [ValidateNotNull]
    public Hashtable? Set { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? Unset { get; set; }

    [Parameter]
    [ValidateNotNull]
    public Hashtable? Rename { get; set; }

    [Parameter]
    [ValidateNotNull]
    public ScriptBlock? ScriptBlock { get; set; }

    protected override void ProcessRecord()
    {
        MigrationDefinition definition;
        try
        {
            definition = DefinitionParser.Backfill(Name!, Container!, BuildOperations(), Filter);
        }
        catch (MigrationException ex)
        {
            WriteError(ErrorRecords.From(ex));
            return;
        }

        Connection.MigrationConnection connection;
        try
        {
            connection = Session.Resolve(Context);
        }
        catch (MigrationException ex)
        {
            WriteError(ErrorRecords.From(ex));
            return;
        }

        RunMigrations(connection, new[] { definition });
    }

    private List<DocumentOperation> BuildOperations()
    {
        var operations = new List<DocumentOperation>();
        foreach (DictionaryEntry entry in Rename ?? new Hashtable())
        {
            var to = PowerShellValues.Unwrap(entry.Value) as string
                ?? throw new MigrationException(MigrationErrorKind.InvalidArgument, "InvalidRename", $"-Rename maps '{entry.Key}' to a non-string.", entry.Key,
                    "Write -Rename @{ oldName = 'newName' }.");
            operations.Add(new RenameFieldOperation(FieldPath.Parse(Key(entry)), FieldPath.Parse(to), keepSource: false));
        }

        foreach (DictionaryEntry entry in Set ?? new Hashtable())
        {
            operations.Add(new SetFieldOperation(FieldPath.Parse(Key(entry)), PlainJson.FromObject(PowerShellValues.Unwrap(entry.Value), Key(entry))));
        }

        foreach (var field in Unset ?? Array.Empty<string>())
        {
            operations.Add(new RemoveFieldOperation(FieldPath.Parse(field)));
        }

        if (ScriptBlock is not null)
        {
            operations.Add(new TransformOperation(TransformFromScriptBlock(ScriptBlock, "-ScriptBlock", ScriptBlock.ToString())));
        }

        return operations;
    }

    private static string Key(DictionaryEntry entry) => Convert.ToString(PowerShellValues.Unwrap(entry.Key), CultureInfo.InvariantCulture) ?? string.Empty;
}
