namespace CosmosMigrations.Tracking;

/// <summary>Time as the tracking document stores it: epoch milliseconds.</summary>
internal static class Clock
{
    public static long NowMs() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>Now on <paramref name="time"/> (a run's clock: tests move a fake one instead of sleeping).</summary>
    public static long NowMs(this TimeProvider time) => time.GetUtcNow().ToUnixTimeMilliseconds();

    public static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
}
