using Microsoft.Extensions.Time.Testing;

namespace CosmosMigrations.Tests.Fakes;

/// <summary>A fake clock that knows whether the loop is waiting on it (a timer is pending), so
/// that each step is taken only once the loop has parked: the steps are exact however busy
/// the machine.</summary>
internal sealed class ObservedTime : FakeTimeProvider
{
    private int _created;
    private int _fired;

    public ObservedTime()
        : base(DateTimeOffset.FromUnixTimeSeconds(1_800_000_000))
    {
    }

    public bool Waiting => Volatile.Read(ref _created) > Volatile.Read(ref _fired);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        Interlocked.Increment(ref _created);
        return base.CreateTimer(s =>
        {
            Interlocked.Increment(ref _fired);
            callback(s);
        }, state, dueTime, period);
    }

    /// <summary>Moves the clock a second at a time, each time once the loop waits on it.</summary>
    public Task AdvanceAsync(int seconds) => AdvanceAsync(TimeSpan.FromSeconds(1), seconds);

    /// <summary>Moves the clock <paramref name="steps"/> times by <paramref name="step"/>, each
    /// time once the loop under test waits on it (a safety bound, not a timing: 30 s).</summary>
    public async Task AdvanceAsync(TimeSpan step, int steps)
    {
        for (var i = 0; i < steps; i++)
        {
            var parked = SpinWait.SpinUntil(() => Waiting, TimeSpan.FromSeconds(30));
            Assert.True(parked, "the loop under test never waited on the clock");
            Advance(step);
            await Task.Yield();
        }
    }
}
