using System.Collections;
using CosmosMigrations.Running;
using CosmosMigrations.Tests.Fakes;
using CosmosMigrations.Tests.Infrastructure;

namespace CosmosMigrations.Tests.Unit;

/// <summary>The scan over a container of several feed ranges, which only fakes can show (the
/// local server has one range): ranges side by side, each with its own continuation in the
/// tracking document; the next page read while this page's writes run; the checkpoint never past
/// a page whose writes are unfinished.</summary>
public sealed class FeedRangeScanTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Feed_ranges_are_scanned_side_by_side_each_with_its_own_cursor()
    {
        var (target, account) = FakeAccount.Orders(ranges: 3, documentsPerRange: 250);
        // The first page of each range is held until every range has asked for its first page:
        // a runner that scanned the ranges one after another would never get past the first.
        var firstPages = 0;
        var allStarted = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        target.BeforePage = async (_, position) =>
        {
            if (position == 0 && Volatile.Read(ref allStarted) is { Task.IsCompleted: false } gate)
            {
                if (Interlocked.Increment(ref firstPages) == 3)
                {
                    gate.TrySetResult(true);
                }

                await gate.Task.WaitAsync(Patience);
            }
        };
        using var connection = account.Connect();
        // What the tracking document holds after each checkpoint (a completed run clears it).
        var cursors = new System.Collections.Concurrent.ConcurrentQueue<JArray>();
        var runner = new MigrationRunner(connection)
        {
            AfterCheckpoint = _ =>
            {
                cursors.Enqueue((JArray)account.Tracking["ranges-add"]!["cursor"]!["ranges"]!);
                return Task.CompletedTask;
            },
        };

        var result = await runner.RunAsync(TestDefinitions.AddFlag("ranges-add", "orders"), new RunOptions { BatchSize = 100, MaxDegreeOfParallelism = 16 }, null, CancellationToken.None);

        Assert.Null(result.Error);
        Assert.Equal("completed", result.Status.Status);
        Assert.Equal(750, result.Status.Processed);
        Assert.Equal(750, target.Patches.Count);
        Assert.All(target.Patches.Values, n => Assert.Equal(1, n));
        Assert.All(target.Documents, d => Assert.Equal(true, (bool?)d["flag"]));

        Assert.All(cursors, ranges => Assert.Equal(target.FeedRanges.Select(r => r.ToJsonString()), ranges.Select(r => (string)r["range"]!)));
        // Every range's position is kept apart: each token names its own range.
        Assert.All(cursors.SelectMany(ranges => ranges.Select((r, i) => (Index: i, Continuation: (string?)r["continuation"]))).Where(c => c.Continuation is not null),
            c => Assert.StartsWith($"{c.Index}:", c.Continuation!, StringComparison.Ordinal));
        Assert.Contains(cursors, ranges => ranges.Count(r => r["continuation"]?.Type == JTokenType.String) >= 2);
        var finalCursor = account.Tracking["ranges-add"]!["cursor"];
        Assert.True(finalCursor is null || finalCursor.Type == JTokenType.Null, "a completed run clears its cursor");
    }

    [Fact]
    public async Task A_stopped_run_resumes_every_range_from_its_own_continuation()
    {
        var (target, account) = FakeAccount.Orders(ranges: 3, documentsPerRange: 300);
        using var connection = account.Connect();
        var definition = TestDefinitions.AddFlag("ranges-resume", "orders");

        var first = await new MigrationRunner(connection).RunAsync(definition, new RunOptions { BatchSize = 100, MaxBatches = 4 }, null, CancellationToken.None);

        Assert.Equal("cancelled", first.Status.Status);
        var saved = ((JArray)account.Tracking["ranges-resume"]!["cursor"]!["ranges"]!)
            .Select((r, i) => (Index: i, Continuation: (string?)r["continuation"], Done: (bool)r["done"]!))
            .ToList();
        // Each range's token is its own (the fake's tokens name their range), and some range
        // stopped part-way.
        Assert.All(saved.Where(s => s.Continuation is not null), s => Assert.StartsWith($"{s.Index}:", s.Continuation!, StringComparison.Ordinal));
        Assert.Contains(saved, s => s.Continuation is not null && !s.Done);
        var queriesBefore = target.Queries.Count;

        var second = await new MigrationRunner(connection).RunAsync(definition, new RunOptions { BatchSize = 100 }, null, CancellationToken.None);

        Assert.Equal("completed", second.Status.Status);
        // `processed` is the migration's total, across runs.
        Assert.Equal(900, second.Status.Processed);
        var resumedWith = target.Queries.Skip(queriesBefore).GroupBy(q => q.Range).ToDictionary(g => g.Key, g => g.First().Continuation);
        foreach (var range in saved.Where(s => !s.Done))
        {
            Assert.Equal(range.Continuation, resumedWith[range.Index]);
        }

        Assert.Equal(900, target.Patches.Count);
        Assert.All(target.Patches.Values, n => Assert.Equal(1, n));
    }

    [Fact]
    public async Task The_next_page_is_read_while_this_pages_writes_run_and_the_checkpoint_waits_for_them()
    {
        var (target, account) = FakeAccount.Orders(ranges: 1, documentsPerRange: 300);
        var secondPageRequested = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        string? cursorWhileHeld = null;
        string? cursorAfterHold = null;
        target.BeforePage = (_, position) =>
        {
            if (position == 100)
            {
                secondPageRequested.TrySetResult(true);
            }

            return Task.CompletedTask;
        };
        target.BeforePatch = async id =>
        {
            if (id == "r0-0000")
            {
                // Page 1's first write finishes only once page 2 is on its way.
                await secondPageRequested.Task.WaitAsync(Patience);
            }
            else if (id == "r0-0150")
            {
                // One write of page 2 is slow: the checkpoint may reach the end of page 1, never
                // past page 2, however far the other writes get meanwhile.
                cursorWhileHeld = Cursor(account);
                await Task.Delay(300);
                cursorAfterHold = Cursor(account);
            }
        };
        using var connection = account.Connect();

        var result = await new MigrationRunner(connection).RunAsync(TestDefinitions.AddFlag("pipelined", "orders"), new RunOptions { BatchSize = 100, MaxDegreeOfParallelism = 8 }, null, CancellationToken.None);

        Assert.Null(result.Error);
        Assert.Equal("completed", result.Status.Status);
        Assert.Equal(300, result.Status.Processed);
        Assert.True(secondPageRequested.Task.IsCompleted);
        Assert.Contains(cursorWhileHeld, new[] { null, "0:100" });
        Assert.Contains(cursorAfterHold, new[] { null, "0:100" });
    }

    [Fact]
    public async Task At_most_two_pages_are_in_flight_while_the_next_is_read()
    {
        var (target, account) = FakeAccount.Orders(ranges: 1, documentsPerRange: 1000);
        var served = 0;
        var checkpointed = 0;
        var mostAhead = 0;
        target.BeforePage = (_, _) =>
        {
            // Pages read but not checkpointed: the one whose checkpoint is being written, the one
            // being written, and the one now asked for. More would mean a third page in flight.
            var ahead = Interlocked.Increment(ref served) - Volatile.Read(ref checkpointed);
            InterlockedMax(ref mostAhead, ahead);
            return Task.CompletedTask;
        };
        target.BeforePatch = _ => Task.Delay(1);
        using var connection = account.Connect();
        var runner = new MigrationRunner(connection)
        {
            AfterCheckpoint = _ =>
            {
                Interlocked.Increment(ref checkpointed);
                return Task.CompletedTask;
            },
        };

        var result = await runner.RunAsync(TestDefinitions.AddFlag("in-flight", "orders"), new RunOptions { BatchSize = 50, MaxDegreeOfParallelism = 64 }, null, CancellationToken.None);

        Assert.Equal("completed", result.Status.Status);
        Assert.Equal(1000, result.Status.Processed);
        Assert.InRange(mostAhead, 2, 3);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while (value > (current = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }

    private static string? Cursor(FakeAccount account) =>
        (string?)account.Tracking["pipelined"]?["cursor"]?["ranges"]?[0]?["continuation"];
}
