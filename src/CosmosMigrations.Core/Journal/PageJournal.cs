using System.IO;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;

namespace CosmosMigrations.Journal;

/// <summary>Before-images at a page's cost: one journal record (or a few, each under the service's
/// 2 MB item limit) holds the before-images of a page's planned changes, and is written before
/// the first of them (write-ahead). A change-feed batch records its planned edits the same way.
/// Changes that add fields with the same values to every document (a constant) share one
/// description of the change in the record (<c>shapes</c>): such documents need no image at all,
/// only their id and partition key, since the undo recomputes what they held (nothing there).
/// After the page's writes, the images of changes not made are taken out (one write, only when
/// it happens), so that an undo never mistakes such a document for one changed since.</summary>
internal sealed class PageJournal
{
    /// <summary>A record's size at most (serialised), well under the 2 MB item limit.</summary>
    public const int MaxRecordBytes = 1_500_000;

    private static long _lastOrder;

    public PageJournal(JournalStore store)
    {
        Store = store;
    }

    public JournalStore Store { get; }

    /// <summary>Strictly increasing within a process, and with the clock across processes: a
    /// record of a later change of a document (a catch-up scan, -Follow, a retry after a conflict,
    /// a page redone after a crash) carries a larger order than the earlier one, and the undo
    /// restores a document's images newest first.</summary>
    public static long NextOrder()
    {
        // The system clock's milliseconds, times 1000 for room between them: the journal's order, not a tracking document's time.
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        while (true)
        {
            var last = Interlocked.Read(ref _lastOrder);
            var next = Math.Max(now, last + 1);
            if (Interlocked.CompareExchange(ref _lastOrder, next, last) == last)
            {
                return next;
            }
        }
    }

    /// <summary>Makes the before-images of <paramref name="edits"/> (each changes its document)
    /// durable, before any of them is written. A document whose image the journal refused
    /// (<see cref="PageImages.Problem"/>) must not be changed; a journal that cannot be written at
    /// all (gone, or closed to this identity) throws.
    /// <paramref name="late"/>: the edits may change documents that already have an image in this
    /// step (a write retried after a conflict, a change-feed batch).</summary>
    public async Task<PageImages> RecordAsync(int step, IReadOnlyList<DocumentEdit> edits, PartitionKeyReader targetKey, CancellationToken cancellationToken, bool late = false)
    {
        var images = new PageImages(this, late || Store.LaterImages);
        if (edits.Count > 0)
        {
            var entries = edits.Select(e => JournalEntry.FromEdit(e, targetKey.Paths)).ToList();
            await WriteAsync(step, entries, images, cancellationToken).ConfigureAwait(false);
        }

        return images;
    }

    private async Task WriteAsync(int step, List<JournalEntry> entries, PageImages images, CancellationToken cancellationToken)
    {
        var record = PageRecord.Serialize(Store.Scope, step, NewId(), NextOrder(), entries, Store.TtlSeconds, images.Late);
        if (record.Body.Length > MaxRecordBytes && entries.Count > 1)
        {
            await SplitAsync(step, entries, images, cancellationToken).ConfigureAwait(false);
            return;
        }

        var partitionKey = new PartitionKey(record.PartitionKey);
        var container = Store.Container.Container;
        // A stream per attempt: the SDK disposes the one it sent, and a retried request needs another.
        using var response = await Store.SendAsync(async ct =>
        {
            using var stream = new MemoryStream(record.Body, writable: false);
            return await container.CreateItemStreamAsync(stream, partitionKey, Quiet, ct).ConfigureAwait(false);
        }, $"Journaling a page of {entries.Count} document(s)", cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            images.Add(new StoredRecord(record.Id, partitionKey, entries.Select(e => e.Id).ToArray(), record.Body));
            return;
        }

        if (response.StatusCode == HttpStatusCode.RequestEntityTooLarge && entries.Count > 1)
        {
            await SplitAsync(step, entries, images, cancellationToken).ConfigureAwait(false);
            return;
        }

        var problem = Store.Refused(response, entries.Count == 1 ? entries[0].Id : $"{entries.Count} documents");
        foreach (var entry in entries)
        {
            images.Refuse(entry.Id, problem);
        }
    }

    private async Task SplitAsync(int step, List<JournalEntry> entries, PageImages images, CancellationToken cancellationToken)
    {
        var half = entries.Count / 2;
        await WriteAsync(step, entries.GetRange(0, half), images, cancellationToken).ConfigureAwait(false);
        await WriteAsync(step, entries.GetRange(half, entries.Count - half), images, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Takes the images of <paramref name="ids"/> out of <paramref name="record"/>: the
    /// record is written again without them, or deleted when nothing is left. It is rewritten from
    /// its own body, so a page keeps only that body (no entries) until its writes are done.</summary>
    internal async Task TakeOutAsync(StoredRecord record, ISet<string> ids, CancellationToken cancellationToken)
    {
        var container = Store.Container.Container;
        ResponseMessage response;
        if (record.Ids.All(ids.Contains))
        {
            response = await Store.SendAsync(ct => container.DeleteItemStreamAsync(record.Id, record.PartitionKey, cancellationToken: ct),
                $"Taking back a journal record ({ids.Count} change(s) not made)", cancellationToken).ConfigureAwait(false);
        }
        else
        {
            JObject json;
            using (var stream = new MemoryStream(record.Body, writable: false))
            {
                json = DocumentJson.ReadObject(stream);
            }

            json["ids"] = new JArray(record.Ids.Where(id => !ids.Contains(id)));
            json["entries"] = new JArray(((JArray)json["entries"]!).Where(e => !ids.Contains((string)e["id"]!)));
            response = await Store.SendAsync(async ct =>
            {
                using var body = DocumentJson.ToStream(json);
                return await container.ReplaceItemStreamAsync(body, record.Id, record.PartitionKey, Quiet, ct).ConfigureAwait(false);
            }, $"Taking back {ids.Count} before-image(s) of changes not made", cancellationToken).ConfigureAwait(false);
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode && response.StatusCode != HttpStatusCode.NotFound)
            {
                throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "JournalWriteFailed",
                    $"Could not take back the before-images of {ids.Count} change(s) that were not made (journal record '{record.Id}').", record.Id,
                    "Start the migration again: it resumes from its checkpoint.");
            }
        }
    }

    private static string NewId() => Guid.NewGuid().ToString("N");

    private static readonly ItemRequestOptions Quiet = new() { EnableContentResponseOnWrite = false };
}

/// <summary>A journal record ready to be written: its id, partition key, order and UTF-8 body.</summary>
internal sealed record RecordBody(string Id, string PartitionKey, long Order, byte[] Body);

/// <summary>A journal record as written: its identity, the ids of its documents and its body.</summary>
internal sealed record StoredRecord(string Id, PartitionKey PartitionKey, IReadOnlyList<string> Ids, byte[] Body);

/// <summary>The before-images one page (or one retried write) recorded: which documents are
/// journaled, which the journal refused and why; <see cref="TakeOutAsync"/> takes back those whose
/// change was not made.</summary>
internal sealed class PageImages
{
    private readonly PageJournal _journal;
    private readonly List<StoredRecord> _records = new();
    private Dictionary<string, string>? _refused;

    internal PageImages(PageJournal journal, bool late)
    {
        _journal = journal;
        Late = late;
    }

    /// <summary>Whether these records may hold a document's second image in the step.</summary>
    internal bool Late { get; }

    /// <summary>Why the image of document <paramref name="id"/> could not be journaled (null: it is).</summary>
    public string? Problem(string id) => _refused is not null && _refused.TryGetValue(id, out var problem) ? problem : null;

    /// <summary>Takes the images of <paramref name="ids"/> back (their changes were not made by
    /// the edits these images were recorded for).</summary>
    public async Task TakeOutAsync(IEnumerable<string> ids, CancellationToken cancellationToken)
    {
        var set = new HashSet<string>(ids, StringComparer.Ordinal);
        if (set.Count == 0)
        {
            return;
        }

        foreach (var record in _records.Where(r => r.Ids.Any(set.Contains)))
        {
            await _journal.TakeOutAsync(record, set, cancellationToken).ConfigureAwait(false);
        }
    }

    internal void Add(StoredRecord record) => _records.Add(record);

    internal void Refuse(string id, string problem) => (_refused ??= new Dictionary<string, string>(StringComparer.Ordinal))[id] = problem;
}

/// <summary>The stored form of a journal record: identity and scope, an order, the ids of its
/// documents (indexed: the undo looks for other images of a document by them), whether it may hold
/// a document's later image (<c>late</c>), the shared change descriptions (<c>shapes</c>), and one
/// entry per document: its id, partition key values and before-image (or the index of its shape).</summary>
internal static class PageRecord
{
    /// <summary>The record of <paramref name="entries"/>, written straight to its body: a page's
    /// record is built once a page, so it is written without an intermediate document.</summary>
    internal static RecordBody Serialize(JournalScope scope, int step, string id, long order, IReadOnlyList<JournalEntry> entries, int? ttl, bool late = false)
    {
        var partitionKey = scope.PartitionKeyForRecord(step, id);
        // Fields added where there were none: nothing of the document to keep; documents that got
        // the same values share one description of the change (the first entry that had it).
        var shapes = new List<JournalEntry>();
        using var body = DocumentJson.ToStream(json =>
        {
            json.WriteStartObject();
            Property(json, "id", id);
            Property(json, "pk", partitionKey);
            Property(json, "journal", scope.JournalId);
            Property(json, "migration", scope.Migration);
            Property(json, "container", scope.Container);
            json.WritePropertyName("step");
            json.WriteValue(step);
            json.WritePropertyName("seq");
            json.WriteValue(order);
            json.WritePropertyName("ids");
            json.WriteStartArray();
            foreach (var entry in entries)
            {
                json.WriteValue(entry.Id);
            }

            json.WriteEndArray();
            json.WritePropertyName("entries");
            json.WriteStartArray();
            foreach (var entry in entries)
            {
                json.WriteStartObject();
                Property(json, "id", entry.Id);
                json.WritePropertyName("key");
                entry.Key.WriteTo(json);
                if (entry.IsWhole)
                {
                    json.WritePropertyName("document");
                    entry.Document!.WriteTo(json);
                    Property(json, "afterHash", entry.AfterHash);
                }
                else if (entry.Changes!.All(c => c.Before is null))
                {
                    json.WritePropertyName("shape");
                    json.WriteValue(ShapeOf(shapes, entry));
                }
                else
                {
                    json.WritePropertyName("changes");
                    entry.ChangesJson().WriteTo(json);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            if (shapes.Count > 0)
            {
                json.WritePropertyName("shapes");
                json.WriteStartArray();
                foreach (var shape in shapes)
                {
                    shape.ChangesJson().WriteTo(json);
                }

                json.WriteEndArray();
            }

            if (late)
            {
                json.WritePropertyName("late");
                json.WriteValue(true);
            }

            if (ttl is { } seconds)
            {
                json.WritePropertyName("ttl");
                json.WriteValue(seconds);
            }

            json.WriteEndObject();
        });
        return new RecordBody(id, partitionKey, order, body.ToArray());
    }

    private static void Property(Newtonsoft.Json.JsonWriter json, string name, string? value)
    {
        json.WritePropertyName(name);
        json.WriteValue(value);
    }

    /// <summary>The index of the shape of <paramref name="entry"/>'s changes, added when new.</summary>
    private static int ShapeOf(List<JournalEntry> shapes, JournalEntry entry)
    {
        for (var i = 0; i < shapes.Count; i++)
        {
            if (JournalEntry.SameChanges(shapes[i].Changes!, entry.Changes!))
            {
                return i;
            }
        }

        shapes.Add(entry);
        return shapes.Count - 1;
    }

    /// <summary>The entries of a stored record, each as a whole before-image.</summary>
    public static IEnumerable<JournalEntry> Entries(JObject record) =>
        (record["entries"] as JArray ?? new JArray()).OfType<JObject>().Select(e => EntryOf(e, record["shapes"] as JArray));

    /// <summary>One stored entry, its shape (if it has one) taken from <paramref name="shapes"/>.</summary>
    public static JournalEntry EntryOf(JObject entry, JArray? shapes)
    {
        if (entry["shape"] is { Type: JTokenType.Integer } shape && shapes is not null)
        {
            var expanded = (JObject)entry.DeepClone();
            expanded["changes"] = shapes[(int)shape]!.DeepClone();
            return JournalEntry.FromJson(expanded);
        }

        return JournalEntry.FromJson(entry);
    }
}
