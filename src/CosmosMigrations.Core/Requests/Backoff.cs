namespace CosmosMigrations.Requests;

/// <summary>The one back-off of the module: exponential from 50 ms, capped at 8 s, with jitter
/// (×0.5–1.5, so that many clients throttled together do not come back together), and never
/// shorter than the service's retry-after.</summary>
internal static class Backoff
{
    private static readonly Random Jitter = new();

    public static TimeSpan Delay(int attempt, TimeSpan? retryAfter)
    {
        double jitter;
        lock (Jitter)
        {
            jitter = Jitter.NextDouble();
        }

        var exponential = Math.Min(8000, 50 * Math.Pow(2, Math.Max(0, attempt - 1))) * (0.5 + jitter);
        return TimeSpan.FromMilliseconds(Math.Max(exponential, retryAfter?.TotalMilliseconds ?? 0));
    }
}
