using System.IO;
using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Journal;
using CosmosMigrations.Operations;
using CosmosMigrations.Requests;

namespace CosmosMigrations.Steps;

/// <summary>What an undo's pages do with each journal entry (one row per document of a journal
/// record, <see cref="RestorePass"/>): restore the document it names through the
/// <see cref="DocumentWriter"/> (a patch whose filter predicate checks, on the service, that the
/// document still holds what the migration wrote; or, when the entry needs it, a read and a replace
/// conditioned on the ETag). Records stay until the undo of their step completes
/// (<see cref="JournalCleanupStep"/>); an entry whose document is in conflict (or failed) is copied
/// to a record of its own, written during the undo, so that a later undo with -Force can still
/// restore it.
/// <para>A document can have images in several records of one step (a catch-up scan or -Follow
/// changed it again after the application wrote it back in the old shape; a write retried after a
/// conflict; a page redone after a crash). Each page looks for other images of its documents (one
/// query a page); the record with the newest image restores the document, newest image first: an
/// older image that finds the document as the newer one's "before" was a chain of changes and is
/// restored in turn; one that finds anything else was superseded (the application rewrote the
/// document between the two), and is neither a conflict nor, even with -Force, ever restored.</para></summary>
internal sealed class JournalRestorer : IItemWriter
{
    private const int IdsPerQuery = 100;

    private readonly TargetContainer _target;
    private readonly JournalStore _journal;
    private readonly ResilientSender _sender;
    private readonly bool _force;
    private readonly int _step;
    private readonly long _before;
    private readonly Func<CancellationToken, Task<bool>> _hasLaterImages;

    /// <summary>Restores the entries of step <paramref name="step"/> recorded before
    /// <paramref name="before"/> (the undo's start, as a record order). Pages look for other images
    /// of their documents only when <paramref name="hasLaterImages"/> says the step has records
    /// that may hold later ones.</summary>
    public JournalRestorer(TargetContainer target, JournalStore journal, ResilientSender sender, bool force, int step, long before, Func<CancellationToken, Task<bool>> hasLaterImages)
    {
        _hasLaterImages = hasLaterImages;
        _target = target;
        _journal = journal;
        _sender = sender;
        _force = force;
        _step = step;
        _before = before;
    }

    public async Task<WriteOutcome> WriteAsync(JObject item, CancellationToken cancellationToken)
    {
        var page = await BeginPageAsync(new[] { item }, cancellationToken).ConfigureAwait(false);
        return await page.WriteAsync(0, cancellationToken).ConfigureAwait(false);
    }

    public async Task<PageWrites> BeginPageAsync(IReadOnlyList<JObject> items, CancellationToken cancellationToken) =>
        new RestorePage(this, items, await _hasLaterImages(cancellationToken).ConfigureAwait(false)
            ? await OtherImagesAsync(items, cancellationToken).ConfigureAwait(false)
            : new Dictionary<string, List<Image>>(StringComparer.Ordinal));

    public WriteOutcome Skip(JObject item)
    {
        var entry = EntryOf(item);
        return new WriteOutcome(WriteResult.Unchanged, entry.Id, Describe(entry));
    }

    public async Task<ItemPreview> PreviewAsync(JObject item, CancellationToken cancellationToken)
    {
        if (Foreign(item) is { } foreign)
        {
            return new ItemPreview(foreign.Result, foreign.Id, foreign.PartitionKey, Error: foreign.Error);
        }

        var entry = EntryOf(item);
        var document = await ReadAsync(entry, cancellationToken).ConfigureAwait(false);
        if (document is null)
        {
            return new ItemPreview(_force ? WriteResult.Unchanged : WriteResult.Conflict, entry.Id, Describe(entry), Error: "deleted since the migration");
        }

        return await new DocumentWriter(_target, Pass(entry, _force), _sender).PreviewAsync(document, cancellationToken).ConfigureAwait(false);
    }

    private sealed class RestorePage : PageWrites
    {
        private readonly JournalRestorer _restorer;
        private readonly IReadOnlyList<JObject> _rows;
        private readonly Dictionary<string, List<Image>> _others;

        public RestorePage(JournalRestorer restorer, IReadOnlyList<JObject> rows, Dictionary<string, List<Image>> others)
        {
            _restorer = restorer;
            _rows = rows;
            _others = others;
        }

        public override Task<WriteOutcome> WriteAsync(int index, CancellationToken cancellationToken) =>
            _restorer.WriteRowAsync(_rows[index], _others, cancellationToken);
    }

    /// <summary>One image of a document: the order of its record, and the entry.</summary>
    private sealed record Image(string Record, long Order, JournalEntry Entry);

    private async Task<WriteOutcome> WriteRowAsync(JObject row, Dictionary<string, List<Image>> others, CancellationToken cancellationToken)
    {
        if (Foreign(row) is { } foreign)
        {
            return foreign;
        }

        var entry = EntryOf(row);
        var record = (string?)row["record"] ?? "";
        var order = (long?)row["seq"] ?? 0;
        var elsewhere = others.TryGetValue(entry.Id, out var images) ? images.Where(i => i.Record != record).ToList() : new List<Image>();
        WriteOutcome outcome;
        if (elsewhere.Any(i => i.Order > order))
        {
            // A newer image of this document restores it (with this one, if it is a chain).
            return new WriteOutcome(WriteResult.Unchanged, entry.Id, Describe(entry));
        }

        outcome = elsewhere.Count == 0
            ? await RestoreAsync(entry, cancellationToken).ConfigureAwait(false)
            : await RestoreNewestFirstAsync(entry, elsewhere.OrderByDescending(i => i.Order).Select(i => i.Entry).ToList(), cancellationToken).ConfigureAwait(false);
        if (outcome.Result is WriteResult.Conflict or WriteResult.Failed)
        {
            await KeepAsync(entry, cancellationToken).ConfigureAwait(false);
        }

        return outcome;
    }

    /// <summary>The one image of a document: restored by a guarded patch without a read when it can
    /// be, else read and restored (a conflict when it changed since, unless forced).</summary>
    private async Task<WriteOutcome> RestoreAsync(JournalEntry entry, CancellationToken cancellationToken)
    {
        var unread = !_force && entry.CanRestoreUnread;
        var document = unread ? entry.AsWritten() : await ReadAsync(entry, cancellationToken).ConfigureAwait(false);
        if (document is null)
        {
            // Deleted since the migration: a conflict; forced, nothing to restore (never re-created).
            return new WriteOutcome(_force ? WriteResult.Unchanged : WriteResult.Conflict, entry.Id, Describe(entry), "deleted since the migration");
        }

        return await new DocumentWriter(_target, Pass(entry, _force), _sender, partialDocuments: unread).WriteAsync(document, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A document with older images too: the newest is restored first, then each older
    /// one in turn while the document holds what that one's change wrote (a chain of changes);
    /// an older image that finds anything else was superseded, and the walk ends there.</summary>
    private async Task<WriteOutcome> RestoreNewestFirstAsync(JournalEntry newest, IReadOnlyList<JournalEntry> older, CancellationToken cancellationToken)
    {
        var result = new WriteOutcome(WriteResult.Unchanged, newest.Id, Describe(newest));
        var images = new[] { newest }.Concat(older).ToList();
        for (var i = 0; i < images.Count; i++)
        {
            var entry = images[i];
            var document = await ReadAsync(entry, cancellationToken).ConfigureAwait(false);
            if (document is null)
            {
                return i == 0 && !_force ? new WriteOutcome(WriteResult.Conflict, entry.Id, Describe(entry), "deleted since the migration") : result;
            }

            var state = entry.StateOf(document);
            var force = false;
            if (state == RestoreState.Restored)
            {
                continue;
            }

            if (state == RestoreState.Changed)
            {
                if (i > 0 || images.Skip(1).Any(e => e.StateOf(document) == RestoreState.Restored))
                {
                    // Superseded (or restored past this image by an earlier run): done.
                    return result;
                }

                if (!_force)
                {
                    return new WriteOutcome(WriteResult.Conflict, entry.Id, Describe(entry), entry.DescribeChange(document));
                }

                force = true;
            }

            var outcome = await new DocumentWriter(_target, Pass(entry, force), _sender).WriteAsync(document, cancellationToken).ConfigureAwait(false);
            if (outcome.Result is WriteResult.Conflict or WriteResult.Failed)
            {
                return outcome;
            }

            if (outcome.Result == WriteResult.Changed)
            {
                result = outcome;
            }
        }

        return result;
    }

    /// <summary>Looks for other images of the page's documents in the step's records (one query per
    /// <see cref="IdsPerQuery"/> documents, reading only ids; the few records that hold another
    /// image are then read whole).</summary>
    private async Task<Dictionary<string, List<Image>>> OtherImagesAsync(IReadOnlyList<JObject> rows, CancellationToken cancellationToken)
    {
        var found = new Dictionary<string, List<Image>>(StringComparer.Ordinal);
        var own = rows.Select(r => ((string?)r["entry"]?["id"] ?? "", (string?)r["record"] ?? "")).ToList();
        var ownByDocument = own.ToLookup(o => o.Item1, o => o.Item2, StringComparer.Ordinal);
        var others = new Dictionary<string, (string Pk, HashSet<string> Ids)>(StringComparer.Ordinal);
        foreach (var chunk in own.Select(o => o.Item1).Distinct(StringComparer.Ordinal).Select((id, i) => (id, i)).GroupBy(x => x.i / IdsPerQuery, x => x.id))
        {
            var ids = new HashSet<string>(chunk, StringComparer.Ordinal);
            var query = new QueryDefinition($"SELECT c.id, c.pk, c.ids FROM c WHERE {RestorePass.RecordCondition(_journal, _step, _before)} AND EXISTS(SELECT VALUE i FROM i IN c.ids WHERE ARRAY_CONTAINS(@ids, i))")
                .WithParameter("@ids", ids.ToArray());

            foreach (var record in await QueryAsync(query, cancellationToken).ConfigureAwait(false))
            {
                var recordId = (string?)record["id"] ?? "";
                foreach (var id in (record["ids"] as JArray ?? new JArray()).Values<string>())
                {
                    // A document's only row in this page needs no copy of its own record; two rows of
                    // one document in this page need each other's.
                    if (id is not null && ids.Contains(id) && !ownByDocument[id].SequenceEqual(new[] { recordId }))
                    {
                        if (!others.TryGetValue(recordId, out var held))
                        {
                            others[recordId] = held = ((string?)record["pk"] ?? "", new HashSet<string>(StringComparer.Ordinal));
                        }

                        held.Ids.Add(id);
                    }
                }
            }
        }

        foreach (var (recordId, (pk, ids)) in others.Select(o => (o.Key, o.Value)))
        {
            var record = await ReadRecordAsync(recordId, pk, cancellationToken).ConfigureAwait(false);
            if (record is null)
            {
                continue;
            }

            var order = (long?)record["seq"] ?? 0;
            foreach (var entry in PageRecord.Entries(record).Where(e => ids.Contains(e.Id)))
            {
                if (!found.TryGetValue(entry.Id, out var list))
                {
                    found[entry.Id] = list = new List<Image>();
                }

                list.Add(new Image(recordId, order, entry));
            }
        }

        return found;
    }

    /// <summary>Keeps the image of a document left alone (a conflict, or a failure) in a record of
    /// its own, written after the undo began: the step's other records go when the step is undone,
    /// this one stays for a later undo (with -Force). Written again by a resumed undo, it is the same record.</summary>
    private async Task KeepAsync(JournalEntry entry, CancellationToken cancellationToken)
    {
        var id = "kept-" + _journal.Scope.PartitionKeyFor(_step, new JObject { ["id"] = entry.Id, ["key"] = entry.Key });
        var record = PageRecord.Serialize(_journal.Scope, _step, id, PageJournal.NextOrder(), new[] { entry }, _journal.TtlSeconds);
        var partitionKey = new PartitionKey(record.PartitionKey);
        using var response = await _journal.SendAsync(async ct =>
        {
            using var body = new MemoryStream(record.Body, writable: false);
            return await _journal.Container.Container.UpsertItemStreamAsync(body, partitionKey, new ItemRequestOptions { EnableContentResponseOnWrite = false }, ct).ConfigureAwait(false);
        }, $"Keeping the before-image of document '{entry.Id}' (left alone)", cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "JournalWriteFailed",
                $"Could not keep the before-image of document '{entry.Id}' (left alone by the undo) in '{_journal.Container.Name}'.", entry.Id,
                "Start the undo again: it resumes from its checkpoint.");
        }
    }

    private async Task<List<JObject>> QueryAsync(QueryDefinition query, CancellationToken cancellationToken)
    {
        var items = new List<JObject>();
        using var iterator = _journal.Container.Container.GetItemQueryStreamIterator(query);
        while (iterator.HasMoreResults)
        {
            using var response = await _journal.SendAsync(ct => iterator.ReadNextAsync(ct), "Looking for other before-images in the journal", cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "ReadFailed",
                    $"Could not query the journal container '{_journal.Container.Name}'.", _journal.Container.Name);
            }

            items.AddRange(DocumentJson.ReadPage(response.Content).OfType<JObject>());
        }

        return items;
    }

    private async Task<JObject?> ReadRecordAsync(string id, string pk, CancellationToken cancellationToken)
    {
        using var response = await _journal.SendAsync(ct => _journal.Container.Container.ReadItemStreamAsync(id, new PartitionKey(pk), cancellationToken: ct),
            $"Reading the journal record '{id}'", cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }

        if (!response.IsSuccessStatusCode)
        {
            throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "ReadFailed", $"Reading the journal record '{id}' failed.", id);
        }

        return DocumentJson.ReadObject(response.Content);
    }

    private static JournalEntry EntryOf(JObject row) => PageRecord.EntryOf((JObject)row["entry"]!, row["shapes"] as JArray);

    private static DocumentPass Pass(JournalEntry entry, bool force) => new(new DocumentOperation[] { new RestoreOperation(entry, force) }, null);

    private string Describe(JournalEntry entry) => _target.PartitionKey.Describe(entry.Key);

    /// <summary>An entry recorded for another container is never applied to this one.</summary>
    private WriteOutcome? Foreign(JObject row)
    {
        var container = (string?)row["container"];
        return string.Equals(container, _target.Name, StringComparison.Ordinal)
            ? null
            : new WriteOutcome(WriteResult.Failed, (string?)row["entry"]?["id"] ?? "", "", $"its journal entry belongs to container '{container}', not '{_target.Name}'");
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
