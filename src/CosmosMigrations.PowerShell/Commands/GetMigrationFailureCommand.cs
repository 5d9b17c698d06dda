using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Failures;
using CosmosMigrations.PowerShell.Infrastructure;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>Streams the documents a migration could not change, from the failure store, a page at
/// a time: each with its class, error, attempts and before-image (as a hashtable, as a transform
/// receives it).</summary>
[Cmdlet(VerbsCommon.Get, "MigrationFailure")]
[OutputType(typeof(MigrationFailure))]
public sealed class GetMigrationFailureCommand : ConnectedCmdlet
{
    private const int PageSize = 100;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(MigrationNameCompleter))]
    public string Name { get; set; } = "";

    [Parameter]
    public FailureClass[]? Class { get; set; }

    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int First { get; set; }

    protected override void ProcessRecord(MigrationConnection connection)
    {
        var left = First > 0 ? First : long.MaxValue;
        // One query a class (an indexed equality each), or one for every class.
        foreach (var failureClass in Class is { Length: > 0 } classes ? System.Array.ConvertAll(classes, c => (FailureClass?)c) : new FailureClass?[] { null })
        {
            using var reader = RunAsync(ct => FailureStore.OpenForMigrationAsync(connection, Name, failureClass, PageSize, ct));
            if (reader is null)
            {
                return;
            }

            while (left > 0 && RunAsync(ct => reader.ReadAsync(ct)) is { } page)
            {
                foreach (var entry in page)
                {
                    var failure = MigrationFailure.From(entry);
                    failure.BeforeImage = entry.BeforeImage is JObject image ? PlainJson.ToPlain(image) : null;
                    WriteObject(failure);
                    if (--left == 0)
                    {
                        return;
                    }
                }
            }
        }
    }
}
