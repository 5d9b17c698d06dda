using System.Collections.Concurrent;
using CosmosMigrations.Distributed;
using CosmosMigrations.Tests.Fakes;

namespace CosmosMigrations.Tests.Unit;

/// <summary>How a worker checkpoints a lease's change feed (<see cref="CheckpointPacer"/>): a
/// batch's checkpoint is owed, superseded by the next batch's, written once a second at most in
/// the handler, or when the range goes idle; never out of order, never after the lease went. On
/// a fake clock: nothing here waits for real time.</summary>
public sealed class CheckpointPacerTests
{
    private readonly ObservedTime _time = new();
    private readonly ConcurrentQueue<long> _written = new();

    private Func<Task> Checkpoint(long batch) => () =>
    {
        _written.Enqueue(batch);
        return Task.CompletedTask;
    };

    [Fact]
    public async Task Batches_in_quick_succession_owe_one_checkpoint_written_when_the_range_goes_idle()
    {
        var pacer = new CheckpointPacer(_time);
        for (var i = 0; i < 5; i++)
        {
            var batch = pacer.Begin();
            await pacer.FinishedAsync(batch, Checkpoint(batch));
            _time.Advance(TimeSpan.FromMilliseconds(50));
        }

        Assert.Empty(_written);
        await _time.AdvanceAsync(CheckpointPacer.Idle, 1);
        await WaitForAsync(1);

        // Only the last batch's: it covers the four before it.
        Assert.Equal(new long[] { 5 }, _written);
    }

    [Fact]
    public async Task A_checkpoint_is_written_in_the_handler_once_a_second_passed_since_the_last()
    {
        var pacer = new CheckpointPacer(_time);
        for (var i = 0; i < 12; i++)
        {
            var batch = pacer.Begin();
            _time.Advance(TimeSpan.FromMilliseconds(100));
            await pacer.FinishedAsync(batch, Checkpoint(batch));
        }

        // A steady stream of batches never goes idle, yet its checkpoints lag by a second at most.
        Assert.Equal(new long[] { 10 }, _written);
    }

    [Fact]
    public async Task A_batch_that_fails_leaves_the_owed_checkpoint_unwritten()
    {
        var pacer = new CheckpointPacer(_time);
        var first = pacer.Begin();
        await pacer.FinishedAsync(first, Checkpoint(first));
        // The next batch begins and throws: it never finishes.
        pacer.Begin();

        await _time.AdvanceAsync(CheckpointPacer.Idle, 1);
        await Task.Delay(50);

        Assert.Empty(_written);
    }

    [Fact]
    public async Task Nothing_is_written_after_the_lease_went()
    {
        var pacer = new CheckpointPacer(_time);
        var batch = pacer.Begin();
        await pacer.FinishedAsync(batch, Checkpoint(batch));
        pacer.Drop();

        await _time.AdvanceAsync(CheckpointPacer.Idle, 1);
        await Task.Delay(50);

        Assert.Empty(_written);
    }

    [Fact]
    public async Task A_late_checkpoint_under_way_is_never_overtaken_by_a_newer_one()
    {
        var pacer = new CheckpointPacer(_time);
        var first = pacer.Begin();
        var release = new TaskCompletionSource();
        await pacer.FinishedAsync(first, async () =>
        {
            _written.Enqueue(first);
            await release.Task;
            _written.Enqueue(-first);
        });
        await _time.AdvanceAsync(CheckpointPacer.Idle, 1);
        await WaitForAsync(1);

        // The idle write of batch 1 is under way when batch 2 must be written in the handler.
        var second = pacer.Begin();
        _time.Advance(CheckpointPacer.Every);
        var writing = pacer.FinishedAsync(second, Checkpoint(second));
        await Task.Delay(50);
        Assert.False(writing.IsCompleted);
        release.SetResult();
        await writing;

        Assert.Equal(new long[] { 1, -1, 2 }, _written);
    }

    [Fact]
    public async Task A_failed_checkpoint_in_the_handler_ends_the_batch_and_a_late_one_is_dropped_silently()
    {
        var pacer = new CheckpointPacer(_time);
        var first = pacer.Begin();
        _time.Advance(CheckpointPacer.Every);
        await Assert.ThrowsAsync<InvalidOperationException>(() => pacer.FinishedAsync(first, () => throw new InvalidOperationException("lease lost")));

        // Late, the same failure has no batch to end: it is dropped, and the next write goes on.
        var late = new CheckpointPacer(_time);
        var second = late.Begin();
        var tried = 0;
        await late.FinishedAsync(second, () =>
        {
            Interlocked.Increment(ref tried);
            throw new InvalidOperationException("lease lost");
        });
        await _time.AdvanceAsync(CheckpointPacer.Idle, 1);
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref tried) == 1, TimeSpan.FromSeconds(30)));
        var third = late.Begin();
        await late.FinishedAsync(third, Checkpoint(third));
        await _time.AdvanceAsync(CheckpointPacer.Idle, 1);
        await WaitForAsync(1);
        Assert.Equal(new long[] { 2 }, _written);
    }

    private async Task WaitForAsync(int count)
    {
        Assert.True(SpinWait.SpinUntil(() => _written.Count >= count, TimeSpan.FromSeconds(30)), "the owed checkpoint was never written");
        await Task.Yield();
    }
}
