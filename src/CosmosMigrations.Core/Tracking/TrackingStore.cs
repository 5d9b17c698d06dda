using System.Runtime.CompilerServices;
using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;

namespace CosmosMigrations.Tracking;

/// <summary>Reads and writes tracking documents. Every update is conditioned on the ETag the
/// caller read, so two runners can never both believe they hold a lease. Every call retries what
/// is transient by itself (bookkeeping is tiny, so it bypasses the run's gate); when that fails
/// for good, the error is <c>TrackingUnavailable</c>.</summary>
internal sealed class TrackingStore
{
    private const int MaxConflicts = 10;

    private readonly Container _container;

    /// <summary>The tracking documents of a connection's database (the store keeps nothing but its
    /// container: one per call costs nothing).</summary>
    public static TrackingStore Of(MigrationConnection connection) => new(connection.Tracking);

    public TrackingStore(Container container)
    {
        _container = container;
    }

    public string ContainerName => _container.Id;

    public async Task<TrackingDocument?> GetAsync(string name, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(ct => _container.ReadItemStreamAsync(name, new PartitionKey(name), cancellationToken: ct), name, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        EnsureSuccess(response, name, "read");
        var document = DocumentJson.Read<TrackingDocument>(response.Content);
        document.ETag = response.Headers.ETag;
        return document;
    }

    /// <summary>The tracking document of a migration that must exist (Stop, Reset).</summary>
    public async Task<TrackingDocument> GetRequiredAsync(string name, CancellationToken cancellationToken) =>
        await GetAsync(name, cancellationToken).ConfigureAwait(false)
        ?? throw new MigrationException(MigrationErrorKind.MigrationNotFound, "MigrationNotFound", $"There is no migration named '{name}'.", name,
            "List migrations with Get-MigrationStatus.");

    /// <summary>Creates the document; returns false when another runner created it first.</summary>
    public async Task<bool> TryCreateAsync(TrackingDocument document, CancellationToken cancellationToken)
    {
        document.ETag = null;
        using var response = await SendAsync(async ct =>
        {
            using var body = DocumentJson.ToStream(document);
            return await _container.CreateItemStreamAsync(body, new PartitionKey(document.Id), cancellationToken: ct).ConfigureAwait(false);
        }, document.Id, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Conflict)
        {
            return false;
        }

        EnsureSuccess(response, document.Id, "create");
        document.ETag = response.Headers.ETag;
        return true;
    }

    /// <summary>Replaces the document if it is unchanged since it was read; returns false on a
    /// concurrent change (412) or when it was deleted (404).</summary>
    public async Task<bool> TryReplaceAsync(TrackingDocument document, CancellationToken cancellationToken)
    {
        var etag = document.ETag;
        using var response = await SendAsync(async ct =>
        {
            document.ETag = null;
            using var body = DocumentJson.ToStream(document);
            document.ETag = etag;
            return await _container.ReplaceItemStreamAsync(body, document.Id, new PartitionKey(document.Id),
                new ItemRequestOptions { IfMatchEtag = etag }, ct).ConfigureAwait(false);
        }, document.Id, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
            return false;
        }

        EnsureSuccess(response, document.Id, "update");
        document.ETag = response.Headers.ETag;
        return true;
    }

    /// <summary>Deletes a tracking document unless it changed since it was read (Reset).</summary>
    public async Task<bool> TryDeleteAsync(TrackingDocument document, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(ct => _container.DeleteItemStreamAsync(document.Id, new PartitionKey(document.Id), new ItemRequestOptions { IfMatchEtag = document.ETag }, ct),
            document.Id, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
            return false;
        }

        EnsureSuccess(response, document.Id, "delete");
        return true;
    }

    /// <summary>The one way a tracking document changes under concurrency (on the model of the
    /// change feed processor's lease updater): <paramref name="apply"/> gets the latest copy (first
    /// <paramref name="known"/> when the caller holds one, else a fresh read) and returns the
    /// document to write, or null to write nothing; the write is conditioned on the ETag, and on a
    /// conflict the document is read again and <paramref name="apply"/> decides again. Returns what
    /// was written, or the latest copy when <paramref name="apply"/> declined.</summary>
    public async Task<TrackingDocument?> UpdateAsync(string name, Func<TrackingDocument?, TrackingDocument?> apply, string purpose,
        CancellationToken cancellationToken, TrackingDocument? known = null)
    {
        var latest = known ?? await GetAsync(name, cancellationToken).ConfigureAwait(false);
        for (var attempt = 0; attempt < MaxConflicts; attempt++)
        {
            var next = apply(latest);
            if (next is null)
            {
                return latest;
            }

            next.UpdatedAt = Clock.NowMs();
            if (await TryReplaceAsync(next, cancellationToken).ConfigureAwait(false))
            {
                return next;
            }

            latest = await GetAsync(name, cancellationToken).ConfigureAwait(false);
        }

        throw new MigrationException(MigrationErrorKind.ServiceError, "TrackingUpdateContended",
            $"The tracking document of '{name}' kept changing; the {purpose} did not go through.", name, "Try again.");
    }

    /// <summary>Applies atomic patch operations (increments, sets, removals) without an ETag
    /// condition: for the counts and heartbeats of distributed workers, which must add up however
    /// many write at once. Returns false when the document does not exist.</summary>
    public async Task<bool> PatchAsync(string name, IReadOnlyList<PatchOperation> operations, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(ct => _container.PatchItemStreamAsync(name, new PartitionKey(name), operations, cancellationToken: ct), name, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }

        EnsureSuccess(response, name, "update");
        return true;
    }

    /// <summary>Applies patch operations only where <paramref name="filterPredicate"/> holds (one
    /// atomic check and write); returns the document as written, or null when the condition did
    /// not hold (or the document is gone).</summary>
    public async Task<TrackingDocument?> TryPatchAsync(string name, IReadOnlyList<PatchOperation> operations, string filterPredicate, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(ct => _container.PatchItemStreamAsync(name, new PartitionKey(name), operations,
            new PatchItemRequestOptions { FilterPredicate = filterPredicate, EnableContentResponseOnWrite = true }, ct), name, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
            return null;
        }

        EnsureSuccess(response, name, "update");
        if (response.Content is null)
        {
            return await GetAsync(name, cancellationToken).ConfigureAwait(false);
        }

        var document = DocumentJson.Read<TrackingDocument>(response.Content);
        document.ETag = response.Headers.ETag;
        return document;
    }

    /// <summary>Every tracking document, by name; filtering by pattern and status is the caller's.</summary>
    public async IAsyncEnumerable<TrackingDocument> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // Page by page from the last good continuation, so that a throttled page is read again.
        string? continuation = null;
        do
        {
            var from = continuation;
            using var response = await SendAsync(async ct =>
            {
                using var iterator = _container.GetItemQueryStreamIterator(new QueryDefinition("SELECT * FROM c"), from, new QueryRequestOptions { MaxItemCount = 200 });
                return await iterator.ReadNextAsync(ct).ConfigureAwait(false);
            }, ContainerName, cancellationToken).ConfigureAwait(false);
            EnsureSuccess(response, ContainerName, "list");
            foreach (var token in DocumentJson.ReadPage(response.Content))
            {
                var document = token.ToObject<TrackingDocument>(DocumentJson.Serializer)!;
                document.ETag = (string?)token["_etag"];
                yield return document;
            }

            continuation = response.ContinuationToken;
        }
        while (continuation is not null);
    }

    private static Task<ResponseMessage> SendAsync(Func<CancellationToken, Task<ResponseMessage>> call, string target, CancellationToken cancellationToken) =>
        ResilientSender.Ungated.SendAsync(call, $"Tracking document '{target}'", cancellationToken,
            new GiveUp("TrackingUnavailable", "The tracking container kept failing.", target, "Start again later: the run resumes from its checkpoint."));

    private static void EnsureSuccess(ResponseMessage response, string target, string action)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        throw CosmosErrors.Wrap(CosmosErrors.FromResponse(response), MigrationErrorKind.ServiceError, "TrackingWriteFailed", $"Could not {action} tracking document '{target}'.", target);
    }
}
