using System;
using System.Collections.Generic;
using System.Net;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using Microsoft.Azure.Cosmos;

namespace CosmosMigrations.Tracking;

/// <summary>Reads and writes tracking documents. Every update is conditioned on the ETag the
/// caller read, so two runners can never both believe they hold a lease.</summary>
public sealed class TrackingStore
{
    private readonly Container _container;

    public TrackingStore(Container container)
    {
        _container = container;
    }

    public string ContainerName => _container.Id;

    public async Task<TrackingDocument?> GetAsync(string name, CancellationToken cancellationToken)
    {
        using var response = await _container.ReadItemStreamAsync(name, new PartitionKey(name), cancellationToken: cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        EnsureSuccess(response, name, "read");
        var document = DocumentJson.Read<TrackingDocument>(response.Content);
        document.ETag = response.Headers.ETag;
        return document;
    }

    /// <summary>The tracking document of a migration that must exist (Stop, Reset). Like every
    /// call made for an operator's command rather than for a run (which retries through its own
    /// gate), it retries a transient failure itself.</summary>
    public async Task<TrackingDocument> GetRequiredAsync(string name, CancellationToken cancellationToken) =>
        await TransientRetry.RunAsync(ct => GetAsync(name, ct), cancellationToken).ConfigureAwait(false)
        ?? throw new MigrationException(MigrationErrorKind.MigrationNotFound, "MigrationNotFound", $"There is no migration named '{name}'.", name,
            "List migrations with Get-MigrationStatus.");

    /// <summary>Creates the document; returns false when another runner created it first.</summary>
    public async Task<bool> TryCreateAsync(TrackingDocument document, CancellationToken cancellationToken)
    {
        document.ETag = null;
        using var body = DocumentJson.ToStream(document);
        using var response = await _container.CreateItemStreamAsync(body, new PartitionKey(document.Id), cancellationToken: cancellationToken).ConfigureAwait(false);
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
        document.ETag = null;
        using var body = DocumentJson.ToStream(document);
        document.ETag = etag;
        using var response = await _container.ReplaceItemStreamAsync(body, document.Id, new PartitionKey(document.Id),
            new ItemRequestOptions { IfMatchEtag = etag }, cancellationToken).ConfigureAwait(false);
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
        using var response = await TransientRetry.RunAsync(async ct => TransientRetry.ThrowIfTransient(
            await _container.DeleteItemStreamAsync(document.Id, new PartitionKey(document.Id), new ItemRequestOptions { IfMatchEtag = document.ETag }, ct).ConfigureAwait(false)),
            cancellationToken).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
            return false;
        }

        EnsureSuccess(response, document.Id, "delete");
        return true;
    }

    /// <summary>Every tracking document, by name; filtering by pattern and status is the caller's.</summary>
    public async IAsyncEnumerable<TrackingDocument> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // Page by page from the last good continuation, so that a throttled page is read again.
        string? continuation = null;
        do
        {
            var from = continuation;
            using var response = await TransientRetry.RunAsync(async ct =>
            {
                using var iterator = _container.GetItemQueryStreamIterator(new QueryDefinition("SELECT * FROM c"), from, new QueryRequestOptions { MaxItemCount = 200 });
                return TransientRetry.ThrowIfTransient(await iterator.ReadNextAsync(ct).ConfigureAwait(false));
            }, cancellationToken).ConfigureAwait(false);
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

    /// <summary>Applies <paramref name="change"/> to a fresh read until the conditioned write goes
    /// through (for updates from other processes: Stop-SchemaMigration).</summary>
    public Task<TrackingDocument?> UpdateWithRetryAsync(string name, Func<TrackingDocument, bool> change, CancellationToken cancellationToken) =>
        TransientRetry.RunAsync(ct => UpdateAsync(name, change, ct), cancellationToken);

    private async Task<TrackingDocument?> UpdateAsync(string name, Func<TrackingDocument, bool> change, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var document = await GetAsync(name, cancellationToken).ConfigureAwait(false);
            if (document is null || !change(document))
            {
                return document;
            }

            document.UpdatedAt = Clock.NowMs();
            if (await TryReplaceAsync(document, cancellationToken).ConfigureAwait(false))
            {
                return document;
            }
        }

        throw new MigrationException(MigrationErrorKind.ServiceError, "TrackingUpdateContended",
            $"The tracking document of '{name}' kept changing; the update did not go through.", name, "Try again.");
    }

    private static void EnsureSuccess(ResponseMessage response, string target, string action)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var ex = CosmosErrors.FromResponse(response);
        if (CosmosErrors.IsTransient(ex))
        {
            throw ex;
        }

        throw CosmosErrors.Wrap(ex, MigrationErrorKind.ServiceError, "TrackingWriteFailed", $"Could not {action} tracking document '{target}'.", target);
    }
}

/// <summary>Time as the tracking document stores it: epoch milliseconds.</summary>
public static class Clock
{
    public static long NowMs() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
}
