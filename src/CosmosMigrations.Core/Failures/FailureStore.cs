using System.Runtime.CompilerServices;
using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Failures;

/// <summary>What recording a failure did: a document new to the store (counted once), or one
/// already there in this epoch (its attempts raised; its class may have changed).</summary>
internal readonly record struct RecordedFailure(bool New, FailureClass? PreviousClass);

/// <summary>The failure store: a container beside the tracking container
/// (<c>&lt;tracking&gt;-failures</c>), one entry per document and step that a migration could not
/// change. Entries are written as failures happen and read back as a stream, so a run with
/// millions of failures holds none of them in memory. Each entry is its own logical partition
/// (its id, a hash): the store spreads evenly whatever the target's keys. Requests go through the
/// run's side sender, as the journal's do.</summary>
internal sealed class FailureStore
{
    public const string PartitionKeyPath = "/pk";

    private const int MaxRecordAttempts = 8;

    private static readonly ItemRequestOptions Quiet = new() { EnableContentResponseOnWrite = false };

    private readonly Func<CancellationToken, Task<TargetContainer?>> _open;
    private readonly SemaphoreSlim _opening = new(1, 1);
    private TargetContainer? _container;
    private bool _opened;

    /// <summary>The store in the container <paramref name="open"/> gives (null: there is none yet,
    /// so nothing was ever recorded). It is opened at the first use: a run that meets no failure
    /// never creates it (an identity that may not create containers runs as before).</summary>
    public FailureStore(string name, Func<CancellationToken, Task<TargetContainer?>> open, ResilientSender sender)
    {
        Name = name;
        _open = open;
        Sender = sender;
    }

    /// <summary>The store's container name.</summary>
    public string Name { get; }

    private async Task<Container?> OpenAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _opened))
        {
            return _container?.Container;
        }

        await _opening.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_opened)
            {
                _container = await _open(cancellationToken).ConfigureAwait(false);
                Volatile.Write(ref _opened, true);
            }

            return _container?.Container;
        }
        finally
        {
            _opening.Release();
        }
    }

    private async Task<Container> RequiredAsync(CancellationToken cancellationToken) =>
        await OpenAsync(cancellationToken).ConfigureAwait(false)
        ?? throw new MigrationException(MigrationErrorKind.InvalidState, "FailureStoreMissing", $"The failure store container '{Name}' does not exist.", Name);

    public ResilientSender Sender { get; }

    /// <summary>The connection's failure store container, created when <paramref name="create"/> and
    /// missing (<see cref="NewContainerProperties"/>); null when missing and not to be created.</summary>
    public static Task<TargetContainer?> OpenContainerAsync(MigrationConnection connection, bool create, CancellationToken cancellationToken) =>
        connection.GetStoreContainerAsync(NewContainerProperties(connection.FailureContainerName), create, "failure store container", "FailureStoreMissing", "", null, cancellationToken);

    /// <summary>How the store's container is made: partition key /pk, per-item TTL on with no
    /// default (entries live as long as their own ttl says, as journal records do), and only what
    /// the store is queried by indexed (migration, epoch, class, step, resolved).</summary>
    public static ContainerProperties NewContainerProperties(string name)
    {
        var properties = new ContainerProperties(name, PartitionKeyPath) { DefaultTimeToLive = -1 };
        properties.IndexingPolicy.IncludedPaths.Clear();
        properties.IndexingPolicy.ExcludedPaths.Clear();
        foreach (var path in new[] { "/migration/?", "/epoch/?", "/class/?", "/step/?", "/resolved/?" })
        {
            properties.IndexingPolicy.IncludedPaths.Add(new IncludedPath { Path = path });
        }

        properties.IndexingPolicy.ExcludedPaths.Add(new ExcludedPath { Path = "/*" });
        return properties;
    }

    /// <summary>Writes <paramref name="entry"/>: created when new, else the entry already there
    /// (same document and step) takes the new error, class and before-image with one more attempt.
    /// An entry of an earlier epoch, or one resolved, counts as new again.</summary>
    public async Task<RecordedFailure> RecordAsync(FailureEntry entry, CancellationToken cancellationToken)
    {
        var partitionKey = new PartitionKey(entry.PartitionKeyValue);
        var container = await RequiredAsync(cancellationToken).ConfigureAwait(false);
        var attempts = entry.Attempts;
        for (var attempt = 0; attempt < MaxRecordAttempts; attempt++)
        {
            using (var created = await SendAsync(ct => container.CreateItemStreamAsync(DocumentJson.ToStream(entry), partitionKey, Quiet, ct),
                       $"Recording the failure of document '{entry.DocumentId}'", cancellationToken).ConfigureAwait(false))
            {
                if (created.IsSuccessStatusCode)
                {
                    return new RecordedFailure(true, null);
                }

                if (created.StatusCode != HttpStatusCode.Conflict)
                {
                    throw Refused(created, entry);
                }
            }

            var existing = await ReadAsync(entry.Id, cancellationToken).ConfigureAwait(false);
            if (existing is null)
            {
                continue;
            }

            var active = existing.Epoch == entry.Epoch && existing.Resolved != true;
            entry.Attempts = active ? existing.Attempts + attempts : attempts;
            using var replaced = await SendAsync(ct => container.ReplaceItemStreamAsync(DocumentJson.ToStream(entry), entry.Id, partitionKey,
                new ItemRequestOptions { IfMatchEtag = existing.ETag, EnableContentResponseOnWrite = false }, ct), $"Recording the failure of document '{entry.DocumentId}'", cancellationToken).ConfigureAwait(false);
            if (replaced.IsSuccessStatusCode)
            {
                return active ? new RecordedFailure(false, existing.FailureClass) : new RecordedFailure(true, null);
            }

            if (replaced.StatusCode is not (HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound))
            {
                throw Refused(replaced, entry);
            }
        }

        throw new MigrationException(MigrationErrorKind.ServiceError, "FailureStoreContended",
            $"The failure of document '{entry.DocumentId}' could not be recorded: its entry kept changing.", entry.DocumentId, "Start the migration again: it resumes from its checkpoint.");
    }

    /// <summary>One entry by its id, or null.</summary>
    public async Task<FailureEntry?> ReadAsync(string entryId, CancellationToken cancellationToken)
    {
        if (await OpenAsync(cancellationToken).ConfigureAwait(false) is not { } container)
        {
            return null;
        }

        using var response = await SendAsync(ct => container.ReadItemStreamAsync(entryId, new PartitionKey(entryId), cancellationToken: ct),
            "Reading a failure entry", cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        if (!response.IsSuccessStatusCode)
        {
            throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "FailureStoreReadFailed",
                $"Reading the failure store '{Name}' failed.", Name);
        }

        return DocumentJson.Read<FailureEntry>(response.Content);
    }

    /// <summary>The entries of <paramref name="migration"/> in <paramref name="epoch"/> that are
    /// still failures (optionally of one class), a page at a time (with <paramref name="resolved"/>,
    /// the resolved ones of every epoch instead).</summary>
    public async IAsyncEnumerable<FailureEntry> ListAsync(string migration, long epoch, FailureClass? failureClass, int pageSize,
        [EnumeratorCancellation] CancellationToken cancellationToken, bool resolved = false)
    {
        using var reader = await ReaderAsync(migration, epoch, failureClass, pageSize, cancellationToken, resolved).ConfigureAwait(false);
        if (reader is null)
        {
            yield break;
        }

        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false) is { } page)
        {
            foreach (var entry in page)
            {
                yield return entry;
            }
        }
    }

    /// <summary>A reader of the entries <see cref="ListAsync"/> lists, a page at a time (null when
    /// the store does not exist: nothing ever failed).</summary>
    public async Task<FailureReader?> ReaderAsync(string migration, long epoch, FailureClass? failureClass, int pageSize, CancellationToken cancellationToken, bool resolved = false)
    {
        if (await OpenAsync(cancellationToken).ConfigureAwait(false) is not { } container)
        {
            return null;
        }

        var text = "SELECT * FROM c WHERE c.migration = @migration" + (resolved ? " AND c.resolved = true" : " AND c.epoch = @epoch AND NOT IS_DEFINED(c.resolved)")
            + (failureClass is null ? "" : " AND c.class = @class");
        var query = new QueryDefinition(text).WithParameter("@migration", migration).WithParameter("@epoch", epoch);
        if (failureClass is { } wanted)
        {
            query = query.WithParameter("@class", wanted.ToString());
        }

        return new FailureReader(new Scanning.PageReader(container, null, query, null, pageSize, Sender));
    }

    /// <summary>What Get-MigrationFailure reads: the failures of migration <paramref name="name"/>
    /// (MigrationNotFound when it is not tracked) in its current epoch, a page at a time; null when
    /// the store does not exist.</summary>
    public static async Task<FailureReader?> OpenForMigrationAsync(MigrationConnection connection, string name, FailureClass? failureClass, int pageSize, CancellationToken cancellationToken)
    {
        await connection.EnsureTrackingContainerAsync(cancellationToken).ConfigureAwait(false);
        var tracked = await TrackingStore.Of(connection).GetRequiredAsync(name, cancellationToken).ConfigureAwait(false);
        var store = new FailureStore(connection.FailureContainerName, ct => OpenContainerAsync(connection, create: false, ct), ResilientSender.Ungated);
        return await store.ReaderAsync(tracked.Name, tracked.FailureEpoch ?? 0, failureClass, pageSize, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes back an entry read before (a retry that failed again), conditioned on its ETag.</summary>
    public async Task<bool> TryReplaceAsync(FailureEntry entry, CancellationToken cancellationToken)
    {
        var container = await RequiredAsync(cancellationToken).ConfigureAwait(false);
        using var response = await SendAsync(ct => container.ReplaceItemStreamAsync(DocumentJson.ToStream(entry), entry.Id, new PartitionKey(entry.PartitionKeyValue),
            new ItemRequestOptions { IfMatchEtag = entry.ETag, EnableContentResponseOnWrite = false }, ct), $"Updating the failure of document '{entry.DocumentId}'", cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            return true;
        }

        return response.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound ? false : throw Refused(response, entry);
    }

    /// <summary>Marks an entry resolved (a retry changed its document): no longer counted or
    /// listed, removed once the retry's count is written.</summary>
    public async Task MarkResolvedAsync(FailureEntry entry, CancellationToken cancellationToken)
    {
        var container = await RequiredAsync(cancellationToken).ConfigureAwait(false);
        using var response = await SendAsync(ct => container.PatchItemStreamAsync(entry.Id, new PartitionKey(entry.PartitionKeyValue),
            new[] { PatchOperation.Set("/resolved", true) }, new PatchItemRequestOptions { EnableContentResponseOnWrite = false }, ct),
            $"Resolving the failure of document '{entry.DocumentId}'", cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode && response.StatusCode != HttpStatusCode.NotFound)
        {
            throw Refused(response, entry);
        }
    }

    public async Task DeleteAsync(FailureEntry entry, CancellationToken cancellationToken)
    {
        var container = await RequiredAsync(cancellationToken).ConfigureAwait(false);
        using var response = await SendAsync(ct => container.DeleteItemStreamAsync(entry.Id, new PartitionKey(entry.PartitionKeyValue), Quiet, ct),
            $"Removing the failure of document '{entry.DocumentId}'", cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode && response.StatusCode != HttpStatusCode.NotFound)
        {
            throw Refused(response, entry);
        }
    }

    /// <summary>Removes every entry of <paramref name="migration"/> whose epoch is
    /// <paramref name="epoch"/> or older (its state was reset, or it was undone: no later run may
    /// meet them). Streamed: a page of entry ids at a time, each deleted in its own partition, so
    /// memory stays flat whatever the count. Returns how many were removed.</summary>
    public async Task<long> DeleteMigrationAsync(string migration, long epoch, CancellationToken cancellationToken)
    {
        if (await OpenAsync(cancellationToken).ConfigureAwait(false) is not { } container)
        {
            return 0;
        }

        var query = new QueryDefinition("SELECT c.id, c.pk, c.documentId FROM c WHERE c.migration = @migration AND c.epoch <= @epoch")
            .WithParameter("@migration", migration).WithParameter("@epoch", epoch);
        long removed = 0;
        using var reader = new Scanning.PageReader(container, null, query, null, 100, Sender);
        while (!reader.Finished && await reader.ReadAsync(cancellationToken).ConfigureAwait(false) is { } page)
        {
            var entries = page.Documents.Select(d => d.ToObject<FailureEntry>(DocumentJson.Serializer)!).ToList();
            removed += await DeleteAllAsync(entries, cancellationToken).ConfigureAwait(false);
        }

        return removed;
    }

    /// <summary>What Reset-SchemaMigration and an undo do once the migration's state is gone or
    /// undone: <see cref="DeleteMigrationAsync"/> in the connection's store (nothing when it does
    /// not exist).</summary>
    public static Task<long> DeleteForMigrationAsync(MigrationConnection connection, string migration, long epoch, CancellationToken cancellationToken) =>
        new FailureStore(connection.FailureContainerName, ct => OpenContainerAsync(connection, create: false, ct), ResilientSender.Ungated)
            .DeleteMigrationAsync(migration, epoch, cancellationToken);

    /// <summary>Removes the entries of <paramref name="migration"/> that retries resolved (what a
    /// retry killed after its count left behind); returns how many.</summary>
    public async Task<int> DeleteResolvedAsync(string migration, CancellationToken cancellationToken)
    {
        var removed = 0;
        var resolved = new List<FailureEntry>();
        await foreach (var entry in ListAsync(migration, 0, null, 100, cancellationToken, resolved: true).ConfigureAwait(false))
        {
            resolved.Add(entry);
            if (resolved.Count == 100)
            {
                removed += await DeleteAllAsync(resolved, cancellationToken).ConfigureAwait(false);
            }
        }

        return removed + await DeleteAllAsync(resolved, cancellationToken).ConfigureAwait(false);
    }

    private async Task<int> DeleteAllAsync(List<FailureEntry> entries, CancellationToken cancellationToken)
    {
        await Task.WhenAll(entries.ConvertAll(e => DeleteAsync(e, cancellationToken))).ConfigureAwait(false);
        var count = entries.Count;
        entries.Clear();
        return count;
    }

    private Task<ResponseMessage> SendAsync(Func<CancellationToken, Task<ResponseMessage>> call, string what, CancellationToken cancellationToken) =>
        Sender.SendAsync(call, what, cancellationToken);

    private MigrationException Refused(ResponseMessage response, FailureEntry entry) =>
        CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "FailureStoreWriteFailed",
            $"The failure store '{Name}' refused the entry of document '{entry.DocumentId}'.", Name,
            "Check that the failure store container exists and that this identity may write to it, then start again (the run resumes from its checkpoint).");
}

/// <summary>Pages of failure entries (one page in memory at a time).</summary>
internal sealed class FailureReader : IDisposable
{
    private readonly Scanning.PageReader _reader;

    internal FailureReader(Scanning.PageReader reader)
    {
        _reader = reader;
    }

    /// <summary>The next page, or null at the end.</summary>
    public async Task<IReadOnlyList<FailureEntry>?> ReadAsync(CancellationToken cancellationToken)
    {
        if (_reader.Finished || await _reader.ReadAsync(cancellationToken).ConfigureAwait(false) is not { } page)
        {
            return null;
        }

        return page.Documents.Select(d => d.ToObject<FailureEntry>(DocumentJson.Serializer)!).ToList();
    }

    public void Dispose() => _reader.Dispose();
}
