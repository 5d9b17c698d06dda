using System.Collections.Concurrent;
using CosmosMigrations.Running;
using CosmosMigrations.Tests.Fakes;
using CosmosMigrations.Tracking;
using Microsoft.Extensions.Time.Testing;

namespace CosmosMigrations.Tests.Unit;

/// <summary>The lease renewal both engines share (<see cref="LeaseRenewal"/>), on a fake clock: a
/// minute of leases passes in a fraction of a real second, and nothing here waits for real time
/// to pass.</summary>
public sealed class LeaseRenewalTests
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Renews_every_third_of_the_lease_when_nothing_else_renewed_it()
    {
        var time = new ObservedTime();
        var start = time.GetUtcNow();
        var renewals = new ConcurrentQueue<TimeSpan>();
        using var stop = new CancellationTokenSource();
        var loop = LeaseRenewal.RunAsync(time, Lease, null, _ =>
        {
            renewals.Enqueue(time.GetUtcNow() - start);
            return Task.CompletedTask;
        }, null, stop.Token);

        await time.AdvanceAsync(19);
        Assert.Empty(renewals);
        await time.AdvanceAsync(111);
        stop.Cancel();
        await loop;

        // At 20, 40, … seconds: never sooner than a third of the lease after the last one.
        Assert.Equal(new double[] { 20, 40, 60, 80, 100, 120 }, renewals.Select(r => r.TotalSeconds));
    }

    [Fact]
    public async Task Leaves_the_lease_alone_while_the_holder_renews_it_with_its_checkpoints()
    {
        var time = new ObservedTime();
        var renewals = 0;
        using var stop = new CancellationTokenSource();
        // The holder wrote a checkpoint five seconds ago, every time the loop looks.
        var loop = LeaseRenewal.RunAsync(time, Lease, () => time.NowMs() - 5_000, _ =>
        {
            Interlocked.Increment(ref renewals);
            return Task.CompletedTask;
        }, null, stop.Token);

        await time.AdvanceAsync(130);
        stop.Cancel();
        await loop;
        Assert.Equal(0, renewals);
    }

    [Fact]
    public async Task A_failed_renewal_is_said_and_tried_again_at_the_next_beat()
    {
        var time = new ObservedTime();
        var log = new ConcurrentQueue<string>();
        var attempts = 0;
        using var stop = new CancellationTokenSource();
        var loop = LeaseRenewal.RunAsync(time, Lease, null, _ =>
        {
            if (Interlocked.Increment(ref attempts) == 1)
            {
                throw new InvalidOperationException("the service is busy\nsecond line");
            }

            return Task.CompletedTask;
        }, log.Enqueue, stop.Token);

        await time.AdvanceAsync(45);
        stop.Cancel();
        await loop;
        Assert.Equal(2, attempts);
        Assert.Equal(new[] { "Lease renewal failed: the service is busy" }, log.ToArray());
    }

    [Fact]
    public async Task A_single_run_lease_moves_with_the_run_clock()
    {
        var time = new ObservedTime();
        var tracking = new FakeTrackingContainer();
        var store = new TrackingStore(tracking.Container);
        var owner = new LeaseOwner { Host = "me", ProcessId = 1, User = "u", RunId = "mine" };
        var start = await new MigrationLifecycle(store).StartAsync(
            new StartRequest("m1", "users", "abc", null, null, 1, owner, Lease), CancellationToken.None);
        var checkpoint = new LeasedCheckpoint(store, start.Document, owner, Lease, time);
        using var stop = new CancellationTokenSource();
        var loop = LeaseRenewal.RunAsync(time, Lease, () => checkpoint.LastWriteMs, checkpoint.RenewAsync, null, stop.Token);

        await time.AdvanceAsync(25);
        stop.Cancel();
        await loop;
        // Renewed on the fake clock, 20-odd seconds after the run started: it expires a lease later.
        var expiresAt = (long)tracking["m1"]!["lease"]!["expiresAt"]!;
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_800_000_020).ToUnixTimeMilliseconds(), checkpoint.LastWriteMs);
        Assert.Equal(checkpoint.LastWriteMs + (long)Lease.TotalMilliseconds, expiresAt);
    }
}
