using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Operations;
using CosmosMigrations.PowerShell.Infrastructure;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>Counts, server-side, the documents that lack a required field of a required type,
/// with a few sample ids: the gate before a field becomes required or an old one is dropped.</summary>
[Cmdlet(VerbsDiagnostic.Test, "SchemaConformance")]
[OutputType(typeof(ConformanceResult))]
public sealed class TestSchemaConformanceCommand : ConnectedCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ContainerNameCompleter))]
    public string? Container { get; set; }

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNull]
    public IDictionary? Require { get; set; }

    [Parameter]
    [ValidateRange(0, 100)]
    public int SampleSize { get; set; } = 5;

    protected override void ProcessRecord(MigrationConnection connection)
    {
        var target = RunAsync(ct => connection.GetContainerAsync(Container!, ct));
        foreach (DictionaryEntry rule in Require!)
        {
            var field = FieldPath.Parse(Convert.ToString(PowerShellValues.Unwrap(rule.Key), CultureInfo.InvariantCulture));
            var type = ConformanceChecker.NormaliseType(Convert.ToString(PowerShellValues.Unwrap(rule.Value), CultureInfo.InvariantCulture), $"-Require {field}");
            WriteObject(RunAsync(ct => ConformanceChecker.CheckAsync(target, field, type, SampleSize, ct)));
        }
    }
}
