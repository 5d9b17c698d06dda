using CosmosMigrations.Documents;
using CosmosMigrations.Running;
using CosmosMigrations.Tests.Fakes;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Tests.Unit;

/// <summary>The run's tracking document under its lease (<see cref="LeasedCheckpoint"/>): every
/// write conditioned on the ETag; on a 412 it re-reads, and either applies its change again on top
/// of a stop request (the lease is still its own) or ends as LeaseLost without writing.</summary>
public sealed class LeasedCheckpointTests
{
    private static readonly LeaseOwner Me = new() { Host = "me", ProcessId = 1, User = "u", RunId = "mine" };

    private static readonly LeaseOwner Other = new() { Host = "other", ProcessId = 2, User = "u", RunId = "theirs" };

    private static async Task<(FakeTrackingContainer Tracking, LeasedCheckpoint Checkpoint)> StartedAsync()
    {
        var tracking = new FakeTrackingContainer();
        var store = new TrackingStore(tracking.Container);
        var start = await new MigrationLifecycle(store).StartAsync(
            new StartRequest("m1", "users", "abc", null, null, 1, Me, TimeSpan.FromSeconds(60)), CancellationToken.None);
        return (tracking, new LeasedCheckpoint(store, start.Document, Me, TimeSpan.FromSeconds(60)));
    }

    private static JObject Stored(FakeTrackingContainer tracking) => tracking["m1"]!;

    private static void WriteAsAnotherProcess(FakeTrackingContainer tracking, Action<JObject> change)
    {
        var document = Stored(tracking);
        change(document);
        tracking.Put(document);
    }

    [Fact]
    public async Task A_stop_request_written_meanwhile_is_kept_and_the_change_applied_again()
    {
        var (tracking, checkpoint) = await StartedAsync();
        await checkpoint.UpdateAsync(d => d.Processed += 10, CancellationToken.None);
        WriteAsAnotherProcess(tracking, d => d["stopRequested"] = true);

        await checkpoint.UpdateAsync(d => d.Processed += 5, CancellationToken.None);

        var stored = Stored(tracking);
        Assert.Equal(15, (long)stored["processed"]!);
        Assert.True((bool)stored["stopRequested"]!);
        Assert.True(checkpoint.Document.StopRequested);
        Assert.Equal("mine", (string)stored["lease"]!["owner"]!["runId"]!);
    }

    [Fact]
    public async Task A_lease_taken_over_ends_the_run_without_writing()
    {
        var (tracking, checkpoint) = await StartedAsync();
        WriteAsAnotherProcess(tracking, d => d["lease"] = JObject.FromObject(new Lease { Owner = Other, ExpiresAt = Clock.NowMs() + 60_000 }, DocumentJson.Serializer));
        var writes = tracking.Writes;

        var lost = await Assert.ThrowsAsync<LeaseLostException>(() => checkpoint.UpdateAsync(d => d.Processed += 5, CancellationToken.None));

        Assert.Equal("LeaseLost", lost.Error.ErrorId);
        Assert.Contains("taken over by", lost.Error.Message, StringComparison.Ordinal);
        Assert.Equal(writes, tracking.Writes);
        Assert.Equal(0, (long)Stored(tracking)["processed"]!);
        Assert.Equal("theirs", (string)Stored(tracking)["lease"]!["owner"]!["runId"]!);
    }

    [Fact]
    public async Task A_tracking_document_deleted_meanwhile_ends_the_run_without_recreating_it()
    {
        var (tracking, checkpoint) = await StartedAsync();
        tracking.Remove("m1");

        var lost = await Assert.ThrowsAsync<LeaseLostException>(() => checkpoint.UpdateAsync(d => d.Processed += 5, CancellationToken.None));

        Assert.Contains("was deleted", lost.Error.Message, StringComparison.Ordinal);
        Assert.Null(tracking["m1"]);
    }

    [Fact]
    public async Task Every_write_renews_the_lease_and_the_finish_releases_it()
    {
        var (tracking, checkpoint) = await StartedAsync();
        var before = (long)Stored(tracking)["lease"]!["expiresAt"]!;
        await Task.Delay(20);
        await checkpoint.UpdateAsync(d => d.Scanned += 1, CancellationToken.None);
        Assert.True((long)Stored(tracking)["lease"]!["expiresAt"]! > before);

        await checkpoint.FinishAsync(d => MigrationLifecycle.Cancel(d, "MaxDuration"), "m1", warn: null);

        var stored = Stored(tracking);
        Assert.Equal("cancelled", (string)stored["status"]!);
        Assert.Equal("MaxDuration", (string)stored["stopReason"]!);
        Assert.Null(stored["lease"]);
    }

    [Fact]
    public async Task Ctrl_C_mid_run_still_records_the_end_and_releases_the_lease()
    {
        var (target, account) = FakeAccount.Orders(ranges: 2, documentsPerRange: 300);
        using var connection = account.Connect();
        using var ctrlC = new CancellationTokenSource();
        var runner = new MigrationRunner(connection)
        {
            AfterCheckpoint = pages =>
            {
                if (pages == 2)
                {
                    ctrlC.Cancel();
                }

                return Task.CompletedTask;
            },
        };

        var result = await runner.RunAsync(Infrastructure.TestDefinitions.AddFlag("ctrl-c", "orders"), new RunOptions { BatchSize = 50 }, null, ctrlC.Token);

        Assert.Equal("Stopped", result.Status.Outcome);
        var stored = account.Tracking["ctrl-c"]!;
        Assert.Equal("cancelled", (string)stored["status"]!);
        Assert.Equal("Interrupted", (string)stored["stopReason"]!);
        Assert.Null(stored["lease"]);
        // Never more counted than written; the checkpoint never passed an unfinished page.
        Assert.True((long)stored["processed"]! <= target.Patches.Count);
        Assert.True((long)stored["scanned"]! <= (long)stored["processed"]!);
    }

    [Fact]
    public async Task The_heartbeat_renews_the_lease_at_a_third_of_its_duration()
    {
        var tracking = new FakeTrackingContainer();
        var store = new TrackingStore(tracking.Container);
        var lease = TimeSpan.FromMilliseconds(300);
        var start = await new MigrationLifecycle(store).StartAsync(new StartRequest("m1", "users", "abc", null, null, 1, Me, lease), CancellationToken.None);
        var time = new ObservedTime();
        var checkpoint = new LeasedCheckpoint(store, start.Document, Me, lease, time);
        var writes = tracking.Writes;
        using var stop = new CancellationTokenSource();
        // A lease of 300 ms: beats every 100 ms when no checkpoint renews it. A second passes on
        // the run's clock, not the machine's.
        var heartbeat = LeaseRenewal.RunAsync(time, lease, () => checkpoint.LastWriteMs, checkpoint.RenewAsync, null, stop.Token);
        await time.AdvanceAsync(TimeSpan.FromMilliseconds(100), 10);
        stop.Cancel();
        await heartbeat;

        // Ten beats fit in the second, each a renewal.
        Assert.Equal(10, tracking.Writes - writes);
    }
}
