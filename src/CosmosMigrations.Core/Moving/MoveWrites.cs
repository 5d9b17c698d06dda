using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Journal;
using CosmosMigrations.Operations;
using CosmosMigrations.Requests;
using CosmosMigrations.Steps;

namespace CosmosMigrations.Moving;

/// <summary>A move's writes: each source document the change feed delivers is reshaped by the
/// move's operations, stripped of its system properties and upserted into the target under the new
/// key. An upsert of a document's latest version is idempotent, so a batch delivered again (after a
/// kill, a lease handed over, a split) only writes the same content again, and is not counted
/// again (<see cref="CountsByVersion"/>). With a filter, a page
/// asks the source once which of its documents the filter selects (the change feed delivers all).</summary>
internal sealed class MoveWrites : IPassWrites
{
    private readonly TargetContainer _source;
    private readonly TargetContainer _target;
    private readonly IReadOnlyList<DocumentOperation> _operations;
    private readonly string? _filter;

    public MoveWrites(TargetContainer source, TargetContainer target, IReadOnlyList<DocumentOperation> operations, string? filter)
    {
        _source = source;
        _target = target;
        _operations = operations;
        _filter = filter;
        Planner = new MoveWriter(this, ResilientSender.Ungated);
    }

    public IPassWriter Planner { get; }

    /// <summary>A move keeps no before-images: it never changes the source, and its undo removes the target.</summary>
    public IPassWriter ForRange(ResilientSender sender, JournalStore? journal, int step) => new MoveWriter(this, sender);

    /// <summary>A copy: a batch delivered again (a lease handed over, a kill between count and
    /// checkpoint, a split) writes the same versions again, and they count once.</summary>
    public bool CountsByVersion => true;

    public bool IsMove => true;

    /// <summary>The document as the target gets it: the operations applied, system properties left out.</summary>
    public async Task<JObject> ReshapeAsync(JObject document, CancellationToken cancellationToken)
    {
        var edit = new DocumentEdit(document);
        foreach (var operation in _operations)
        {
            await operation.ApplyAsync(edit, cancellationToken).ConfigureAwait(false);
        }

        return DocumentJson.WithoutSystemProperties(edit.Current);
    }

    internal TargetContainer Source => _source;

    internal TargetContainer Target => _target;

    internal string? Filter => _filter;

    private sealed class MoveWriter : IPassWriter
    {
        private readonly MoveWrites _writes;
        private readonly ResilientSender _sender;

        public MoveWriter(MoveWrites writes, ResilientSender sender)
        {
            _writes = writes;
            _sender = sender;
        }

        /// <summary>Always: a copy writes every version it is given. What a dead worker copied is not
        /// counted from its intent; its batch is delivered again, copied again, and counted then,
        /// once per source version (<see cref="CountsByVersion"/>).</summary>
        public Task<bool> NeedsChangeAsync(JObject current, CancellationToken cancellationToken) => Task.FromResult(true);

        public WriteOutcome Skip(JObject item) => new(WriteResult.Unchanged, (string?)item["id"] ?? "", _writes._source.PartitionKey.Describe(item));

        public async Task<WriteOutcome> WriteAsync(JObject item, CancellationToken cancellationToken)
        {
            var page = await BeginPageAsync(new[] { item }, cancellationToken).ConfigureAwait(false);
            return await page.WriteAsync(0, cancellationToken).ConfigureAwait(false);
        }

        public async Task<PageWrites> BeginPageAsync(IReadOnlyList<JObject> items, CancellationToken cancellationToken)
        {
            var selected = _writes._filter is null ? null : await SelectedAsync(items, cancellationToken).ConfigureAwait(false);
            return new CopyPage(this, items, selected);
        }

        public async Task<ItemPreview> PreviewAsync(JObject item, CancellationToken cancellationToken)
        {
            var id = (string?)item["id"] ?? "";
            try
            {
                return new ItemPreview(WriteResult.Changed, id, _writes._source.PartitionKey.Describe(item), item, await _writes.ReshapeAsync(item, cancellationToken).ConfigureAwait(false));
            }
            catch (DocumentOperationException ex)
            {
                return new ItemPreview(WriteResult.Failed, id, _writes._source.PartitionKey.Describe(item), Error: ex.Message);
            }
        }

        /// <summary>The _rid of each of the page's documents the filter selects now (one query).</summary>
        private async Task<HashSet<string>> SelectedAsync(IReadOnlyList<JObject> items, CancellationToken cancellationToken)
        {
            var ids = items.Select(d => (string?)d["id"] ?? "").Distinct(StringComparer.Ordinal).ToArray();
            var query = new QueryDefinition($"SELECT VALUE c._rid FROM c WHERE ARRAY_CONTAINS(@ids, c.id) AND ({_writes._filter})").WithParameter("@ids", ids);
            var selected = new HashSet<string>(StringComparer.Ordinal);
            await _sender.RunAsync(async ct =>
            {
                selected.Clear();
                using var iterator = _writes._source.Container.GetItemQueryIterator<string>(query);
                while (iterator.HasMoreResults)
                {
                    var response = await iterator.ReadNextAsync(ct).ConfigureAwait(false);
                    _sender.Gate?.Record(response.RequestCharge);
                    selected.UnionWith(response);
                }

                return true;
            }, new GiveUp("TransientFailuresExhausted", "Checking a batch against the move's filter kept failing.", _writes._source.Name,
                "The service is throttling or unavailable: the move resumes from its checkpoint when started again."), cancellationToken).ConfigureAwait(false);
            return selected;
        }

        private async Task<WriteOutcome> CopyAsync(JObject document, CancellationToken cancellationToken)
        {
            var id = (string?)document["id"] ?? "";
            var sourceKey = _writes._source.PartitionKey.Describe(document);
            JObject copy;
            try
            {
                copy = await _writes.ReshapeAsync(document, cancellationToken).ConfigureAwait(false);
            }
            catch (DocumentOperationException ex)
            {
                return WriteOutcome.Failure(id, sourceKey, ex.Message, FailureClass.Transform);
            }

            if ((string?)copy["id"] is not { Length: > 0 } newId || newId != id)
            {
                // The cut-over matches the two sides by id (deletes, verification).
                return WriteOutcome.Failure(id, sourceKey, "a move keeps each document's id; the operations changed or removed it", FailureClass.Transform);
            }

            var target = _writes._target;
            ResponseMessage response;
            try
            {
                response = await _sender.SendAsync(() => DocumentJson.ToStream(copy), (body, ct) => target.Container.UpsertItemStreamAsync(body, target.PartitionKey.Read(copy),
                    new ItemRequestOptions { EnableContentResponseOnWrite = false }, ct), $"Copying document '{id}'", cancellationToken).ConfigureAwait(false);
            }
            catch (MigrationException ex) when (ex.Kind == MigrationErrorKind.Transient && !cancellationToken.IsCancellationRequested)
            {
                // The sender spent its retries on this document: set aside (class Exhausted) as a
                // migration's write is, for the run's thresholds to judge.
                return WriteOutcome.Failure(id, sourceKey, ex.Message, FailureClass.Exhausted, ResilientSender.MaxAttempts);
            }

            using (response)
            {
                if (response.IsSuccessStatusCode)
                {
                    return new WriteOutcome(WriteResult.Changed, newId, sourceKey);
                }

                var error = CosmosErrors.FromResponse(response);
                var why = response.StatusCode == HttpStatusCode.Conflict
                    ? "the target refused it (409: a unique key of the target is already taken within its new logical partition)"
                    : $"the target refused it (HTTP {(int)response.StatusCode}: {CosmosErrors.FirstLine(error.ResponseBody ?? error.Message)})";
                return WriteOutcome.Failure(id, sourceKey, why, FailureClasses.OfStatus(response.StatusCode));
            }
        }

        private sealed class CopyPage : PageWrites
        {
            private readonly MoveWriter _writer;
            private readonly IReadOnlyList<JObject> _items;
            private readonly HashSet<string>? _selected;

            public CopyPage(MoveWriter writer, IReadOnlyList<JObject> items, HashSet<string>? selected)
            {
                _writer = writer;
                _items = items;
                _selected = selected;
            }

            public override bool MayChange(int index) => _selected is null || _selected.Contains((string?)_items[index]["_rid"] ?? "");

            public override Task<WriteOutcome> WriteAsync(int index, CancellationToken cancellationToken) =>
                MayChange(index) ? _writer.CopyAsync(_items[index], cancellationToken) : Task.FromResult(_writer.Skip(_items[index]));
        }
    }
}
