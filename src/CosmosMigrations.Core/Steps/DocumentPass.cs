using CosmosMigrations.Documents;
using CosmosMigrations.Operations;

namespace CosmosMigrations.Steps;

/// <summary>One pass over the container applying several document operations together (so a
/// migration with three field changes reads each document once). The pass reads the documents
/// that <see cref="ScanCondition"/> selects: the user's filter, else the operations' own
/// conditions OR-ed, else every document.</summary>
internal sealed class DocumentPass : ScanStep
{
    public DocumentPass(IReadOnlyList<DocumentOperation> operations, string? filter)
    {
        Operations = operations;
        Filter = string.IsNullOrWhiteSpace(filter) ? null : filter!.Trim();
        if (Filter is not null)
        {
            _scanCondition = Filter;
        }
        else if (operations.All(o => o.SelectionCondition is not null))
        {
            var conditions = operations.Select(o => o.SelectionCondition!).Distinct().ToList();
            _scanCondition = conditions.Count == 1 ? conditions[0] : "(" + string.Join(" OR ", conditions) + ")";
        }

        if (operations.All(o => o.Fields is not null))
        {
            Properties = operations.SelectMany(o => o.Fields!).Select(f => f.Segments[0]).Distinct(System.StringComparer.Ordinal).ToList();
        }
    }

    public IReadOnlyList<DocumentOperation> Operations { get; }

    /// <summary>The user's own condition (Invoke-Backfill -Filter), if any.</summary>
    public string? Filter { get; }

    private readonly string? _scanCondition;

    /// <summary>The WHERE condition of the scan, or null to read every document.</summary>
    public override string? ScanCondition => _scanCondition;

    /// <summary>Whether catch-up scans can find documents written behind the cursor: without a
    /// condition, a catch-up scan cannot tell what is left (it would read everything again).</summary>
    public override bool CanCatchUp => ScanCondition is not null;

    /// <summary>The top-level properties the operations read or write (a nested field brings its
    /// whole top-level subtree), or null when one of them needs the whole document.</summary>
    public IReadOnlyList<string>? Properties { get; }

    /// <summary>Whether the pass's undo is exact by recomputation: every operation adds a field with
    /// a constant where the document had none, so the journal keeps no before-image, only each
    /// document's id and partition key (and the change, once a record: <see cref="Journal.PageRecord"/>).</summary>
    public bool UndoRecomputes => Operations.All(o => o is AddFieldOperation { Value: not null });

    /// <summary>Reads whole documents (dry runs show them before and after).</summary>
    public string QueryText => ScanCondition is null ? "SELECT * FROM c" : $"SELECT * FROM c WHERE {ScanCondition}";

    /// <summary>The query of a migrating scan. When every operation names its fields, only those
    /// properties, the id, the ETag and the partition key travel: the service serialises, and the
    /// client parses, a fraction of each document (and a write never needs more: a change that
    /// would need the whole document reads it first, see <see cref="DocumentWriter"/>).</summary>
    public string ScanQueryText(IEnumerable<FieldPath> partitionKeyPaths) =>
        ReadProperties(partitionKeyPaths) is { } names ? Projected(names) : QueryText;

    private string Projected(IEnumerable<string> names)
    {
        var projection = "SELECT VALUE {" + string.Join(", ", names.Select(n => $"{FieldPath.SqlLiteral(n)}: c[{FieldPath.SqlLiteral(n)}]")) + "} FROM c";
        return ScanCondition is null ? projection : $"{projection} WHERE {ScanCondition}";
    }

    /// <summary>The top-level properties a migrating read needs (the id, the ETag, the partition
    /// key and the operations' fields), or null when it must read whole documents: an operation
    /// needs the whole document, or the run keeps before-images of fields it removes (their place
    /// among the document's properties is part of the before-image). A scan asks the service for
    /// these; a change feed worker, which gets whole documents, builds only these.</summary>
    public IReadOnlyList<string>? ReadProperties(IEnumerable<FieldPath> partitionKeyPaths, bool journaled = false) =>
        Properties is null || (journaled && Operations.Any(o => o.RemovesFields))
            ? null
            : new[] { "id", "_etag" }.Concat(partitionKeyPaths.Select(p => p.Segments[0])).Concat(Properties).Distinct(System.StringComparer.Ordinal).ToList();

    /// <summary>Reads the target. A run reads only the properties the operations touch
    /// (<see cref="ReadProperties"/>), unless it previews (a dry run shows whole documents).</summary>
    internal override ScanPlan Plan(ScanContext context)
    {
        var journal = context.Preview ? null : context.Journal;
        var names = context.Preview ? null : ReadProperties(context.Target.PartitionKey.Paths, journal is not null);
        var writer = new DocumentWriter(context.Target, this, context.Sender, partialDocuments: names is not null, journal: journal, step: context.Step);
        var query = names is null ? QueryText : Projected(names);
        var journaled = journal is not null;
        return new ScanPlan(context.Target, query, writer, journaled, journaled && UndoRecomputes);
    }

    public override string Describe() => string.Join("; ", Operations.Select(o => o.Describe()));

    public override JToken ToCanonical() => new JObject
    {
        ["pass"] = new JArray(Operations.Select(o => o.ToCanonical())),
        ["filter"] = Filter,
    };
}
