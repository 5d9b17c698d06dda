using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Journal;

namespace CosmosMigrations.Steps;

/// <summary>An undo's step after each <see cref="RestorePass"/>: removes the journal records that
/// pass read (written before the undo began). They stay until then because a record's image may
/// be needed to restore a document whose newer image is in another record. The images of
/// documents left alone were copied to records of their own during the undo, and stay. One delete
/// per record (a page of documents); a resumed undo deletes what is left.</summary>
internal sealed class JournalCleanupStep : MigrationStep, IContainerStep
{
    private readonly JournalStore _journal;

    public JournalCleanupStep(JournalStore journal, int step, long undoStartedAt)
    {
        _journal = journal;
        Step = step;
        Before = undoStartedAt * 1000;
    }

    /// <summary>The step of the migration whose records go (0-based).</summary>
    public int Step { get; }

    /// <summary>Records of an order below this one were written before the undo began.</summary>
    public long Before { get; }

    public override string Describe() =>
        $"remove the journal records of step {(Step + 1).ToString(CultureInfo.InvariantCulture)} (restored)";

    public override JToken ToCanonical() => new JObject { ["op"] = "RemoveJournalRecords", ["step"] = Step };

    public async Task ExecuteAsync(ContainerStepContext context, CancellationToken cancellationToken)
    {
        var container = _journal.Container.Container;
        var query = new QueryDefinition($"SELECT c.id, c.pk FROM c WHERE {RestorePass.RecordCondition(_journal, Step, Before)}");
        var removed = 0;
        using var iterator = container.GetItemQueryStreamIterator(query, null, new QueryRequestOptions { MaxItemCount = 1000 });
        while (iterator.HasMoreResults)
        {
            List<JObject> records;
            using (var page = await _journal.SendAsync(ct => iterator.ReadNextAsync(ct), "Listing the journal records to remove", cancellationToken).ConfigureAwait(false))
            {
                if (!page.IsSuccessStatusCode)
                {
                    throw CosmosErrors.Wrap(CosmosErrors.FromResponse(page), MigrationErrorKind.ServiceError, "ReadFailed",
                        $"Could not list the journal records of '{_journal.Scope.Migration}' in '{_journal.Container.Name}'.", _journal.Container.Name);
                }

                records = DocumentJson.ReadPage(page.Content).OfType<JObject>().ToList();
            }

            await Task.WhenAll(records.Select(r => DeleteAsync((string)r["id"]!, (string?)r["pk"], cancellationToken))).ConfigureAwait(false);
            removed += records.Count;
        }

        context.Log?.Invoke($"{Describe()}: {removed.ToString(CultureInfo.InvariantCulture)} record(s) removed.");
    }

    public Task<string> PreviewAsync(TargetContainer target, CancellationToken cancellationToken) =>
        Task.FromResult($"Would {Describe()}.");

    private async Task DeleteAsync(string id, string? pk, CancellationToken cancellationToken)
    {
        using var response = await _journal.SendAsync(ct => _journal.Container.Container.DeleteItemStreamAsync(id, new PartitionKey(pk), cancellationToken: ct),
            $"Removing the journal record '{id}'", cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode && response.StatusCode != HttpStatusCode.NotFound)
        {
            throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "JournalWriteFailed",
                $"Could not remove the journal record '{id}' (restored) from '{_journal.Container.Name}'.", id, "Start the undo again: it resumes from its checkpoint.");
        }
    }
}
