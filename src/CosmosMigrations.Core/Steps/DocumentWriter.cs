using System;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Journal;
using CosmosMigrations.Operations;
using CosmosMigrations.Requests;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Steps;

public enum WriteResult
{
    Unchanged,
    Changed,
    Failed,

    /// <summary>Left alone: it changed since the change being reverted (an undo's restore).</summary>
    Conflict,
}

/// <summary>What happened to one document.</summary>
public sealed record WriteOutcome(WriteResult Result, string Id, string PartitionKey, string? Error = null)
{
    /// <summary>The document's ETag after this write changed it (null when it did not).</summary>
    public string? ETagAfter { get; init; }
}

/// <summary>Applies a pass's operations to one document and writes the result safely against
/// concurrent application writers:
/// <list type="bullet">
/// <item>a patch (only the changed fields) whose filter predicate is the user's filter AND each
/// operation's "still needed" guard — a document that no longer needs the change is left alone
/// (412 = nothing to do), so a re-run can never apply a change twice;</item>
/// <item>when a value was computed from the document (copy, template, rename, convert), the patch
/// is also conditioned on the ETag; on conflict the document is read again and re-planned;</item>
/// <item>a transform (or more than 10 field changes) is a replace conditioned on the ETag, retried
/// from a fresh read on conflict.</item>
/// </list>
/// With a journal, the document's before-image is made durable first, before every attempt: a
/// crash between the two can leave a before-image without its change, never a change without its
/// before-image.</summary>
public sealed class DocumentWriter : IItemWriter
{
    private const int MaxConflictRetries = 8;

    private readonly TargetContainer _target;
    private readonly DocumentPass _pass;
    private readonly ResilientSender _sender;
    private readonly bool _partialDocuments;
    private readonly bool _filterUnchecked;
    private readonly JournalStore? _journal;
    private readonly int _step;

    /// <summary>With <paramref name="partialDocuments"/>, the documents come from
    /// <see cref="DocumentPass.ScanQueryText"/> and hold only some properties: a change that must
    /// replace the whole document then reads it whole first, so that a replace can never drop
    /// what the scan did not fetch. With <paramref name="filterUnchecked"/>, the documents did not
    /// come from a query of the pass's filter (the change feed delivers every document): a patch
    /// carries the filter in its predicate anyway, and a replace asks the service first whether
    /// the document matches it. With <paramref name="journal"/>, every change is journaled (as step
    /// <paramref name="step"/> of its migration) before it is written.</summary>
    public DocumentWriter(TargetContainer target, DocumentPass pass, ResilientSender sender, bool partialDocuments = false, bool filterUnchecked = false,
        JournalStore? journal = null, int step = 0)
    {
        _target = target;
        _pass = pass;
        _sender = sender;
        _partialDocuments = partialDocuments;
        _filterUnchecked = filterUnchecked && pass.Filter is not null;
        _journal = journal;
        _step = step;
    }

    /// <summary>Plans the change to a document without writing (dry runs and samples).</summary>
    public async Task<DocumentEdit> PlanAsync(JObject document, CancellationToken cancellationToken)
    {
        var edit = new DocumentEdit(document);
        foreach (var operation in _pass.Operations)
        {
            await operation.ApplyAsync(edit, cancellationToken).ConfigureAwait(false);
        }

        return edit;
    }

    public Task<WriteOutcome> WriteAsync(JObject document, CancellationToken cancellationToken) => WriteAsync(document, null, cancellationToken);

    /// <summary>Writes <paramref name="document"/>; its first attempt takes <paramref name="planned"/>
    /// (the edit <see cref="PlanAsync"/> made of this very document) instead of planning again, so a
    /// page planned before its writes (to record what it will change) runs each transform once.</summary>
    public async Task<WriteOutcome> WriteAsync(JObject document, DocumentEdit? planned, CancellationToken cancellationToken)
    {
        var journaled = new JournaledState();
        var outcome = await WriteOnceAsync(document, planned, journaled, cancellationToken).ConfigureAwait(false);
        if (journaled.First is { } record && outcome.Result != WriteResult.Changed)
        {
            // A before-image was recorded for a change that was not made: take it back.
            try
            {
                await _journal!.ForgetAsync(record, cancellationToken).ConfigureAwait(false);
            }
            catch (MigrationException ex)
            {
                return outcome with { Error = (outcome.Error is null ? "" : outcome.Error + "; ") + CosmosErrors.FirstLine(ex.Message) };
            }
        }

        return outcome;
    }

    /// <summary>The first before-image one write recorded (later attempts of the same write merge into it).</summary>
    private sealed class JournaledState
    {
        public JournalRecord? First { get; set; }
    }

    private async Task<WriteOutcome> WriteOnceAsync(JObject document, DocumentEdit? planned, JournaledState journaled, CancellationToken cancellationToken)
    {
        var id = (string?)document["id"] ?? string.Empty;
        var partitionKeyText = _target.PartitionKey.Describe(document);
        var partial = _partialDocuments;
        for (var attempt = 0; ; attempt++)
        {
            DocumentEdit edit;
            try
            {
                edit = attempt == 0 && planned is not null ? planned : await PlanAsync(document, cancellationToken).ConfigureAwait(false);
            }
            catch (DocumentOperationException ex)
            {
                return new WriteOutcome(WriteResult.Failed, id, partitionKeyText, ex.Message);
            }
            catch (DocumentConflictException ex)
            {
                return new WriteOutcome(WriteResult.Conflict, id, partitionKeyText, ex.Message);
            }

            if (!edit.Changed)
            {
                return new WriteOutcome(WriteResult.Unchanged, id, partitionKeyText);
            }

            if (edit.NeedsReplace && !_target.PartitionKey.SameKey(edit.Original, edit.Current))
            {
                return new WriteOutcome(WriteResult.Failed, id, partitionKeyText, "the change would alter the partition key (a document cannot move between partitions)");
            }

            var partitionKey = _target.PartitionKey.Read(document);
            if (edit.NeedsReplace && partial)
            {
                var whole = await ReadAsync(id, partitionKey, cancellationToken).ConfigureAwait(false);
                if (whole is null)
                {
                    return Missing(id, partitionKeyText);
                }

                document = whole;
                partial = false;
                continue;
            }

            if (edit.NeedsReplace && _filterUnchecked && !await MatchesFilterAsync(id, partitionKey, cancellationToken).ConfigureAwait(false))
            {
                return new WriteOutcome(WriteResult.Unchanged, id, partitionKeyText);
            }

            if (_journal is not null)
            {
                var (record, unjournaled) = await _journal.RecordAsync(_step, edit, _target.PartitionKey, cancellationToken).ConfigureAwait(false);
                if (unjournaled is not null)
                {
                    return new WriteOutcome(WriteResult.Failed, id, partitionKeyText, unjournaled);
                }

                journaled.First ??= record;
            }

            var etagConditioned = edit.NeedsReplace || edit.DerivesFromDocument;
            using var response = await SendAsync(edit, id, partitionKey, cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                return new WriteOutcome(WriteResult.Changed, id, partitionKeyText) { ETagAfter = response.Headers.ETag };
            }

            switch (response.StatusCode)
            {
                case HttpStatusCode.NotFound:
                    // Deleted by someone else since it was read: nothing left to migrate.
                    return Missing(id, partitionKeyText);
                case HttpStatusCode.PreconditionFailed when !etagConditioned:
                    // The guard no longer holds: the document already has the change.
                    return new WriteOutcome(WriteResult.Unchanged, id, partitionKeyText);
                case HttpStatusCode.PreconditionFailed when attempt < MaxConflictRetries:
                    var fresh = await ReadAsync(id, partitionKey, cancellationToken).ConfigureAwait(false);
                    if (fresh is null)
                    {
                        return Missing(id, partitionKeyText);
                    }

                    if (string.Equals((string?)fresh["_etag"], edit.ETag, StringComparison.Ordinal))
                    {
                        // Same version, so it was the guard that failed, not the ETag.
                        return new WriteOutcome(WriteResult.Unchanged, id, partitionKeyText);
                    }

                    document = fresh;
                    partial = false;
                    continue;
                default:
                    var error = CosmosErrors.FromResponse(response);
                    return new WriteOutcome(WriteResult.Failed, id, partitionKeyText,
                        $"the service refused the write (HTTP {(int)response.StatusCode}: {CosmosErrors.FirstLine(error.ResponseBody ?? error.Message)})");
            }
        }
    }

    public WriteOutcome Skip(JObject item) => new(WriteResult.Unchanged, (string?)item["id"] ?? "", _target.PartitionKey.Describe(item));

    public async Task<ItemPreview> PreviewAsync(JObject item, CancellationToken cancellationToken)
    {
        var id = (string?)item["id"] ?? string.Empty;
        var partitionKeyText = _target.PartitionKey.Describe(item);
        try
        {
            var edit = await PlanAsync(item, cancellationToken).ConfigureAwait(false);
            return edit.Changed
                ? new ItemPreview(WriteResult.Changed, id, partitionKeyText, edit.Original, edit.Current)
                : new ItemPreview(WriteResult.Unchanged, id, partitionKeyText);
        }
        catch (DocumentOperationException ex)
        {
            return new ItemPreview(WriteResult.Failed, id, partitionKeyText, Error: ex.Message);
        }
        catch (DocumentConflictException ex)
        {
            return new ItemPreview(WriteResult.Conflict, id, partitionKeyText, Error: ex.Message);
        }
    }

    /// <summary>The document is gone: nothing left to change, or, for a restore, a conflict.</summary>
    private WriteOutcome Missing(string id, string partitionKeyText) =>
        _pass.Operations.Any(o => o.DeletedIsConflict)
            ? new WriteOutcome(WriteResult.Conflict, id, partitionKeyText, "deleted since the migration")
            : new WriteOutcome(WriteResult.Unchanged, id, partitionKeyText);

    private Task<ResponseMessage> SendAsync(DocumentEdit edit, string id, PartitionKey partitionKey, CancellationToken cancellationToken)
    {
        var container = _target.Container;
        if (edit.NeedsReplace)
        {
            return _sender.SendAsync(async ct =>
            {
                using var body = DocumentJson.ToStream(edit.Current);
                return await container.ReplaceItemStreamAsync(body, id, partitionKey,
                    new ItemRequestOptions { IfMatchEtag = edit.ETag, EnableContentResponseOnWrite = false }, ct).ConfigureAwait(false);
            }, $"Replacing document '{id}'", cancellationToken);
        }

        var conditions = (_pass.Filter is null ? Enumerable.Empty<string>() : new[] { _pass.Filter }).Concat(edit.Guards).ToList();
        var options = new PatchItemRequestOptions
        {
            FilterPredicate = conditions.Count == 0 ? null : "FROM c WHERE " + string.Join(" AND ", conditions.Select(c => "(" + c + ")")),
            IfMatchEtag = edit.DerivesFromDocument ? edit.ETag : null,
            EnableContentResponseOnWrite = false,
        };
        var operations = edit.Patch.ToList();
        return _sender.SendAsync(ct => container.PatchItemStreamAsync(id, partitionKey, operations, options, ct), $"Patching document '{id}'", cancellationToken);
    }

    /// <summary>Whether the service finds the document under the pass's filter (one point query in
    /// its logical partition): the same selection as a scan of that filter would make.</summary>
    private async Task<bool> MatchesFilterAsync(string id, PartitionKey partitionKey, CancellationToken cancellationToken)
    {
        var query = new QueryDefinition($"SELECT VALUE 1 FROM c WHERE c.id = @id AND ({_pass.Filter})").WithParameter("@id", id);
        using var response = await _sender.SendAsync(async ct =>
        {
            using var iterator = _target.Container.GetItemQueryStreamIterator(query, null, new QueryRequestOptions { PartitionKey = partitionKey, MaxItemCount = 1 });
            return await iterator.ReadNextAsync(ct).ConfigureAwait(false);
        }, $"Checking document '{id}' against the filter", cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "ReadFailed", $"Checking document '{id}' against the filter failed.", id);
        }

        return DocumentJson.ReadPage(response.Content).Any();
    }

    private async Task<JObject?> ReadAsync(string id, PartitionKey partitionKey, CancellationToken cancellationToken)
    {
        using var response = await _sender.SendAsync(ct => _target.Container.ReadItemStreamAsync(id, partitionKey, cancellationToken: ct),
            $"Reading document '{id}'", cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        if (!response.IsSuccessStatusCode)
        {
            throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "ReadFailed", $"Reading document '{id}' failed.", id);
        }

        return DocumentJson.ReadObject(response.Content);
    }
}
