using System.Diagnostics;
using CosmosMigrations.Requests;

namespace CosmosMigrations.Tests.Unit;

public sealed class RequestGateTests
{
    [Fact]
    public async Task Never_admits_more_than_the_limit_at_once()
    {
        var gate = new RequestGate(3, null);
        var inFlight = 0;
        var peak = 0;
        await Task.WhenAll(Enumerable.Range(0, 30).Select(async _ =>
        {
            using (await gate.EnterAsync(CancellationToken.None))
            {
                var now = Interlocked.Increment(ref inFlight);
                InterlockedMax(ref peak, now);
                await Task.Delay(5);
                Interlocked.Decrement(ref inFlight);
            }
        }));
        Assert.Equal(3, peak);
    }

    [Fact]
    public async Task Only_the_controller_moves_a_runs_limit_and_side_traffic_neither_moves_nor_feeds_it()
    {
        var gate = RequestGate.Adaptive(64, null, 2);
        var reasons = 0;
        gate.ConcurrencyChanged = (_, _) => Interlocked.Increment(ref reasons);

        // Requests through the run's own gate, and through a side gate (the journal's), succeed and
        // are throttled: the limit is the controller's, which has measured nothing yet.
        var side = gate.ForSideTraffic(4);
        for (var i = 0; i < 200; i++)
        {
            using (await gate.EnterAsync(CancellationToken.None))
            {
                gate.OnSuccess();
            }

            using (await side.EnterAsync(CancellationToken.None))
            {
                side.OnSuccess(TimeSpan.FromMilliseconds(1));
            }
        }

        using (var slot = await gate.EnterAsync(CancellationToken.None))
        {
            gate.OnThrottled(slot);
        }

        Assert.Equal(2, gate.Limit);
        Assert.Equal(0, reasons);
        Assert.StartsWith("starting at 2", gate.ConcurrencyReason, StringComparison.Ordinal);
        Assert.Equal(1, gate.Throttles);

        // A side gate has places of its own: with the run's two places taken, it still admits.
        using var first = await gate.EnterAsync(CancellationToken.None);
        using var second = await gate.EnterAsync(CancellationToken.None);
        using (await side.EnterAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            side.Record(5);
        }

        Assert.Equal(5, gate.TotalCharge);
    }

    [Fact]
    public async Task Throttling_halves_the_limit_once_per_window_and_successes_restore_it()
    {
        var gate = new RequestGate(16, null);
        var burst = new[] { await gate.EnterAsync(CancellationToken.None), await gate.EnterAsync(CancellationToken.None), await gate.EnterAsync(CancellationToken.None) };

        // Three requests in flight together are throttled: one congestion, one halving.
        foreach (var slot in burst)
        {
            gate.OnThrottled(slot);
            slot.Dispose();
        }

        Assert.Equal(8, gate.Limit);
        Assert.Equal(3, gate.Throttles);

        // A request sent after the halving and still throttled: halve again.
        using (var later = await gate.EnterAsync(CancellationToken.None))
        {
            gate.OnThrottled(later);
        }

        Assert.Equal(4, gate.Limit);
        Assert.Equal(4, gate.LowestLimit);
        for (var i = 0; i < 200; i++)
        {
            gate.OnSuccess();
        }

        Assert.Equal(16, gate.Limit);
        Assert.Equal(4, gate.LowestLimit);
    }

    [Fact]
    public async Task Holds_spending_to_the_budget()
    {
        // 10 requests of 10 RU against 100 RU/s: about a second (the first fifth of a second is burst).
        var gate = new RequestGate(8, 100);
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 10; i++)
        {
            using (await gate.EnterAsync(CancellationToken.None))
            {
                gate.Record(10);
            }
        }

        Assert.InRange(clock.Elapsed.TotalSeconds, 0.6, 3.0);
        Assert.Equal(100, gate.TotalCharge);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
