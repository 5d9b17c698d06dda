using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Journal;

namespace CosmosMigrations.Steps;

/// <summary>An undo's document step: reads the journal entries of one step of the migration (one
/// row per document of each journal record, in the journal container, range by range: a page of
/// the undo is -BatchSize documents, whatever the size of the records) and restores the documents
/// they name (<see cref="JournalRestorer"/>). Only records written before the undo began are read:
/// those it writes itself (the images of documents left alone) are for a later undo.</summary>
internal sealed class RestorePass : ScanStep
{
    private readonly JournalStore _journal;
    private readonly object _sync = new();
    private Task<bool>? _laterImages;

    /// <summary><paramref name="undoStartedAt"/>: when the undo began (epoch ms).</summary>
    public RestorePass(JournalStore journal, int step, bool force, long undoStartedAt)
    {
        _journal = journal;
        Step = step;
        Force = force;
        Before = undoStartedAt * 1000;
    }

    /// <summary>The step of the migration whose changes this pass undoes (0-based).</summary>
    public int Step { get; }

    /// <summary>Restore documents changed since the migration too.</summary>
    public bool Force { get; }

    /// <summary>Records of an order below this one were written before the undo began.</summary>
    public long Before { get; }

    /// <summary>The records of one step of a journal written before <paramref name="before"/>.</summary>
    public static string RecordCondition(JournalStore journal, int step, long before) =>
        $"{journal.Scope.Condition(step)} AND c.seq < {before.ToString(CultureInfo.InvariantCulture)}";

    public override string? ScanCondition => RecordCondition(_journal, Step, Before);

    /// <summary>Counts documents (the entries of the records), not records.</summary>
    public override string CountText => $"SELECT VALUE COUNT(1) FROM c JOIN e IN c.entries WHERE {ScanCondition}";

    /// <summary>Entries only disappear during an undo: a single scan sees them all.</summary>
    public override bool CanCatchUp => false;

    public override string Describe() =>
        $"restore the documents that step {(Step + 1).ToString(CultureInfo.InvariantCulture)} changed, from the journal{(Force ? " (-Force)" : "")}";

    public override JToken ToCanonical() => new JObject { ["op"] = "Restore", ["step"] = Step };

    internal override ScanPlan Plan(ScanContext context) =>
        new(_journal.Container,
            $"SELECT e AS entry, c.id AS record, c.seq AS seq, c.shapes AS shapes, c.container AS container FROM c JOIN e IN c.entries WHERE {ScanCondition}",
            new JournalRestorer(context.Target, _journal, context.Sender, Force, Step, Before, HasLaterImagesAsync));

    /// <summary>Whether any record of the step may hold a document's later image (asked once for
    /// the whole pass): only then does a page look for other images of its documents.</summary>
    private Task<bool> HasLaterImagesAsync(CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            return _laterImages ??= CountLateAsync(cancellationToken);
        }
    }

    private async Task<bool> CountLateAsync(CancellationToken cancellationToken)
    {
        var query = new QueryDefinition($"SELECT VALUE COUNT(1) FROM c WHERE {ScanCondition} AND c.late = true");
        using var iterator = _journal.Container.Container.GetItemQueryStreamIterator(query);
        long late = 0;
        while (iterator.HasMoreResults)
        {
            using var response = await _journal.SendAsync(ct => iterator.ReadNextAsync(ct), "Counting the journal records that may hold later images", cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                lock (_sync)
                {
                    _laterImages = null;
                }

                throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "ReadFailed",
                    $"Could not query the journal container '{_journal.Container.Name}'.", _journal.Container.Name);
            }

            late += DocumentJson.ReadPage(response.Content).Sum(t => (long)t);
        }

        return late > 0;
    }
}
