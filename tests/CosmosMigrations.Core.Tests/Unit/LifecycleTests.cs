using System.Collections;
using CosmosMigrations.Definitions;
using CosmosMigrations.Errors;
using CosmosMigrations.Journal;
using CosmosMigrations.Running;
using CosmosMigrations.Tests.Fakes;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Tests.Unit;

/// <summary>The rules of a migration's life (<see cref="MigrationLifecycle"/>): what a start does
/// for every status and lease state, what an undo does and refuses, and what stop and reset accept.</summary>
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

    /// <summary>The decision <paramref name="decide"/> makes, as <paramref name="expected"/> names it
    /// (its outcome, "+takeover" when it takes an expired lease over); or, when that is an error id
    /// ("Migration…"), null and the refusal (in <paramref name="refusal"/>), which names the other owner.</summary>
    private static StartDecision? Decided(Func<StartDecision> decide, string expected, out MigrationException? refusal)
    {
        refusal = null;
        if (expected.StartsWith("Migration", StringComparison.Ordinal))
        {
            refusal = Assert.Throws<MigrationException>(() => decide());
            Assert.Equal(expected, refusal.ErrorId);
            Assert.Contains(Other.ToString(), refusal.Message, StringComparison.Ordinal);
            return null;
        }

        var decision = decide();
        Assert.Equal(expected.Split('+')[0], decision.Outcome.ToString());
        Assert.Equal(expected.EndsWith("+takeover", StringComparison.Ordinal), decision.TakesOverExpiredLease);
        return decision;
    }

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

        var decision = Decided(() => MigrationLifecycle.Decide(existing, Request(force), Now), expected, out var refusal);
        if (decision is null)
        {
            Assert.Equal(MigrationErrorKind.AlreadyRunning, refusal!.Kind);
            return;
        }

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

    private static readonly JournalRequest Journal = new("migrations-journal", null, "rid-1");

    private static UndoRequest Undo(bool force = false, string? container = null, string? rid = "rid-1") =>
        new("m1", container, Me, TimeSpan.FromSeconds(60), force, rid);

    private static TrackingDocument Journaled(string status, LeaseOwner? owner = null, long? expiresAt = null, bool undoing = false, long conflicts = 0)
    {
        var document = Existing(status, owner, expiresAt);
        document.Journal = new JournalInfo { Id = "j1", Container = "migrations-journal", Complete = true, TargetRid = "rid-1", Since = 10, Passes = new() { 0 } };
        if (undoing || status == TrackingStatus.Undone)
        {
            document.Undo = new UndoInfo { StartedAt = 5, Migrated = 300 };
        }

        document.Conflicts = conflicts == 0 ? null : conflicts;
        return document;
    }

    // Every status × lease state × undo state: what an undo does (an outcome) or the error it raises.
    [Theory]
    [InlineData(TrackingStatus.Completed, "none", false, 0, "Started")]
    [InlineData(TrackingStatus.Failed, "none", false, 0, "Started")]
    [InlineData(TrackingStatus.Cancelled, "expired", false, 0, "Started")]
    [InlineData(TrackingStatus.Running, "expired", false, 0, "Started+takeover")]
    [InlineData(TrackingStatus.Running, "live-other", false, 0, "MigrationAlreadyRunning")]
    [InlineData(TrackingStatus.Running, "live-other", true, 0, "MigrationAlreadyRunning")]
    [InlineData(TrackingStatus.Cancelled, "none", true, 0, "Resumed")]
    [InlineData(TrackingStatus.Failed, "none", true, 0, "Resumed")]
    [InlineData(TrackingStatus.Running, "expired", true, 0, "Resumed+takeover")]
    [InlineData(TrackingStatus.Undone, "none", true, 0, "Skipped")]
    [InlineData(TrackingStatus.Undone, "none", true, 3, "Rerun")]
    public void An_undo_decides_by_status_lease_and_whether_an_undo_is_under_way(string status, string lease, bool undoing, long conflicts, string expected)
    {
        var existing = lease switch
        {
            "live-other" => Journaled(status, Other, undoing: undoing),
            "expired" => Journaled(status, Other, Now - 1, undoing),
            _ => Journaled(status, undoing: undoing, conflicts: conflicts),
        };

        var decision = Decided(() => MigrationLifecycle.DecideUndo(existing, Undo(), Now), expected, out _);
        if (decision is null)
        {
            return;
        }

        var document = decision.Document;
        if (decision.Outcome == StartOutcome.Skipped)
        {
            Assert.Equal(TrackingStatus.Undone, document.Status);
            return;
        }

        Assert.Equal(TrackingStatus.Running, document.Status);
        Assert.Equal("mine", document.Lease!.Owner.RunId);
        Assert.NotNull(document.Undo);
        Assert.Null(document.CompletedAt);
        switch (decision.Outcome)
        {
            case StartOutcome.Started:
                // From the first journal entry; what the migration changed is remembered.
                Assert.Equal(0, document.Cursor!.Step);
                Assert.Equal(0, document.Processed);
                Assert.Equal(7, document.Undo!.Migrated);
                Assert.Equal(Now, document.Undo.StartedAt);
                break;
            case StartOutcome.Resumed:
                Assert.Equal(1, document.Cursor!.Step);
                Assert.Equal(7, document.Processed);
                Assert.Equal(5, document.Undo!.StartedAt);
                break;
            case StartOutcome.Rerun:
                Assert.Equal(0, document.Cursor!.Step);
                Assert.Null(document.Conflicts);
                Assert.Equal(300, document.Undo!.Migrated);
                break;
        }
    }

    [Theory]
    [InlineData("no journal", "MigrationNotJournaled")]
    [InlineData("incomplete journal", "MigrationNotJournaled")]
    [InlineData("expired", "JournalExpired")]
    [InlineData("file names another container", "JournalContainerMismatch")]
    [InlineData("container recreated", "JournalContainerMismatch")]
    public void An_undo_that_cannot_be_exact_is_refused_before_anything_is_written(string problem, string errorId)
    {
        var existing = Journaled(TrackingStatus.Completed);
        var request = Undo();
        switch (problem)
        {
            case "no journal": existing.Journal = null; break;
            case "incomplete journal": existing.Journal!.Complete = false; break;
            case "expired": existing.Journal!.Ttl = 60; existing.Journal.Since = Now - 60_000; break;
            case "file names another container": request = Undo(container: "orders"); break;
            case "container recreated": request = Undo(rid: "rid-2"); break;
        }

        var error = Assert.Throws<MigrationException>(() => MigrationLifecycle.DecideUndo(existing, request, Now));
        Assert.Equal(errorId, error.ErrorId);
        Assert.Contains("'m1'", error.Message, StringComparison.Ordinal);
        Assert.NotNull(MigrationLifecycle.UndoBlocker(existing, Now) ?? (problem.Contains("container", StringComparison.Ordinal) ? "only a request names the container" : null));

        // Before its retention ends (counted from the whole second before the first entry, less a
        // margin for clock skew), the same journal can be undone.
        if (problem == "expired")
        {
            Assert.Equal(Now - 60_000 + 60_000 - 6_000, existing.Journal!.ExpiresAt);
            Assert.Equal(StartOutcome.Started, MigrationLifecycle.DecideUndo(existing, request, existing.Journal.ExpiresAt!.Value - 1).Outcome);
        }
    }

    [Fact]
    public void An_undone_migration_starts_again_as_new_with_an_empty_journal()
    {
        var existing = Journaled(TrackingStatus.Undone);
        existing.Journal!.Indexes = new() { new IndexImage { Step = 1 } };
        var decision = MigrationLifecycle.Decide(existing, Request() with { Journal = Journal }, Now);
        Assert.Equal(StartOutcome.Rerun, decision.Outcome);
        var document = decision.Document;
        Assert.Equal(TrackingStatus.Running, document.Status);
        Assert.Null(document.Undo);
        Assert.Equal(0, document.Processed);
        Assert.Equal(0, document.Cursor!.Step);
        Assert.Equal("j1", document.Journal!.Id);
        Assert.True(document.Journal.Complete);
        Assert.Null(document.Journal.Passes);
        Assert.Null(document.Journal.Indexes);
        Assert.Null(document.Journal.Since);

        // Documents left in conflict keep their entries (and their retention) for the next undo.
        var withConflicts = Journaled(TrackingStatus.Undone, conflicts: 2);
        var again = MigrationLifecycle.Decide(withConflicts, Request() with { Journal = Journal }, Now).Document;
        Assert.Equal(new[] { 0 }, again.Journal!.Passes);
        Assert.Equal(10, again.Journal.Since);
        Assert.Null(again.Conflicts);
    }

    [Fact]
    public void An_unfinished_undo_is_finished_by_undo_or_overridden_by_a_forced_start()
    {
        var error = Assert.Throws<MigrationException>(() => MigrationLifecycle.Decide(Journaled(TrackingStatus.Cancelled, undoing: true), Request() with { Journal = Journal }, Now));
        Assert.Equal("UndoInProgress", error.ErrorId);
        Assert.Contains("Undo-SchemaMigration", error.RecommendedAction, StringComparison.Ordinal);

        var forced = MigrationLifecycle.Decide(Journaled(TrackingStatus.Cancelled, undoing: true), Request(force: true) with { Journal = Journal }, Now);
        Assert.Equal(StartOutcome.Rerun, forced.Outcome);
        Assert.Null(forced.Document.Undo);
        Assert.Equal(0, forced.Document.Cursor!.Step);
        Assert.True(forced.Document.Journal!.Complete);
    }

    [Fact]
    public void One_run_without_before_images_makes_the_journal_incomplete_for_good_and_retention_is_the_shortest()
    {
        var started = MigrationLifecycle.Decide(null, Request() with { Journal = Journal with { TtlSeconds = 600 } }, Now).Document;
        Assert.True(started.Journal!.Complete);
        Assert.Equal(600, started.Journal.Ttl);
        Assert.Equal("rid-1", started.Journal.TargetRid);
        Assert.Equal(MigrationLifecycle.JournalId("m1", "users"), started.Journal.Id);
        Assert.Equal(32, started.Journal.Id.Length);
        Assert.NotEqual(MigrationLifecycle.JournalId("m1", "users"), MigrationLifecycle.JournalId("m1", "orders"));

        started.Status = TrackingStatus.Cancelled;
        started.Lease = null;
        var shorter = MigrationLifecycle.Decide(started, Request() with { Journal = Journal with { TtlSeconds = 60 } }, Now).Document;
        Assert.Equal(60, shorter.Journal!.Ttl);

        shorter.Status = TrackingStatus.Failed;
        var unjournaled = MigrationLifecycle.Decide(shorter, Request(), Now).Document;
        Assert.False(unjournaled.Journal!.Complete);
        unjournaled.Status = TrackingStatus.Failed;
        Assert.False(MigrationLifecycle.Decide(unjournaled, Request() with { Journal = Journal }, Now).Document.Journal!.Complete);

        // A migration tracked before the journal existed has changes without before-images.
        Assert.False(MigrationLifecycle.Decide(Existing(TrackingStatus.Failed), Request() with { Journal = Journal }, Now).Document.Journal!.Complete);
    }

    [Fact]
    public void The_end_of_an_undo_is_undone_and_leaves_the_journal_empty_unless_documents_were_left()
    {
        var undone = Journaled(TrackingStatus.Running, undoing: true);
        MigrationLifecycle.Complete(undone, Now);
        Assert.Equal(TrackingStatus.Undone, undone.Status);
        Assert.Equal(Now, undone.CompletedAt);
        Assert.Null(undone.Journal!.Passes);
        Assert.Null(undone.Journal.Since);

        var partly = Journaled(TrackingStatus.Running, undoing: true, conflicts: 4);
        MigrationLifecycle.Complete(partly, Now);
        Assert.Equal(TrackingStatus.Undone, partly.Status);
        Assert.Equal(new[] { 0 }, partly.Journal!.Passes);
        Assert.NotNull(MigrationLifecycle.UndoBlocker(undone, Now));
        Assert.Null(MigrationLifecycle.UndoBlocker(partly, Now));

        var forward = Journaled(TrackingStatus.Running);
        MigrationLifecycle.Complete(forward, Now);
        Assert.Equal(TrackingStatus.Completed, forward.Status);
        Assert.Null(MigrationLifecycle.UndoBlocker(forward, Now));
    }

    [Fact]
    public void Distributed_workers_keep_the_journal_complete_only_if_each_keeps_before_images_and_block_an_undo_while_they_live()
    {
        var running = Journaled(TrackingStatus.Running);
        running.Lease = null;
        running.Mode = MigrationLifecycle.DistributedMode;
        running.Workers = new() { ["other-2-abc"] = new WorkerRecord { Host = "other", ProcessId = 2, Heartbeat = Now - 1000, State = WorkerStates.Running } };

        var error = Assert.Throws<MigrationException>(() => MigrationLifecycle.DecideUndo(running, Undo(), Now));
        Assert.Equal("MigrationAlreadyRunning", error.ErrorId);
        Assert.Contains("other-2-abc", error.Message, StringComparison.Ordinal);
        Assert.NotNull(MigrationLifecycle.UndoBlocker(running, Now));

        // A worker that joins with -NoJournal: what it changes has no before-image.
        var joined = MigrationLifecycle.Decide(running, Request() with { Worker = "me-1-xyz" }, Now);
        Assert.Equal(StartOutcome.Joined, joined.Outcome);
        Assert.False(joined.Document.Journal!.Complete);

        // Once the workers are gone, the undo runs as a single run.
        running.Journal!.Complete = true;
        running.Workers.Remove("me-1-xyz");
        running.Workers["other-2-abc"].Heartbeat = Now - 120_000;
        var undo = MigrationLifecycle.DecideUndo(running, Undo(), Now);
        Assert.Equal(StartOutcome.Started, undo.Outcome);
        Assert.Null(undo.Document.Mode);
        Assert.Null(undo.Document.Workers);
        Assert.Equal("mine", undo.Document.Lease!.Owner.RunId);
    }

    // Decisions are pure: what was read stays as read (a caller decides again, or shows it, without
    // reading it again), and what they decide is written on the ETag of what was read.
    public static TheoryData<string> StartSituations => new()
    {
        "failed", "expired-lease", "completed-forced", "undone", "undone-with-conflicts", "unfinished-undo-forced",
        "distributed-joined", "distributed-workers-gone", "single-becomes-distributed", "completed-skipped", "live-lease-refused",
    };

    [Theory]
    [MemberData(nameof(StartSituations))]
    public void A_start_decision_leaves_the_document_it_read_as_read(string situation)
    {
        var distributed = Request() with { Journal = Journal, Worker = "me-1-xyz" };
        var (existing, request, expected) = situation switch
        {
            "failed" => (Journaled(TrackingStatus.Failed), Request() with { Journal = Journal }, StartOutcome.Resumed),
            "expired-lease" => (Journaled(TrackingStatus.Running, Other, Now - 1), Request(), StartOutcome.Resumed),
            "completed-forced" => (Journaled(TrackingStatus.Completed), Request(force: true) with { Journal = Journal }, StartOutcome.Rerun),
            "undone" => (Journaled(TrackingStatus.Undone), Request() with { Journal = Journal }, StartOutcome.Rerun),
            "undone-with-conflicts" => (Journaled(TrackingStatus.Undone, conflicts: 2), Request() with { Journal = Journal }, StartOutcome.Rerun),
            "unfinished-undo-forced" => (Journaled(TrackingStatus.Cancelled, undoing: true), Request(force: true), StartOutcome.Rerun),
            "distributed-joined" => (Distributed(Now - 1000), distributed with { Journal = null }, StartOutcome.Joined),
            "distributed-workers-gone" => (Distributed(Now - 120_000), distributed, StartOutcome.Resumed),
            "single-becomes-distributed" => (Journaled(TrackingStatus.Cancelled), distributed, StartOutcome.Resumed),
            "completed-skipped" => (Journaled(TrackingStatus.Completed), Request(checksum: "changed"), StartOutcome.Skipped),
            _ => (Journaled(TrackingStatus.Running, Other), Request(), (StartOutcome?)null),
        };
        DecidesLeavingWhatItReadAsRead(existing, expected, () => MigrationLifecycle.Decide(existing, request, Now));
    }

    public static TheoryData<string> UndoSituations => new()
    {
        "completed", "unfinished-undo", "expired-lease", "undone-with-conflicts", "distributed-workers-gone", "undone-skipped", "live-lease-refused", "not-journaled-refused",
    };

    [Theory]
    [MemberData(nameof(UndoSituations))]
    public void An_undo_decision_and_its_blocker_leave_the_document_they_read_as_read(string situation)
    {
        var (existing, expected) = situation switch
        {
            "completed" => (Journaled(TrackingStatus.Completed), StartOutcome.Started),
            "unfinished-undo" => (Journaled(TrackingStatus.Cancelled, undoing: true), StartOutcome.Resumed),
            "expired-lease" => (Journaled(TrackingStatus.Running, Other, Now - 1), StartOutcome.Started),
            "undone-with-conflicts" => (Journaled(TrackingStatus.Undone, conflicts: 3), StartOutcome.Rerun),
            "distributed-workers-gone" => (Distributed(Now - 120_000), StartOutcome.Started),
            "undone-skipped" => (Journaled(TrackingStatus.Undone), StartOutcome.Skipped),
            "live-lease-refused" => (Journaled(TrackingStatus.Running, Other), (StartOutcome?)null),
            _ => (Existing(TrackingStatus.Completed), (StartOutcome?)null),
        };
        var asRead = Stored(existing);
        var blocker = MigrationLifecycle.UndoBlocker(existing, Now);
        Assert.Equal(expected is null or StartOutcome.Skipped, blocker is not null);
        Assert.Equal(asRead, Stored(existing));
        DecidesLeavingWhatItReadAsRead(existing, expected, () => MigrationLifecycle.DecideUndo(existing, Undo(), Now));
    }

    public static TheoryData<string> RetrySituations => new() { "completed-with-failures", "failed-at-the-end", "completed-skipped", "live-lease-refused", "undone-refused" };

    [Theory]
    [MemberData(nameof(RetrySituations))]
    public void A_retry_decision_leaves_the_document_it_read_as_read(string situation)
    {
        var (existing, expected) = situation switch
        {
            "completed-with-failures" => (Existing(TrackingStatus.CompletedWithFailures), StartOutcome.Resumed),
            "failed-at-the-end" => (Existing(TrackingStatus.Failed), StartOutcome.Resumed),
            "completed-skipped" => (Existing(TrackingStatus.Completed), StartOutcome.Skipped),
            "live-lease-refused" => (Existing(TrackingStatus.Running, Other), (StartOutcome?)null),
            _ => (Journaled(TrackingStatus.Undone), (StartOutcome?)null),
        };
        existing.FailureCount = situation == "completed-skipped" ? null : 2;
        var definition = new DefinitionParser().ParseInline("m1", "users", null, new object?[] { new Hashtable { ["AddField"] = "a", ["Value"] = 1 } });
        DecidesLeavingWhatItReadAsRead(existing, expected, () => FailureRetry.Decide(existing, definition, Me, TimeSpan.FromSeconds(60), Now));
    }

    /// <summary>A decision (<paramref name="expected"/> null: a refusal) leaves the document it read
    /// as read; the document to write is another (for a skip, the one read), on the read's ETag, and
    /// the same when decided again.</summary>
    private static void DecidesLeavingWhatItReadAsRead(TrackingDocument existing, StartOutcome? expected, Func<StartDecision> decide)
    {
        existing.ETag = "\"etag-1\"";
        var asRead = Stored(existing);
        if (expected is null)
        {
            Assert.Throws<MigrationException>(() => decide());
            Assert.Equal(asRead, Stored(existing));
            return;
        }

        var decision = decide();
        Assert.Equal(expected, decision.Outcome);
        Assert.Equal(asRead, Stored(existing));
        Assert.Equal("\"etag-1\"", decision.Document.ETag);
        if (expected == StartOutcome.Skipped)
        {
            Assert.Same(existing, decision.Document);
            return;
        }

        Assert.NotSame(existing, decision.Document);
        Assert.Equal(TrackingStatus.Running, decision.Document.Status);
        Assert.NotEqual(asRead, Stored(decision.Document));
        Assert.Equal(Stored(decision.Document), Stored(decide().Document));
    }

    /// <summary>A journaled run on distributed workers, the other worker's last sign of life at <paramref name="heartbeat"/>.</summary>
    private static TrackingDocument Distributed(long heartbeat)
    {
        var running = Journaled(TrackingStatus.Running);
        running.Lease = null;
        running.Mode = MigrationLifecycle.DistributedMode;
        running.Generation = 1;
        running.Pending = new();
        running.Workers = new() { ["other-2-abc"] = new WorkerRecord { Host = "other", ProcessId = 2, Heartbeat = heartbeat, State = WorkerStates.Running } };
        return running;
    }

    private static string Stored(TrackingDocument document) => JObject.FromObject(document, Documents.DocumentJson.Serializer).ToString();
}
