using CosmosMigrations.Connection;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;

namespace CosmosMigrations.Scanning;

/// <summary>The estimate behind progress percentages: a server-side COUNT of what a scan will read.</summary>
internal static class DocumentCount
{
    /// <summary>Counts within 30 s, or returns null (and says why through <paramref name="log"/>):
    /// a percentage is a nicety, never a reason to fail. A condition the service rejects is an
    /// error, though: the scan would fail on it too.</summary>
    public static async Task<long?> EstimateAsync(TargetContainer target, string countQuery, string? condition, RequestGate gate, Action<string>? log, CancellationToken cancellationToken)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            return await SumAsync(target, new QueryDefinition(countQuery), gate, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            if (ex is CosmosException { StatusCode: HttpStatusCode.BadRequest } bad)
            {
                throw CosmosErrors.Wrap(bad, MigrationErrorKind.InvalidArgument, "InvalidQuery", $"The service rejected the scan condition: {condition}",
                    condition, "Check the filter: it must be a Cosmos SQL condition over c, e.g. NOT IS_DEFINED(c.avatarUrl).");
            }

            log?.Invoke($"Could not count the documents to migrate ({CosmosErrors.FirstLine(ex.Message)}); progress shows no percentage.");
            return null;
        }
    }

    /// <summary>A COUNT the caller needs exactly (a move's verification, its preflight's id check):
    /// retried by <paramref name="sender"/> until it answers, else the error <paramref name="giveUp"/> says.</summary>
    public static Task<long> CountAsync(TargetContainer target, QueryDefinition query, ResilientSender sender, GiveUp giveUp, CancellationToken cancellationToken) =>
        sender.RunAsync(ct => SumAsync(target, query, sender.Gate, ct), giveUp, cancellationToken);

    /// <summary>A COUNT query's pages summed (a cross-partition count answers a page per range), each
    /// page's charge recorded in the gate.</summary>
    private static async Task<long> SumAsync(TargetContainer target, QueryDefinition query, RequestGate? gate, CancellationToken cancellationToken)
    {
        using var iterator = target.Container.GetItemQueryIterator<long>(query);
        long total = 0;
        while (iterator.HasMoreResults)
        {
            var response = await iterator.ReadNextAsync(cancellationToken).ConfigureAwait(false);
            gate?.Record(response.RequestCharge);
            total += response.Sum();
        }

        return total;
    }
}
