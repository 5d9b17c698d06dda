using CosmosMigrations.Documents;
using CosmosMigrations.Requests;

namespace CosmosMigrations.Distributed;

/// <summary>Tells when a document pass has seen every document: the change feed estimator
/// reports no lag on any lease of the pass's processor. A lease that never checkpointed (its
/// range had nothing to deliver, or nothing yet) gets the estimator's placeholder lag of 1; for
/// those, the range's change feed is read from the beginning: nothing there means nothing to do.</summary>
internal sealed class CatchUpWatch
{
    private readonly Container _monitored;
    private readonly Container _leases;
    private readonly string _processor;
    private readonly ChangeFeedEstimator _estimator;

    public CatchUpWatch(Container monitored, Container leases, string processor)
    {
        _monitored = monitored;
        _leases = leases;
        _processor = processor;
        _estimator = monitored.GetChangeFeedEstimator(processor, leases);
    }

    /// <summary>The estimated documents not yet seen (0: caught up), or null while the
    /// processor's leases do not exist yet.</summary>
    public async Task<long?> LagAsync(CancellationToken cancellationToken)
    {
        var states = new List<ChangeFeedProcessorState>();
        await ResilientSender.Ungated.RunAsync(async ct =>
        {
            states.Clear();
            using var iterator = _estimator.GetCurrentStateIterator();
            while (iterator.HasMoreResults)
            {
                states.AddRange(await iterator.ReadNextAsync(ct).ConfigureAwait(false));
            }

            return true;
        }, new GiveUp("TransientFailuresExhausted", "Estimating the change feed's lag kept failing.", _processor), cancellationToken).ConfigureAwait(false);
        if (states.Count == 0)
        {
            return null;
        }

        var lag = states.Sum(s => s.EstimatedLag);
        if (lag == 0 || states.Any(s => s.EstimatedLag > 1))
        {
            return lag;
        }

        // Only placeholders (1) left: check those leases that never checkpointed.
        var unstarted = await UncheckpointedRangesAsync(cancellationToken).ConfigureAwait(false);
        long remaining = states.Count(s => s.EstimatedLag == 1 && !unstarted.ContainsKey(s.LeaseToken));
        foreach (var state in states.Where(s => s.EstimatedLag == 1 && unstarted.ContainsKey(s.LeaseToken)))
        {
            if (unstarted[state.LeaseToken] is not { } range || await HasChangesAsync(range, cancellationToken).ConfigureAwait(false))
            {
                remaining++;
            }
        }

        return remaining;
    }

    /// <summary>Leases of this processor without a continuation token, by lease token, with their
    /// feed range (null when the lease does not say).</summary>
    private async Task<Dictionary<string, FeedRange?>> UncheckpointedRangesAsync(CancellationToken cancellationToken)
    {
        var query = new QueryDefinition("SELECT * FROM c WHERE STARTSWITH(c.id, @prefix) AND IS_DEFINED(c.LeaseToken)").WithParameter("@prefix", _processor);
        var result = new Dictionary<string, FeedRange?>(StringComparer.Ordinal);
        var leases = await ResilientSender.Ungated.QueryAllAsync(_leases, query, new GiveUp("TransientFailuresExhausted", "Reading the change feed leases kept failing.", _processor),
            cancellationToken).ConfigureAwait(false);
        foreach (var lease in leases)
        {
            if (string.IsNullOrEmpty((string?)lease["ContinuationToken"]) && (string?)lease["LeaseToken"] is { } token)
            {
                result[token] = lease["FeedRange"] is JObject range ? FeedRange.FromJsonString(range.ToString(Newtonsoft.Json.Formatting.None)) : null;
            }
        }

        return result;
    }

    private async Task<bool> HasChangesAsync(FeedRange range, CancellationToken cancellationToken)
    {
        using var response = await ResilientSender.Ungated.SendAsync(async ct =>
        {
            using var iterator = _monitored.GetChangeFeedStreamIterator(ChangeFeedStartFrom.Beginning(range), ChangeFeedMode.LatestVersion, new ChangeFeedRequestOptions { PageSizeHint = 1 });
            return await iterator.ReadNextAsync(ct).ConfigureAwait(false);
        }, "Reading a feed range's change feed", cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotModified)
        {
            return false;
        }

        response.EnsureSuccessStatusCode();
        return DocumentJson.ReadPage(response.Content).Any();
    }
}
