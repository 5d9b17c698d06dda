using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Journal;
using CosmosMigrations.Operations;
using CosmosMigrations.Requests;

namespace CosmosMigrations.Steps;

internal enum WriteResult
{
    Unchanged,
    Changed,
    Failed,

    /// <summary>Left alone: it changed since the change being reverted (an undo's restore).</summary>
    Conflict,
}

/// <summary>What happened to one document.</summary>
internal sealed record WriteOutcome(WriteResult Result, string Id, string PartitionKey, string? Error = null)
{
    /// <summary>The document's ETag after this write changed it (null when it did not).</summary>
    public string? ETagAfter { get; init; }

    /// <summary>Why a failed write failed (null unless <see cref="WriteResult.Failed"/>).</summary>
    public FailureClass? Class { get; init; }

    /// <summary>Attempts the write made before it gave up (its conflict or transient retries).</summary>
    public int Attempts { get; init; } = 1;

    public static WriteOutcome Failure(string id, string partitionKey, string error, FailureClass failureClass, int attempts = 1) =>
        new(WriteResult.Failed, id, partitionKey, error) { Class = failureClass, Attempts = attempts };
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
/// With a journal, a page's before-images are made durable first, in one record, before any of
/// its writes (<see cref="BeginPageAsync"/>).</summary>
internal sealed class DocumentWriter : IPassWriter
{
    private const int MaxConflictRetries = 8;

    private readonly TargetContainer _target;
    private readonly DocumentPass _pass;
    private readonly ResilientSender _sender;
    private readonly bool _partialDocuments;
    private readonly bool _filterUnchecked;
    private readonly bool _changeFeed;
    private readonly PageJournal? _journal;
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
        _changeFeed = filterUnchecked;
        _journal = journal is null ? null : new PageJournal(journal);
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

    public async Task<bool> NeedsChangeAsync(JObject current, CancellationToken cancellationToken) =>
        (await PlanAsync(current, cancellationToken).ConfigureAwait(false)).Changed;

    public async Task<WriteOutcome> WriteAsync(JObject document, CancellationToken cancellationToken)
    {
        if (_journal is null)
        {
            return await WriteOnceAsync(document, null, null, cancellationToken).ConfigureAwait(false);
        }

        var page = await BeginPageAsync(new[] { document }, cancellationToken).ConfigureAwait(false);
        var outcome = await page.WriteAsync(0, cancellationToken).ConfigureAwait(false);
        await page.CompleteAsync(cancellationToken).ConfigureAwait(false);
        return outcome;
    }

    /// <summary>A page's changes are planned first, so that the page can record what it is about to
    /// change (its intent, <see cref="Running.ChangeIntents"/>) before any write. With a journal, their
    /// before-images are also made durable in one journal record (see <see cref="JournaledPage"/>),
    /// before any of them is written.</summary>
    public async Task<PageWrites> BeginPageAsync(IReadOnlyList<JObject> documents, CancellationToken cancellationToken) =>
        _journal is null ? await PlannedPage.BeginAsync(this, documents, cancellationToken).ConfigureAwait(false)
            : await JournaledPage.BeginAsync(this, _journal, documents, cancellationToken).ConfigureAwait(false);

    /// <summary>A page without a journal: each document planned once, before the page's writes,
    /// and written with that plan (a write that meets a concurrent change plans again).</summary>
    private sealed class PlannedPage : PageWrites
    {
        private readonly DocumentWriter _writer;
        private readonly IReadOnlyList<JObject> _documents;
        private readonly DocumentEdit?[] _planned;
        private readonly WriteOutcome?[] _settled;

        private PlannedPage(DocumentWriter writer, IReadOnlyList<JObject> documents)
        {
            _writer = writer;
            _documents = documents;
            _planned = new DocumentEdit?[documents.Count];
            _settled = new WriteOutcome?[documents.Count];
        }

        public static async Task<PageWrites> BeginAsync(DocumentWriter writer, IReadOnlyList<JObject> documents, CancellationToken cancellationToken)
        {
            var page = new PlannedPage(writer, documents);
            for (var i = 0; i < documents.Count; i++)
            {
                (page._planned[i], page._settled[i]) = await writer.PlanForPageAsync(documents[i], cancellationToken).ConfigureAwait(false);
            }

            return page;
        }

        public override bool MayChange(int index) => _settled[index] is null;

        public override Task<WriteOutcome> WriteAsync(int index, CancellationToken cancellationToken) =>
            _settled[index] is { } settled ? Task.FromResult(settled) : _writer.WriteOnceAsync(_documents[index], _planned[index], null, cancellationToken);
    }

    /// <summary>A journaled page. Every document's change is planned, and the before-images of
    /// the planned changes written in one record (<see cref="PageJournal"/>) before the first
    /// write: a crash between the two can leave a before-image without its change, never a change
    /// without its before-image. A write that meets a concurrent change plans again, and that new
    /// plan's image is journaled on its own before it is sent. After the writes, the images of
    /// changes not made (or made under a later image) are taken back.</summary>
    private sealed class JournaledPage : PageWrites
    {
        private readonly DocumentWriter _writer;
        private readonly PageJournal _journal;
        private readonly IReadOnlyList<JObject> _documents;
        private readonly DocumentEdit?[] _planned;
        private readonly WriteOutcome?[] _outcomes;
        private readonly RetriedImages?[] _retried;
        private PageImages? _images;
        private Task _recording = Task.CompletedTask;

        private JournaledPage(DocumentWriter writer, PageJournal journal, IReadOnlyList<JObject> documents)
        {
            _writer = writer;
            _journal = journal;
            _documents = documents;
            _planned = new DocumentEdit?[documents.Count];
            _outcomes = new WriteOutcome?[documents.Count];
            _retried = new RetriedImages?[documents.Count];
        }

        public static async Task<PageWrites> BeginAsync(DocumentWriter writer, PageJournal journal, IReadOnlyList<JObject> documents, CancellationToken cancellationToken)
        {
            var page = new JournaledPage(writer, journal, documents);
            var planned = new List<DocumentEdit>(documents.Count);
            for (var i = 0; i < documents.Count; i++)
            {
                var (edit, settled) = await writer.PlanForPageAsync(documents[i], cancellationToken).ConfigureAwait(false);
                page._outcomes[i] = settled;
                page._planned[i] = edit;
                if (edit is not null)
                {
                    planned.Add(edit);
                }
            }

            // The record is written while the caller records the page's intent (what the plan may
            // change: a superset of what the journal accepts); no write starts before both.
            page._recording = page.RecordAsync(planned, cancellationToken);
            return page;
        }

        private async Task RecordAsync(List<DocumentEdit> planned, CancellationToken cancellationToken)
        {
            // A change-feed batch may bring a document changed before (the feed delivers it again when the application writes it).
            _images = await _journal.RecordAsync(_writer._step, planned, _writer._target.PartitionKey, cancellationToken, late: _writer._changeFeed).ConfigureAwait(false);
            for (var i = 0; i < _documents.Count; i++)
            {
                if (_planned[i] is { } edit && _images.Problem(edit.Id) is { } problem)
                {
                    _planned[i] = null;
                    _outcomes[i] = WriteOutcome.Failure(edit.Id, _writer._target.PartitionKey.Describe(_documents[i]), problem, FailureClass.Refused);
                }
            }
        }

        public override Task ReadyAsync() => _recording;

        public override bool MayChange(int index) => _outcomes[index] is null;

        public override async Task<WriteOutcome> WriteAsync(int index, CancellationToken cancellationToken)
        {
            await _recording.ConfigureAwait(false);
            if (_outcomes[index] is { } settled)
            {
                return settled;
            }

            var outcome = await _writer.WriteOnceAsync(_documents[index], _planned[index], edit => JournalAgainAsync(index, edit, cancellationToken), cancellationToken).ConfigureAwait(false);
            _outcomes[index] = outcome;
            return outcome;
        }

        public override async Task CompleteAsync(CancellationToken cancellationToken)
        {
            await _recording.ConfigureAwait(false);
            var notMade = new List<string>();
            for (var i = 0; i < _documents.Count; i++)
            {
                var made = _outcomes[i]?.Result == WriteResult.Changed;
                if (_planned[i] is { } edit && !(made && _retried[i] is null))
                {
                    notMade.Add(edit.Id);
                }

                if (_retried[i] is { } retried)
                {
                    // Only the last image of a retried write describes the change it made.
                    for (var r = 0; r < retried.Images.Count; r++)
                    {
                        if (!(made && r == retried.Images.Count - 1))
                        {
                            await retried.Images[r].TakeOutAsync(new[] { retried.Id }, cancellationToken).ConfigureAwait(false);
                        }
                    }
                }
            }

            await _images!.TakeOutAsync(notMade, cancellationToken).ConfigureAwait(false);
        }

        private async Task<string?> JournalAgainAsync(int index, DocumentEdit edit, CancellationToken cancellationToken)
        {
            var images = await _journal.RecordAsync(_writer._step, new[] { edit }, _writer._target.PartitionKey, cancellationToken, late: true).ConfigureAwait(false);
            (_retried[index] ??= new RetriedImages(edit.Id)).Images.Add(images);
            return images.Problem(edit.Id);
        }

        private sealed class RetriedImages
        {
            public RetriedImages(string id)
            {
                Id = id;
            }

            public string Id { get; }

            public List<PageImages> Images { get; } = new();
        }
    }

    /// <summary>A page's plan for one document: the edit to journal with the page and write, or the
    /// outcome when no write is needed (or possible), or neither when the write must first read the
    /// whole document or ask the service about the filter (then it journals its own image).</summary>
    private async Task<(DocumentEdit? Edit, WriteOutcome? Settled)> PlanForPageAsync(JObject document, CancellationToken cancellationToken)
    {
        var id = (string?)document["id"] ?? string.Empty;
        DocumentEdit edit;
        try
        {
            edit = await PlanAsync(document, cancellationToken).ConfigureAwait(false);
        }
        catch (DocumentOperationException ex)
        {
            return (null, WriteOutcome.Failure(id, _target.PartitionKey.Describe(document), ex.Message, FailureClass.Transform));
        }
        catch (DocumentConflictException ex)
        {
            return (null, new WriteOutcome(WriteResult.Conflict, id, _target.PartitionKey.Describe(document), ex.Message));
        }

        if (!edit.Changed)
        {
            return (null, new WriteOutcome(WriteResult.Unchanged, id, _target.PartitionKey.Describe(document)));
        }

        if (edit.NeedsReplace && !_target.PartitionKey.SameKey(edit.Original, edit.Current))
        {
            return (null, WriteOutcome.Failure(id, _target.PartitionKey.Describe(document), PartitionKeyChange, FailureClass.Transform));
        }

        return edit.NeedsReplace && (_partialDocuments || _filterUnchecked) ? (null, null) : (edit, null);
    }

    private const string PartitionKeyChange = "the change would alter the partition key (a document cannot move between partitions)";

    /// <summary>Writes one document: <paramref name="planned"/> first when the page planned (and
    /// journaled) it, then, after a conflict, plans again from a fresh read. With
    /// <paramref name="journal"/>, every plan not journaled with the page is journaled by it before
    /// it is sent (it returns why it could not be).</summary>
    private async Task<WriteOutcome> WriteOnceAsync(JObject document, DocumentEdit? planned, Func<DocumentEdit, Task<string?>>? journal, CancellationToken cancellationToken)
    {
        try
        {
            return await WriteGuardedAsync(document, planned, journal, cancellationToken).ConfigureAwait(false);
        }
        catch (MigrationException ex) when (ex.Kind == MigrationErrorKind.Transient && !cancellationToken.IsCancellationRequested)
        {
            // The sender spent its retries on this document: the document is set aside (class
            // Exhausted), and the run's thresholds decide whether the run goes on without it.
            return WriteOutcome.Failure((string?)document["id"] ?? string.Empty, _target.PartitionKey.Describe(document), ex.Message, FailureClass.Exhausted, ResilientSender.MaxAttempts);
        }
    }

    private async Task<WriteOutcome> WriteGuardedAsync(JObject document, DocumentEdit? planned, Func<DocumentEdit, Task<string?>>? journal, CancellationToken cancellationToken)
    {
        var id = (string?)document["id"] ?? string.Empty;
        var partitionKeyText = _target.PartitionKey.Describe(document);
        var partial = _partialDocuments;
        for (var attempt = 0; ; attempt++)
        {
            DocumentEdit edit;
            var journaled = planned is not null;
            try
            {
                edit = planned ?? await PlanAsync(document, cancellationToken).ConfigureAwait(false);
                planned = null;
            }
            catch (DocumentOperationException ex)
            {
                return WriteOutcome.Failure(id, partitionKeyText, ex.Message, FailureClass.Transform, attempt + 1);
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
                return WriteOutcome.Failure(id, partitionKeyText, PartitionKeyChange, FailureClass.Transform, attempt + 1);
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

            if (journal is not null && !journaled && await journal(edit).ConfigureAwait(false) is { } unjournaled)
            {
                return WriteOutcome.Failure(id, partitionKeyText, unjournaled, FailureClass.Refused, attempt + 1);
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
                    return WriteOutcome.Failure(id, partitionKeyText,
                        $"the service refused the write (HTTP {(int)response.StatusCode}/{error.SubStatusCode}: {CosmosErrors.FirstLine(error.ResponseBody ?? error.Message)})",
                        FailureClasses.OfStatus(response.StatusCode), attempt + 1);
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
            return _sender.SendAsync(() => DocumentJson.ToStream(edit.Current), (body, ct) => container.ReplaceItemStreamAsync(body, id, partitionKey,
                new ItemRequestOptions { IfMatchEtag = edit.ETag, EnableContentResponseOnWrite = false }, ct), $"Replacing document '{id}'", cancellationToken);
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

    private Task<JObject?> ReadAsync(string id, PartitionKey partitionKey, CancellationToken cancellationToken) =>
        ReadDocumentAsync(_target, _sender, id, partitionKey, cancellationToken);

    /// <summary>One document as stored, or null when it is gone (the read both a write's retry and
    /// the count of an uncounted page make).</summary>
    internal static async Task<JObject?> ReadDocumentAsync(TargetContainer target, ResilientSender sender, string id, PartitionKey partitionKey, CancellationToken cancellationToken)
    {
        using var response = await sender.SendAsync(ct => target.Container.ReadItemStreamAsync(id, partitionKey, cancellationToken: ct),
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
