using System;

namespace CosmosMigrations.Tracking;

/// <summary>Time as the tracking document stores it: epoch milliseconds.</summary>
public static class Clock
{
    public static long NowMs() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
}
