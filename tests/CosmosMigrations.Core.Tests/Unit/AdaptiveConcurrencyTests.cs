using CosmosMigrations.Requests;

namespace CosmosMigrations.Tests.Unit;

/// <summary>The concurrency controller against simulated accounts (a fake clock, so every run is
/// the same): what it settles on, and why.</summary>
public sealed class AdaptiveConcurrencyTests
{
    /// <summary>Runs the controller for <paramref name="windows"/> windows of 300 ms against an
    /// account whose throughput and latency depend on the requests in flight; returns the limits
    /// it chose, window by window.</summary>
    private static List<int> Simulate(AdaptiveConcurrency controller, Func<int, int, (double PerSecond, double LatencyMs)> account, int windows, ref TimeSpan now, Func<int, bool>? throttledIn = null)
    {
        var limits = new List<int>();
        for (var w = 0; w < windows; w++)
        {
            var limit = controller.Limit;
            limits.Add(limit);
            var (perSecond, latency) = account(limit, w);
            var completions = (int)(perSecond * 0.3);
            if (throttledIn?.Invoke(w) == true)
            {
                controller.OnThrottled();
            }

            for (var i = 0; i < completions; i++)
            {
                now += TimeSpan.FromSeconds(0.3 / completions);
                controller.OnCompleted(TimeSpan.FromMilliseconds(latency));
            }
        }

        return limits;
    }

    private static AdaptiveConcurrency Controller(int cap, Func<TimeSpan> clock) => new(cap, 16, clock);

    /// <summary>A controller whose reasons for every change of its limit are kept in <paramref name="reasons"/>.</summary>
    private static AdaptiveConcurrency Controller(int cap, Func<TimeSpan> clock, out List<string> reasons)
    {
        var controller = Controller(cap, clock);
        var changes = new List<string>();
        controller.Changed = (_, reason) => changes.Add(reason);
        reasons = changes;
        return controller;
    }

    [Fact]
    public void Far_from_the_account_it_climbs_while_throughput_rises_and_stops_at_the_knee()
    {
        // 5 ms away, an account that serves at most 4,000 requests/s: throughput = L / latency.
        var now = TimeSpan.Zero;
        var controller = Controller(256, () => now, out var reasons);
        (double, double) Account(int limit, int _)
        {
            var perSecond = Math.Min(limit / 0.005, 4000);
            return (perSecond, limit / perSecond * 1000);
        }

        var limits = Simulate(controller, Account, 60, ref now);

        // 4,000/s at 5 ms needs 20 in flight; a raise past the knee gains nothing and is undone.
        Assert.True(limits.Max() > 16, "it raised the limit while throughput rose");
        Assert.InRange(limits.Skip(40).Average(), 20, 45);
        Assert.Contains(reasons, r => r.Contains("raising to", StringComparison.Ordinal));
        Assert.Contains(reasons, r => r.Contains("no gain", StringComparison.Ordinal));
    }

    [Fact]
    public void When_more_in_flight_only_adds_latency_it_goes_back_and_holds()
    {
        // A saturated server nearby: the same throughput whatever the concurrency.
        var now = TimeSpan.Zero;
        var controller = Controller(64, () => now, out var reasons);

        var limits = Simulate(controller, (limit, _) => (2000, limit / 2.0), 40, ref now);

        Assert.True(limits.Count(l => l == 16) >= limits.Count / 2, "it spends most windows at the start, where it lost nothing");
        Assert.Contains(reasons, r => r.Contains("no gain", StringComparison.Ordinal) && r.EndsWith("back to 16", StringComparison.Ordinal));
        Assert.True(limits.Max() <= 24, "one step up at a time, undone when it does not pay");
    }

    [Fact]
    public void With_plenty_of_room_it_reaches_the_cap_and_never_passes_it()
    {
        var now = TimeSpan.Zero;
        var controller = Controller(50, () => now);
        var limits = Simulate(controller, (limit, _) => (limit * 200.0, 5), 30, ref now);
        Assert.Equal(50, limits.Last());
        Assert.True(limits.Max() <= 50);
    }

    [Fact]
    public void It_does_not_raise_while_throttled_and_steps_down_when_latency_climbs_without_gain()
    {
        var now = TimeSpan.Zero;
        var controller = Controller(64, () => now);
        var throttled = Simulate(controller, (limit, _) => (limit * 200.0, 5), 10, ref now, throttledIn: _ => true);
        Assert.All(throttled, l => Assert.Equal(16, l));
        Assert.StartsWith("throttled (429)", controller.Reason, StringComparison.Ordinal);

        // The account slows down (latency triples) and serves no more than before.
        var slower = Simulate(controller, (limit, w) => (2000, w < 2 ? 8 : 24), 6, ref now);
        Assert.True(slower.Last() < 16, $"lowered on rising latency: {string.Join(", ", slower)}");
    }

    [Fact]
    public void One_slow_window_is_noise_not_a_reason_to_step_down()
    {
        var now = TimeSpan.Zero;
        var controller = Controller(16, () => now);
        // At the cap already: 250 completions a millisecond apart make one window of the
        // controller. One window in four is slow (a busy shared CPU), the throughput the same.
        var limits = new List<int>();
        for (var window = 0; window < 16; window++)
        {
            limits.Add(controller.Limit);
            var latency = window % 4 == 3 ? 30 : 8;
            for (var i = 0; i < 250; i++)
            {
                now += TimeSpan.FromMilliseconds(1);
                controller.OnCompleted(TimeSpan.FromMilliseconds(latency));
            }
        }

        Assert.All(limits, l => Assert.Equal(16, l));
        Assert.DoesNotContain("latency rose", controller.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_throttled_range_slows_down_alone()
    {
        var run = RequestGate.Adaptive(32, null, start: 32);
        var hot = run.ForRange();
        var cool = run.ForRange();

        // The hot range's requests are throttled one congestion window after another.
        for (var i = 0; i < 5; i++)
        {
            using var slot = await hot.EnterAsync(CancellationToken.None);
            hot.OnThrottled(slot);
        }

        Assert.Equal(1, hot.Limit);
        Assert.Equal(32, cool.Limit);
        Assert.Equal(32, run.Limit);
        Assert.Equal(5, run.Throttles);

        // The cool range still gets all of the run's places at once.
        var places = new List<RequestGate.Slot>();
        for (var i = 0; i < 32; i++)
        {
            places.Add(await cool.EnterAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)));
        }

        // And the run's cap still holds across ranges: the hot range waits for a place.
        var waiting = hot.EnterAsync(CancellationToken.None);
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        places[0].Dispose();
        (await waiting.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
        places.Skip(1).ToList().ForEach(p => p.Dispose());
    }
}
