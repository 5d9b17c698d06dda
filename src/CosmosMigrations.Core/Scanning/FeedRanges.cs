using CosmosMigrations.Connection;
using CosmosMigrations.Requests;

namespace CosmosMigrations.Scanning;

/// <summary>The feed ranges a scan covers: one per physical partition, scanned side by side, each
/// with its own continuation.</summary>
internal static class FeedRanges
{
    /// <summary>The container's ranges; a single null range (the whole container) when the service
    /// reports none.</summary>
    public static async Task<IReadOnlyList<FeedRange?>> GetAsync(TargetContainer target, CancellationToken cancellationToken)
    {
        var ranges = await ResilientSender.Ungated.RunAsync(ct => target.Container.GetFeedRangesAsync(ct),
            new GiveUp("TransientFailuresExhausted", "Reading the container's feed ranges kept failing.", target.Name,
                "The service is throttling or unavailable: start again later (the run resumes from its checkpoint)."),
            cancellationToken).ConfigureAwait(false);
        return ranges.Count == 0 ? new FeedRange?[] { null } : ranges.Cast<FeedRange?>().ToList();
    }

    /// <summary>A range as the tracking document stores it ("" for the whole container).</summary>
    public static string Serialize(FeedRange? range) => range?.ToJsonString() ?? "";

    public static FeedRange? Deserialize(string stored) => string.IsNullOrEmpty(stored) ? null : FeedRange.FromJsonString(stored);
}
