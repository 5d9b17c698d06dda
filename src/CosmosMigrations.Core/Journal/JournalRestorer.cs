using System;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;
using CosmosMigrations.Requests;
using CosmosMigrations.Steps;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Journal;

/// <summary>What an undo's pages do with each journal entry: restore the document it names through
/// the <see cref="DocumentWriter"/> (a patch whose filter predicate checks, on the service, that the
/// document still holds what the migration wrote; or, when the entry needs it, a read and a replace
/// conditioned on the ETag), then remove the entry. An entry whose document is in conflict stays,
/// so that a later undo with -Force can still restore it.</summary>
internal sealed class JournalRestorer : IItemWriter
{
    private readonly TargetContainer _target;
    private readonly JournalStore _journal;
    private readonly ResilientSender _sender;
    private readonly bool _force;

    public JournalRestorer(TargetContainer target, JournalStore journal, ResilientSender sender, bool force)
    {
        _target = target;
        _journal = journal;
        _sender = sender;
        _force = force;
    }

    public async Task<WriteOutcome> WriteAsync(JObject item, CancellationToken cancellationToken)
    {
        if (Foreign(item) is { } foreign)
        {
            return foreign;
        }

        var entry = JournalEntry.FromJson(item);
        var unread = !_force && entry.CanRestoreUnread;
        JObject? document = unread ? entry.AsWritten() : await ReadAsync(entry, cancellationToken).ConfigureAwait(false);
        WriteOutcome outcome;
        if (document is null)
        {
            // Deleted since the migration: a conflict; forced, nothing to restore (never re-created).
            outcome = new WriteOutcome(_force ? WriteResult.Unchanged : WriteResult.Conflict, entry.Id, Describe(entry), "deleted since the migration");
        }
        else
        {
            var writer = new DocumentWriter(_target, Pass(entry), _sender, partialDocuments: unread);
            outcome = await writer.WriteAsync(document, cancellationToken).ConfigureAwait(false);
        }

        if (outcome.Result is WriteResult.Changed or WriteResult.Unchanged)
        {
            // Restored now, or found restored by an earlier run that stopped before this: done.
            await _journal.DeleteAsync(item, cancellationToken).ConfigureAwait(false);
        }

        return outcome;
    }

    public WriteOutcome Skip(JObject item) => new(WriteResult.Unchanged, (string?)item["id"] ?? "", Describe(JournalEntry.FromJson(item)));

    public async Task<ItemPreview> PreviewAsync(JObject item, CancellationToken cancellationToken)
    {
        if (Foreign(item) is { } foreign)
        {
            return new ItemPreview(foreign.Result, foreign.Id, foreign.PartitionKey, Error: foreign.Error);
        }

        var entry = JournalEntry.FromJson(item);
        var document = await ReadAsync(entry, cancellationToken).ConfigureAwait(false);
        if (document is null)
        {
            return new ItemPreview(_force ? WriteResult.Unchanged : WriteResult.Conflict, entry.Id, Describe(entry), Error: "deleted since the migration");
        }

        return await new DocumentWriter(_target, Pass(entry), _sender).PreviewAsync(document, cancellationToken).ConfigureAwait(false);
    }

    private DocumentPass Pass(JournalEntry entry) => new(new DocumentOperation[] { new RestoreOperation(entry, _force) }, null);

    private string Describe(JournalEntry entry) => _target.PartitionKey.Describe(entry.Key);

    /// <summary>An entry recorded for another container is never applied to this one.</summary>
    private WriteOutcome? Foreign(JObject item)
    {
        var container = (string?)item["container"];
        return string.Equals(container, _target.Name, StringComparison.Ordinal)
            ? null
            : new WriteOutcome(WriteResult.Failed, (string?)item["id"] ?? "", "", $"its journal entry belongs to container '{container}', not '{_target.Name}'");
    }

    private async Task<JObject?> ReadAsync(JournalEntry entry, CancellationToken cancellationToken)
    {
        var partitionKey = _target.PartitionKey.Read(entry.Key);
        using var response = await _sender.SendAsync(ct => _target.Container.ReadItemStreamAsync(entry.Id, partitionKey, cancellationToken: ct),
            $"Reading document '{entry.Id}'", cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }

        if (!response.IsSuccessStatusCode)
        {
            throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "ReadFailed", $"Reading document '{entry.Id}' failed.", entry.Id);
        }

        return DocumentJson.ReadObject(response.Content);
    }
}
