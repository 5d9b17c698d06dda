using System.Security.Cryptography;
using System.Text;
using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;
using CosmosMigrations.Requests;

namespace CosmosMigrations.Journal;

/// <summary>Whose entries: one migration's journal (its id), on one target container.</summary>
internal sealed record JournalScope(string JournalId, string Migration, string Container)
{
    /// <summary>The entry's logical partition: one per journal, step and target logical partition
    /// (a hash, so that long names and keys stay short). The journal is spread as widely as the
    /// target container itself, never confined to one logical partition's 20 GB and 10,000 RU/s.</summary>
    public string PartitionKeyFor(int step, JObject key) =>
        Hash(JournalId + "\n" + step.ToString(CultureInfo.InvariantCulture) + "\n" + key.ToString(Newtonsoft.Json.Formatting.None));

    /// <summary>A page record's logical partition: one per journal, step and record (a page spans
    /// many of the target's logical partitions, so records are spread by their own id).</summary>
    public string PartitionKeyForRecord(int step, string recordId) => Hash(JournalId + "\n" + step.ToString(CultureInfo.InvariantCulture) + "\nrecord\n" + recordId);

    private static string Hash(string text)
    {
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)), 0, 16).ToLowerInvariant();
    }

    /// <summary>The condition that selects one step's entries.</summary>
    public string Condition(int step) => $"c.journal = {FieldPath.SqlLiteral(JournalId)} AND c.step = {step.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>The journal container's records of one migration: before-images written a page at a
/// time before the writes they protect (<see cref="PageJournal"/>), kept until the undo of their
/// step completes. Requests go through a sender of their own: the run's RU budget and retries
/// cover the journal, but its requests never move the data lanes' concurrency limit.</summary>
internal sealed class JournalStore
{
    /// <summary>The journal container's partition key path.</summary>
    public const string PartitionKeyPath = "/pk";

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

    /// <summary>Records written from now on may hold a document's second image in its step (a
    /// catch-up scan, a resumed or repeated run): they are marked, and an undo looks for other
    /// images of a page's documents only when its step has marked records.</summary>
    public bool LaterImages { get; set; }

    /// <summary>A journal container of the connection, created when <paramref name="create"/> and
    /// missing (see <see cref="NewContainerProperties"/>); missing and not to be created is JournalMissing.</summary>
    public static async Task<TargetContainer> OpenContainerAsync(MigrationConnection connection, string name, bool create, CancellationToken cancellationToken) =>
        (await connection.GetStoreContainerAsync(NewContainerProperties(name), create, "journal container", "JournalContainerMissing",
            " Or run with -NoJournal (the run then cannot be undone).",
            gone => CosmosErrors.Wrap(gone, MigrationErrorKind.InvalidState, "JournalMissing", $"The journal container '{name}' does not exist: the before-images it held are gone.", name,
                "Nothing can be undone without them; write a new migration that reverses the change."),
            cancellationToken).ConfigureAwait(false))!;

    /// <summary>How the journal container is made: partition key /pk (a hash per journal, step and
    /// record), per-item TTL on with no default (records live as long as their own ttl says, or
    /// until removed), and only what the undo queries by indexed: the journal, step, migration,
    /// order (seq), whether a record may hold later images (late), and the documents' ids (the before-images are not: a record costs the RU of a write,
    /// not of indexing every value it carries).</summary>
    public static ContainerProperties NewContainerProperties(string name)
    {
        var properties = new ContainerProperties(name, PartitionKeyPath) { DefaultTimeToLive = -1 };
        properties.IndexingPolicy.IncludedPaths.Clear();
        properties.IndexingPolicy.ExcludedPaths.Clear();
        properties.IndexingPolicy.IncludedPaths.Add(new IncludedPath { Path = "/journal/?" });
        properties.IndexingPolicy.IncludedPaths.Add(new IncludedPath { Path = "/step/?" });
        properties.IndexingPolicy.IncludedPaths.Add(new IncludedPath { Path = "/migration/?" });
        properties.IndexingPolicy.IncludedPaths.Add(new IncludedPath { Path = "/seq/?" });
        properties.IndexingPolicy.IncludedPaths.Add(new IncludedPath { Path = "/ids/[]/?" });
        properties.IndexingPolicy.IncludedPaths.Add(new IncludedPath { Path = "/late/?" });
        properties.IndexingPolicy.ExcludedPaths.Add(new ExcludedPath { Path = "/*" });
        return properties;
    }

    internal Task<ResponseMessage> SendAsync(Func<CancellationToken, Task<ResponseMessage>> call, string what, CancellationToken cancellationToken) =>
        Sender.SendAsync(call, what, cancellationToken);

    /// <summary>Why the journal refused an image (a document that must then not be changed); throws
    /// when the journal container itself is gone or closed to this identity.</summary>
    internal string Refused(ResponseMessage response, string id)
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
