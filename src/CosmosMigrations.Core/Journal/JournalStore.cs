using System;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;
using CosmosMigrations.Requests;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Journal;

/// <summary>Whose entries: one migration's journal (its id), on one target container.</summary>
public sealed record JournalScope(string JournalId, string Migration, string Container)
{
    /// <summary>The entry's logical partition: one per journal, step and target logical partition
    /// (a hash, so that long names and keys stay short). The journal is spread as widely as the
    /// target container itself, never confined to one logical partition's 20 GB and 10,000 RU/s.</summary>
    public string PartitionKeyFor(int step, JObject key)
    {
        var text = JournalId + "\n" + step.ToString(CultureInfo.InvariantCulture) + "\n" + key.ToString(Newtonsoft.Json.Formatting.None);
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)), 0, 16).ToLowerInvariant();
    }

    /// <summary>The condition that selects one step's entries.</summary>
    public string Condition(int step) => $"c.journal = {FieldPath.SqlLiteral(JournalId)} AND c.step = {step.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>The journal container's entries of one migration: before-images written before the
/// write they protect, and removed once their document is restored. Every request goes through the
/// run's sender, so the run's RU budget, concurrency and retries cover the journal too.</summary>
public sealed class JournalStore
{
    /// <summary>The journal container's partition key path.</summary>
    public const string PartitionKeyPath = "/pk";

    private const int MaxConflictRetries = 8;

    public JournalStore(TargetContainer container, JournalScope scope, int? ttlSeconds, ResilientSender sender)
    {
        Container = container;
        Scope = scope;
        TtlSeconds = ttlSeconds;
        Sender = sender;
    }

    public TargetContainer Container { get; }

    public JournalScope Scope { get; }

    /// <summary>Per-entry retention (Cosmos DB's per-item TTL); null keeps entries until undone.</summary>
    public int? TtlSeconds { get; }

    public ResilientSender Sender { get; }

    /// <summary>How the journal container is made: partition key /pk (a hash per journal, step and
    /// target partition), per-item TTL on with no default (entries live as long as their own ttl
    /// says, or until removed), and only what the undo queries by indexed (the before-images are
    /// not: an entry costs the RU of a write, not of indexing every value it carries).</summary>
    public static ContainerProperties NewContainerProperties(string name)
    {
        var properties = new ContainerProperties(name, PartitionKeyPath) { DefaultTimeToLive = -1 };
        properties.IndexingPolicy.IncludedPaths.Clear();
        properties.IndexingPolicy.ExcludedPaths.Clear();
        properties.IndexingPolicy.IncludedPaths.Add(new IncludedPath { Path = "/journal/?" });
        properties.IndexingPolicy.IncludedPaths.Add(new IncludedPath { Path = "/step/?" });
        properties.IndexingPolicy.IncludedPaths.Add(new IncludedPath { Path = "/migration/?" });
        properties.IndexingPolicy.ExcludedPaths.Add(new ExcludedPath { Path = "/*" });
        return properties;
    }

    /// <summary>Makes the before-image of <paramref name="edit"/> durable, before the write it
    /// protects. A new entry is created; when one is already there (a resumed or repeated run, or a
    /// retry after a conflict) it is merged by <see cref="JournalEntry.Merge"/> and replaced under
    /// its ETag, so that an earlier before-image is never overwritten with a state the migration
    /// already changed. Returns what was there before (for <see cref="ForgetAsync"/>), or why this
    /// document cannot be journaled (then it must not be changed); throws when the journal itself is
    /// unavailable.</summary>
    public async Task<(JournalRecord? Record, string? Problem)> RecordAsync(int step, DocumentEdit edit, PartitionKeyReader targetKey, CancellationToken cancellationToken)
    {
        var entry = JournalEntry.FromEdit(edit, targetKey.Paths);
        var json = entry.ToJson(Scope, step, TtlSeconds);
        var partitionKey = new PartitionKey((string)json["pk"]!);
        var id = entry.Id;
        var container = Container.Container;
        using (var created = await SendAsync(ct => WithBody(json, body => container.CreateItemStreamAsync(body, partitionKey, Quiet, ct)), id, cancellationToken).ConfigureAwait(false))
        {
            if (created.IsSuccessStatusCode)
            {
                return (new JournalRecord(id, partitionKey, null), null);
            }

            if (created.StatusCode != HttpStatusCode.Conflict)
            {
                return (null, Refused(created, id));
            }
        }

        for (var attempt = 0; attempt < MaxConflictRetries; attempt++)
        {
            using var read = await SendAsync(ct => container.ReadItemStreamAsync(id, partitionKey, cancellationToken: ct), id, cancellationToken).ConfigureAwait(false);
            if (read.StatusCode == HttpStatusCode.NotFound)
            {
                using var again = await SendAsync(ct => WithBody(json, body => container.CreateItemStreamAsync(body, partitionKey, Quiet, ct)), id, cancellationToken).ConfigureAwait(false);
                if (again.IsSuccessStatusCode)
                {
                    return (new JournalRecord(id, partitionKey, null), null);
                }

                if (again.StatusCode != HttpStatusCode.Conflict)
                {
                    return (null, Refused(again, id));
                }

                continue;
            }

            if (!read.IsSuccessStatusCode)
            {
                return (null, Refused(read, id));
            }

            var stored = DocumentJson.ReadObject(read.Content);
            var merged = JournalEntry.Merge(JournalEntry.FromJson(stored), edit, targetKey.Paths).ToJson(Scope, step, TtlSeconds);
            var options = new ItemRequestOptions { IfMatchEtag = read.Headers.ETag, EnableContentResponseOnWrite = false };
            using var replaced = await SendAsync(ct => WithBody(merged, body => container.ReplaceItemStreamAsync(body, id, partitionKey, options, ct)), id, cancellationToken).ConfigureAwait(false);
            if (replaced.IsSuccessStatusCode)
            {
                return (new JournalRecord(id, partitionKey, DocumentJson.WithoutSystemProperties(stored)), null);
            }

            if (replaced.StatusCode is not (HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound))
            {
                return (null, Refused(replaced, id));
            }
        }

        return (null, $"its before-image kept changing in the journal (after {MaxConflictRetries} attempts)");
    }

    /// <summary>The change a before-image was recorded for was not made after all (the document no
    /// longer needed it, was deleted, or refused it): the journal is put back as it was, so that an
    /// undo never mistakes the document for one changed since. Best effort: a failure is logged by the
    /// caller and leaves at worst an entry that an undo counts as a conflict.</summary>
    public async Task ForgetAsync(JournalRecord record, CancellationToken cancellationToken)
    {
        var container = Container.Container;
        using var response = record.Previous is null
            ? await SendAsync(ct => container.DeleteItemStreamAsync(record.Id, record.PartitionKey, cancellationToken: ct), record.Id, cancellationToken).ConfigureAwait(false)
            : await SendAsync(ct => WithBody(record.Previous, body => container.UpsertItemStreamAsync(body, record.PartitionKey, Quiet, ct)), record.Id, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode && response.StatusCode != HttpStatusCode.NotFound)
        {
            throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "JournalWriteFailed",
                $"Could not take back the journal entry of document '{record.Id}' (its change was not made).", record.Id);
        }
    }

    /// <summary>Removes an entry whose document is restored (gone already is fine).</summary>
    public async Task DeleteAsync(JObject stored, CancellationToken cancellationToken)
    {
        var id = (string)stored["id"]!;
        var partitionKey = new PartitionKey((string?)stored["pk"]);
        using var response = await SendAsync(ct => Container.Container.DeleteItemStreamAsync(id, partitionKey, cancellationToken: ct), id, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode && response.StatusCode != HttpStatusCode.NotFound)
        {
            throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "JournalWriteFailed",
                $"Could not remove the journal entry of document '{id}' (restored) from '{Container.Name}'.", id);
        }
    }

    private static readonly ItemRequestOptions Quiet = new() { EnableContentResponseOnWrite = false };

    private static async Task<ResponseMessage> WithBody(JObject json, Func<System.IO.Stream, Task<ResponseMessage>> send)
    {
        using var body = DocumentJson.ToStream(json);
        return await send(body).ConfigureAwait(false);
    }

    private Task<ResponseMessage> SendAsync(Func<CancellationToken, Task<ResponseMessage>> call, string id, CancellationToken cancellationToken) =>
        Sender.SendAsync(call, $"Journaling document '{id}'", cancellationToken);

    private string Refused(ResponseMessage response, string id)
    {
        if (response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
        {
            // The journal container itself is gone or closed to us: no document can be journaled.
            throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "JournalWriteFailed",
                $"The journal container '{Container.Name}' refused the before-image of document '{id}'.", Container.Name,
                "Check that the journal container exists and that this identity may write to it, then start again (the run resumes from its checkpoint); or run with -NoJournal to give up undo.");
        }

        var error = CosmosErrors.FromResponse(response);
        return $"its before-image could not be journaled (HTTP {(int)response.StatusCode}: {CosmosErrors.FirstLine(error.ResponseBody ?? error.Message)})";
    }
}

/// <summary>A before-image just recorded: the entry's identity, and what the journal held before
/// (null when the entry was new).</summary>
public sealed record JournalRecord(string Id, PartitionKey PartitionKey, JObject? Previous);
