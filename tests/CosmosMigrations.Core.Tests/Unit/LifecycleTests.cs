using System;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Errors;
using CosmosMigrations.Tests.Fakes;
using CosmosMigrations.Tracking;
using Newtonsoft.Json.Linq;
using Xunit;

namespace CosmosMigrations.Tests.Unit;

/// <summary>The rules of a migration's life (<see cref="MigrationLifecycle"/>): what a start does
/// for every status and lease state, and what stop and reset accept.</summary>
public sealed class LifecycleTests
{
    private const long Now = 1_000_000;

    private static readonly LeaseOwner Me = new() { Host = "me", ProcessId = 1, User = "u", RunId = "mine" };

    private static readonly LeaseOwner Other = new() { Host = "other", ProcessId = 2, User = "u", RunId = "theirs" };

    private static StartRequest Request(bool force = false, bool strict = false, string checksum = "abc", string container = "users") =>
        new("m1", container, checksum, "d", "/m/0001.psd1", 2, Me, TimeSpan.FromSeconds(60), force, strict);

    private static TrackingDocument Existing(string status, LeaseOwner? owner = null, long? expiresAt = null) => new()
    {
        Id = "m1",
        Name = "m1",
        Status = status,
        Container = "users",
        Checksum = "abc",
        Processed = 7,
        Scanned = 9,
        Runs = 1,
        StartedAt = 1,
        CompletedAt = status == TrackingStatus.Completed ? 2 : null,
        Cursor = status == TrackingStatus.Completed ? null : new MigrationCursor { Step = 1 },
        Lease = owner is null ? null : new Lease { Owner = owner, ExpiresAt = expiresAt ?? Now + 5000 },
    };

    // Every status × lease state: what the start does (an outcome) or the error it raises.
    [Theory]
    [InlineData(null, "none", false, "Started")]
    [InlineData(TrackingStatus.Running, "live-other", false, "MigrationAlreadyRunning")]
    [InlineData(TrackingStatus.Running, "live-other", true, "MigrationAlreadyRunning")]
    [InlineData(TrackingStatus.Running, "live-mine", false, "Resumed+takeover")]
    [InlineData(TrackingStatus.Running, "expired", false, "Resumed+takeover")]
    [InlineData(TrackingStatus.Running, "none", false, "Resumed+takeover")]
    [InlineData(TrackingStatus.Failed, "none", false, "Resumed")]
    [InlineData(TrackingStatus.Failed, "expired", false, "Resumed")]
    [InlineData(TrackingStatus.Cancelled, "none", false, "Resumed")]
    [InlineData(TrackingStatus.Cancelled, "expired", true, "Resumed")]
    [InlineData(TrackingStatus.Completed, "none", false, "Skipped")]
    [InlineData(TrackingStatus.Completed, "none", true, "Rerun")]
    public void A_start_decides_by_status_and_lease(string? status, string lease, bool force, string expected)
    {
        var existing = status is null ? null : lease switch
        {
            "live-other" => Existing(status, Other),
            "live-mine" => Existing(status, Me),
            "expired" => Existing(status, Other, Now - 1),
            _ => Existing(status),
        };

        if (expected.StartsWith("Migration", StringComparison.Ordinal))
        {
            var error = Assert.Throws<MigrationException>(() => MigrationLifecycle.Decide(existing, Request(force), Now));
            Assert.Equal(expected, error.ErrorId);
            Assert.Equal(MigrationErrorKind.AlreadyRunning, error.Kind);
            Assert.Contains(Other.ToString(), error.Message, StringComparison.Ordinal);
            return;
        }

        var decision = MigrationLifecycle.Decide(existing, Request(force), Now);
        Assert.Equal(expected.Split('+')[0], decision.Outcome.ToString());
        Assert.Equal(expected.EndsWith("+takeover", StringComparison.Ordinal), decision.TakesOverExpiredLease);
        if (decision.Outcome == StartOutcome.Skipped)
        {
            Assert.Same(existing, decision.Document);
            Assert.Equal(TrackingStatus.Completed, decision.Document.Status);
            return;
        }

        // Whatever it found, a start that goes on holds the lease of this run, running.
        var document = decision.Document;
        Assert.Equal(TrackingStatus.Running, document.Status);
        Assert.Equal("mine", document.Lease!.Owner.RunId);
        Assert.Equal(Now + 60_000, document.Lease.ExpiresAt);
        Assert.Equal(Now, document.StartedAt);
        Assert.Null(document.Error);
        Assert.Null(document.StopRequested);
        Assert.Null(document.StopReason);
        switch (decision.Outcome)
        {
            case StartOutcome.Started:
                Assert.Equal(0, document.Cursor!.Step);
                Assert.Equal(1, document.Runs);
                Assert.Equal(0, document.Processed);
                break;
            case StartOutcome.Rerun:
                // From the first document again, counters reset.
                Assert.Equal(0, document.Cursor!.Step);
                Assert.Equal(0, document.Processed);
                Assert.Equal(0, document.Scanned);
                Assert.Null(document.CompletedAt);
                Assert.Equal(2, document.Runs);
                break;
            case StartOutcome.Resumed:
                // From the checkpoint, counters kept.
                Assert.Equal(1, document.Cursor!.Step);
                Assert.Equal(7, document.Processed);
                Assert.Equal(2, document.Runs);
                break;
        }
    }

    [Fact]
    public void A_name_tracked_for_another_container_is_refused()
    {
        var error = Assert.Throws<MigrationException>(() => MigrationLifecycle.Decide(Existing(TrackingStatus.Failed), Request(container: "orders"), Now));
        Assert.Equal("MigrationNameInUse", error.ErrorId);
    }

    [Fact]
    public void A_changed_definition_warns_or_with_strict_fails()
    {
        var decision = MigrationLifecycle.Decide(Existing(TrackingStatus.Completed), Request(checksum: "changed"), Now);
        Assert.Equal(StartOutcome.Skipped, decision.Outcome);
        Assert.Contains("changed since it completed", decision.Warning, StringComparison.Ordinal);

        var error = Assert.Throws<MigrationException>(() => MigrationLifecycle.Decide(Existing(TrackingStatus.Completed), Request(checksum: "changed", strict: true), Now));
        Assert.Equal("ChecksumMismatch", error.ErrorId);
    }

    [Fact]
    public void A_cursor_past_the_last_step_is_brought_back_to_the_end()
    {
        var existing = Existing(TrackingStatus.Failed);
        existing.Cursor = new MigrationCursor { Step = 5 };
        var decision = MigrationLifecycle.Decide(existing, Request(), Now);
        Assert.Equal(2, decision.Document.Cursor!.Step);
    }

    [Theory]
    [InlineData(TrackingStatus.Running, null)]
    [InlineData(TrackingStatus.Completed, "MigrationNotRunning")]
    [InlineData(TrackingStatus.Failed, "MigrationNotRunning")]
    [InlineData(TrackingStatus.Cancelled, "MigrationNotRunning")]
    public async Task Only_a_running_migration_can_be_asked_to_stop(string status, string? error)
    {
        var tracking = new FakeTrackingContainer();
        tracking.Put(JObject.FromObject(Existing(status, Other), Documents.DocumentJson.Serializer));
        var lifecycle = new MigrationLifecycle(new TrackingStore(tracking.Container));
        if (error is not null)
        {
            Assert.Equal(error, (await Assert.ThrowsAsync<MigrationException>(() => lifecycle.GetStoppableAsync("m1", CancellationToken.None))).ErrorId);
            return;
        }

        await lifecycle.GetStoppableAsync("m1", CancellationToken.None);
        var stopped = await lifecycle.RequestStopAsync("m1", CancellationToken.None);
        Assert.True(stopped!.StopRequested);
        Assert.True((bool)tracking["m1"]!["stopRequested"]!);
        Assert.Equal("other", (string)tracking["m1"]!["lease"]!["owner"]!["host"]!);
    }

    [Theory]
    [InlineData(TrackingStatus.Failed, null)]
    [InlineData(TrackingStatus.Cancelled, null)]
    [InlineData(TrackingStatus.Running, "MigrationNotResettable")]
    [InlineData(TrackingStatus.Completed, "MigrationNotResettable")]
    public async Task Only_a_failed_or_cancelled_migration_can_be_reset(string status, string? error)
    {
        var tracking = new FakeTrackingContainer();
        tracking.Put(JObject.FromObject(Existing(status), Documents.DocumentJson.Serializer));
        var lifecycle = new MigrationLifecycle(new TrackingStore(tracking.Container));
        if (error is not null)
        {
            Assert.Equal(error, (await Assert.ThrowsAsync<MigrationException>(() => lifecycle.GetResettableAsync("m1", CancellationToken.None))).ErrorId);
            Assert.NotNull(tracking["m1"]);
            return;
        }

        var current = await lifecycle.GetResettableAsync("m1", CancellationToken.None);
        await lifecycle.ResetAsync(current, CancellationToken.None);
        Assert.Null(tracking["m1"]);
    }

    [Fact]
    public async Task A_reset_deletes_nothing_when_the_migration_changed_since_it_was_read()
    {
        var tracking = new FakeTrackingContainer();
        tracking.Put(JObject.FromObject(Existing(TrackingStatus.Failed), Documents.DocumentJson.Serializer));
        var lifecycle = new MigrationLifecycle(new TrackingStore(tracking.Container));
        var current = await lifecycle.GetResettableAsync("m1", CancellationToken.None);
        // Another runner starts it meanwhile.
        tracking.Put(JObject.FromObject(Existing(TrackingStatus.Running, Other), Documents.DocumentJson.Serializer));

        var error = await Assert.ThrowsAsync<MigrationException>(() => lifecycle.ResetAsync(current, CancellationToken.None));
        Assert.Equal("MigrationChanged", error.ErrorId);
        Assert.Equal(TrackingStatus.Running, (string)tracking["m1"]!["status"]!);
    }

    [Fact]
    public async Task Two_starts_at_once_give_the_lease_to_one()
    {
        var tracking = new FakeTrackingContainer();
        var store = new TrackingStore(tracking.Container);
        var first = await new MigrationLifecycle(store).StartAsync(Request(), CancellationToken.None);
        Assert.Equal(StartOutcome.Started, first.Outcome);

        var other = Request() with { Owner = Other };
        var error = await Assert.ThrowsAsync<MigrationException>(() => new MigrationLifecycle(store).StartAsync(other, CancellationToken.None));
        Assert.Equal("MigrationAlreadyRunning", error.ErrorId);
        Assert.Equal("mine", (string)tracking["m1"]!["lease"]!["owner"]!["runId"]!);
    }
}
