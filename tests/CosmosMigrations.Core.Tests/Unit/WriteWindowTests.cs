using CosmosMigrations.Running;

namespace CosmosMigrations.Tests.Unit;

/// <summary>A range's writes start as places free up, never more at once than the limit of the
/// moment (its lane's, and its run's across ranges), and a cancelled run stops starting new ones.</summary>
public sealed class WriteWindowTests
{
    [Fact]
    public async Task Starts_no_more_writes_than_the_limit_and_the_rest_as_places_free_up()
    {
        var limit = 3;
        // Each read of the limit is a decision of the window: a start waiting for a place reads it
        // once, finds no place and waits; the test waits for that decision, never for a time.
        var reads = 0;
        var window = new WriteWindow(() => { Interlocked.Increment(ref reads); return limit; });
        var gates = new List<TaskCompletionSource<int>>();
        var inFlight = 0;
        var most = 0;
        Func<Task<int>> Write(int i) => async () =>
        {
            var gate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (gates)
            {
                gates.Add(gate);
                most = Math.Max(most, ++inFlight);
            }

            var value = await gate.Task;
            lock (gates)
            {
                inFlight--;
            }

            return value;
        };

        var started = new List<Task<int>>();
        var launcher = Task.Run(async () =>
        {
            for (var i = 0; i < 10; i++)
            {
                started.Add(await window.StartAsync(Write(i), CancellationToken.None));
            }
        });

        await WaitUntil(() => Count(gates) == 3);
        // The fourth start read the limit (three reads started the first three) and found no place.
        await WaitUntil(() => Volatile.Read(ref reads) >= 4);
        Assert.Equal(3, Count(gates));
        Assert.False(launcher.IsCompleted);

        // A lower limit holds new starts until the writes in flight are under it: the place freed
        // wakes the waiting start, which reads the limit again and waits on.
        limit = 1;
        var before = Volatile.Read(ref reads);
        Complete(gates, 0);
        await WaitUntil(() => Volatile.Read(ref reads) > before);
        Assert.Equal(3, Count(gates));
        Complete(gates, 1);
        Complete(gates, 2);
        await WaitUntil(() => Count(gates) == 4);

        Assert.True(most <= 3, $"at most 3 at once, saw {most}");
        limit = 10;
        for (var done = 3; done < 10; done++)
        {
            await WaitUntil(() => Count(gates) > done);
            Complete(gates, done);
        }

        await launcher;
        var results = await Task.WhenAll(started);
        Assert.Equal(new[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, results);
    }

    [Fact]
    public async Task Ranges_share_the_run_limit_and_a_place_freed_in_one_range_lets_another_start()
    {
        var runReads = 0;
        var run = new WriteWindow(() => { Interlocked.Increment(ref runReads); return 3; });
        var first = run.ForRange(() => 3);
        var second = run.ForRange(() => 3);
        var gates = new List<TaskCompletionSource<int>>();
        Func<Task<int>> Write() => () =>
        {
            var gate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (gates)
            {
                gates.Add(gate);
            }

            return gate.Task;
        };

        for (var i = 0; i < 3; i++)
        {
            _ = await first.StartAsync(Write(), CancellationToken.None);
        }

        // The run is full: the second range waits although its own lane is empty (its start read
        // the run's limit, a fourth time, and found no place).
        var waiting = second.StartAsync(Write(), CancellationToken.None);
        await WaitUntil(() => Volatile.Read(ref runReads) >= 4);
        Assert.False(waiting.IsCompleted);
        Assert.Equal(3, Count(gates));

        Complete(gates, 0);
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(4, Count(gates));
    }

    [Fact]
    public async Task A_cancelled_run_starts_nothing_more_once_a_place_frees_up()
    {
        var window = new WriteWindow(() => 1);
        var first = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cancellation = new CancellationTokenSource();
        var running = await window.StartAsync(() => first.Task, cancellation.Token);
        var secondStarted = false;
        var waiting = window.StartAsync(() => { secondStarted = true; return Task.FromResult(2); }, cancellation.Token);

        cancellation.Cancel();
        first.SetResult(1);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal(1, await running);
        Assert.False(secondStarted);
    }

    private static int Count(List<TaskCompletionSource<int>> gates)
    {
        lock (gates)
        {
            return gates.Count;
        }
    }

    private static void Complete(List<TaskCompletionSource<int>> gates, int index)
    {
        TaskCompletionSource<int> gate;
        lock (gates)
        {
            gate = gates[index];
        }

        gate.SetResult(index);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(5);
        }
    }
}
