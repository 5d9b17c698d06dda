using System.Collections.Specialized;
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
public sealed class InvokeBackfillCommand : ForwardRunCommandBase
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
            var transform = ScriptBlock is null ? null : TransformFromScriptBlock(ScriptBlock, "-ScriptBlock", ScriptBlock.ToString());
            definition = DefinitionParser.Backfill(Name!, Container!, Filter, Plain(Set), Unset, Plain(Rename), transform);
        }
        catch (MigrationException ex)
        {
            WriteError(ErrorRecords.From(ex));
            return;
        }

        Connected(connection => RunMigrations(connection, new[] { definition }));
    }

    /// <summary>The hashtable with PowerShell's wrappers taken off its keys and values.</summary>
    private static OrderedDictionary? Plain(Hashtable? table)
    {
        if (table is null)
        {
            return null;
        }

        var plain = new OrderedDictionary();
        foreach (DictionaryEntry entry in table)
        {
            plain[Convert.ToString(PowerShellValues.Unwrap(entry.Key), CultureInfo.InvariantCulture) ?? string.Empty] = PowerShellValues.Unwrap(entry.Value);
        }

        return plain;
    }
}
