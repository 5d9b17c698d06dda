using CosmosMigrations.Connection;
using CosmosMigrations.Distributed;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;
using CosmosMigrations.Running;
using CosmosMigrations.Steps;
using CosmosMigrations.Tests.Fakes;
using CosmosMigrations.Tests.Infrastructure;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Tests.Unit;

/// <summary>The count rules both engines share (<see cref="ChangeIntents"/>, <see cref="RangeLedger"/>):
/// a page's or batch's changes are counted once, with the write that removes its intent, or from
/// its intent by whoever takes its range over; never both.</summary>
public sealed class ExactCountTests
{
    private static PageIntent Intent(string worker, long page, params string[] ids) =>
        new() { Worker = worker, Page = page, Documents = ids.Select(id => new JObject { ["id"] = id, ["_etag"] = "\"1\"" }).ToList() };

    /// <summary>A worker's intent for a batch, written to the range's ledger before the batch is.</summary>
    private static PageIntent Open(RangeLedgerDocument ledger, string worker, long page, params string[] ids) =>
        ledger.Intent = Intent(worker, page, ids);

    /// <summary>A range's new ledger, with a worker's intent for its first batch open.</summary>
    private static (RangeLedgerDocument Ledger, PageIntent Intent) Opened(string worker, long page, params string[] ids)
    {
        var ledger = new RangeLedgerDocument();
        return (ledger, Open(ledger, worker, page, ids));
    }

    private static DocumentWriter Planner(TargetContainer target) =>
        new(target, (DocumentPass)TestDefinitions.AddField("m", target.Name, "f", 1).Steps[0], ResilientSender.Ungated);

    [Fact]
    public void A_batch_is_counted_with_the_write_that_removes_its_intent()
    {
        var ledger = new RangeLedgerDocument { Intent = Intent("a", 1, "d1", "d2", "d3") };

        var counted = RangeLedger.Close(ledger, "a", ledger.Intent!, new[] { "d1", "d2", "d3" }, 3);

        Assert.Equal(3L, counted);
        Assert.Equal(3, ledger.Processed);
        Assert.Null(ledger.Intent);
    }

    [Fact]
    public void A_count_written_again_after_its_answer_was_lost_is_not_counted_twice()
    {
        var (ledger, batch) = Opened("a", 5, "d1", "d2");
        Assert.Equal(2L, RangeLedger.Close(ledger, "a", batch, new[] { "d1", "d2" }, 2));

        // The write went through but its answer timed out: the retry finds the intent gone.
        Assert.Null(RangeLedger.Close(ledger, "a", batch, new[] { "d1", "d2" }, 2));
        Assert.Equal(2, ledger.Processed);
        Assert.Equal(2, ledger.Scanned);
    }

    [Fact]
    public void A_batch_delivered_again_counts_only_what_it_changes_this_time()
    {
        var (ledger, first) = Opened("a", 1, "d1", "d2");
        RangeLedger.Close(ledger, "a", first, new[] { "d1", "d2" }, 2);

        // The processor did not checkpoint (killed between the count and the checkpoint): the
        // same documents come again, already changed, so the new batch plans nothing.
        var again = Intent("b", 1);
        var counted = RangeLedger.Close(ledger, "b", again, Array.Empty<string>(), 2);

        Assert.Equal(0L, counted);
        Assert.Equal(2, ledger.Processed);
    }

    [Fact]
    public void A_worker_that_lost_its_range_mid_batch_counts_what_it_wrote_and_the_new_owner_the_rest()
    {
        var (ledger, mine) = Opened("a", 7, "d1", "d2", "d3");

        // The lease went to b after a wrote d1 and d2: a stops between documents and counts them
        // (b waits while a lives); b's delivery of the same batch changes only d3.
        Assert.Equal(2L, RangeLedger.Close(ledger, "a", mine, new[] { "d1", "d2" }, 2));
        var theirs = Open(ledger, "b", 1, "d3");
        Assert.Equal(1L, RangeLedger.Close(ledger, "b", theirs, new[] { "d3" }, 3));

        Assert.Equal(3, ledger.Processed);
        Assert.Null(ledger.Intent);
    }

    [Fact]
    public void A_stalled_worker_whose_intent_another_settled_counts_only_the_documents_it_did_not_find()
    {
        var (ledger, stalled) = Opened("a", 3, "d1", "d2", "d3");

        // b judged a dead and found d1 and d2 changed; a then wakes and also writes d3.
        Assert.True(RangeLedger.Settle(ledger, stalled, new[] { "d1", "d2" }));
        var counted = RangeLedger.Close(ledger, "a", stalled, new[] { "d1", "d2", "d3" }, 3);

        Assert.Equal(1L, counted);
        Assert.Equal(3, ledger.Processed);
    }

    // A copy (a container move) writes every version it is given, so its counts go by source version.
    private static CopiedVersions Copied(long? through, params long?[] changed) => new(changed, through);

    [Fact]
    public void A_copy_delivered_again_after_its_count_is_not_counted_again()
    {
        var (ledger, first) = Opened("a", 1, "d1", "d2", "d3");
        Assert.Equal(3L, RangeLedger.Close(ledger, "a", first, new[] { "d1", "d2", "d3" }, 3, Copied(12, 10, 11, 12)));

        // a died between its count and the processor's checkpoint: b copies the same versions again.
        var again = Open(ledger, "b", 1, "d1", "d2", "d3");
        Assert.Equal(0L, RangeLedger.Close(ledger, "b", again, new[] { "d1", "d2", "d3" }, 3, Copied(12, 10, 11, 12)));

        Assert.Equal(3, ledger.Processed);
        Assert.Equal(12, ledger.CountedLsn);
    }

    [Fact]
    public void A_copy_that_lost_its_range_mid_batch_counts_what_it_wrote_and_the_new_owner_only_the_rest()
    {
        var (ledger, mine) = Opened("a", 7, "d1", "d2", "d3", "d4");
        // a started d1 and d2 (versions 20, 21); d1 was refused (failed), d2 copied.
        Assert.Equal(1L, RangeLedger.Close(ledger, "a", mine, new[] { "d2" }, 4, Copied(21, 21)));

        var theirs = Open(ledger, "b", 1, "d1", "d2", "d3", "d4");
        Assert.Equal(2L, RangeLedger.Close(ledger, "b", theirs, new[] { "d1", "d2", "d3", "d4" }, 4, Copied(23, 20, 21, 22, 23)));

        Assert.Equal(3, ledger.Processed);
        Assert.Equal(23, ledger.CountedLsn);
    }

    [Fact]
    public void A_stalled_copy_counts_nothing_its_ranges_new_owner_counted_and_the_other_order_adds_up_too()
    {
        // b judged a dead (a copy's takeover counts nothing from the intent: the batch comes again),
        // copied the batch and counted it; a then wakes and ends the same batch.
        var (ledger, stalled) = Opened("a", 3, "d1", "d2");
        Assert.True(RangeLedger.Settle(ledger, stalled, Array.Empty<string>()));
        var theirs = Open(ledger, "b", 1, "d1", "d2");
        Assert.Equal(2L, RangeLedger.Close(ledger, "b", theirs, new[] { "d1", "d2" }, 2, Copied(31, 30, 31)));
        Assert.Equal(0L, RangeLedger.Close(ledger, "a", stalled, new[] { "d1", "d2" }, 2, Copied(31, 30, 31)));
        Assert.Equal(2, ledger.Processed);

        // The other order: a ends first (its intent settled by b meanwhile), then b.
        var other = new RangeLedgerDocument { Intent = Intent("a", 3, "d1", "d2") };
        Assert.True(RangeLedger.Settle(other, other.Intent!, Array.Empty<string>()));
        Assert.Equal(1L, RangeLedger.Close(other, "a", Intent("a", 3, "d1", "d2"), new[] { "d1" }, 2, Copied(30, 30)));
        Assert.Equal(1L, RangeLedger.Close(other, "b", Intent("b", 1, "d1", "d2"), new[] { "d1", "d2" }, 2, Copied(31, 30, 31)));
        Assert.Equal(2, other.Processed);
    }

    [Fact]
    public void A_copy_counts_a_document_again_for_a_newer_version_and_without_versions_counts_as_before()
    {
        var ledger = new RangeLedgerDocument { CountedLsn = 40 };
        var batch = Open(ledger, "a", 9, "d1", "d2");

        // d1 was changed by the application since it was copied: a new version, a new change of the target.
        // d2 comes from a feed that gave no version: counted, as a copy always was.
        Assert.Equal(2L, RangeLedger.Close(ledger, "a", batch, new[] { "d1", "d2" }, 2, Copied(41, 41, null)));
        Assert.Equal(41, ledger.CountedLsn);
    }

    [Fact]
    public void An_intent_is_settled_once_however_many_try()
    {
        var (ledger, dead) = Opened("a", 3, "d1", "d2");

        Assert.True(RangeLedger.Settle(ledger, dead, new[] { "d1", "d2" }));
        Assert.False(RangeLedger.Settle(ledger, dead, new[] { "d1", "d2" }));
        ledger.Intent = Intent("b", 1, "d9");
        Assert.False(RangeLedger.Settle(ledger, dead, new[] { "d1", "d2" }));

        Assert.Equal(2, ledger.Processed);
        Assert.Equal("b", ledger.Intent!.Worker);
    }

    [Fact]
    public void A_split_child_finds_its_parents_intent_and_siblings_do_not_meet()
    {
        const string parent = "{\"Range\":{\"min\":\"\",\"max\":\"3F\",\"isMinInclusive\":true,\"isMaxInclusive\":false}}";
        const string left = "{\"Range\":{\"min\":\"\",\"max\":\"1F\",\"isMinInclusive\":true,\"isMaxInclusive\":false}}";
        const string right = "{\"Range\":{\"min\":\"1F\",\"max\":\"3F\",\"isMinInclusive\":true,\"isMaxInclusive\":false}}";
        const string other = "{\"Range\":{\"min\":\"3F\",\"max\":\"FF\",\"isMinInclusive\":true,\"isMaxInclusive\":false}}";

        Assert.True(RangeLedger.Overlap(parent, left));
        Assert.True(RangeLedger.Overlap(right, parent));
        Assert.False(RangeLedger.Overlap(left, right));
        Assert.False(RangeLedger.Overlap(parent, other));
        Assert.False(RangeLedger.Overlap(null, parent));
    }

    [Fact]
    public async Task A_document_of_an_intent_counts_when_it_was_written_since_and_no_longer_needs_the_change()
    {
        var fake = new FakeTrackingContainer("users", "/id");
        var target = new TargetContainer("users", fake.Container, new PartitionKeyReader(new[] { "/id" }));
        foreach (var id in new[] { "written", "untouched", "rewritten", "deleted" })
        {
            fake.Put(new JObject { ["id"] = id, ["name"] = id });
        }

        var intent = new[] { "written", "untouched", "rewritten", "deleted" }.Select(id => DocumentKey.Of(fake[id]!, target.PartitionKey)).ToList();
        fake.Put(new JObject { ["id"] = "written", ["name"] = "written", ["f"] = 1 });
        fake.Put(new JObject { ["id"] = "rewritten", ["name"] = "the application's" });
        fake.Remove("deleted");

        var changed = await ChangeIntents.ChangedAsync(intent, target, Planner(target), ResilientSender.Ungated, CancellationToken.None);

        Assert.Equal(new[] { "written" }, changed);
    }

    [Fact]
    public async Task A_takeover_whose_reads_fail_leaves_the_intent_to_the_next_and_counts_it_once()
    {
        var target = new FakeTrackingContainer("users", "/id");
        var targetContainer = new TargetContainer("users", target.Container, new PartitionKeyReader(new[] { "/id" }));
        target.Put(new JObject { ["id"] = "d1", ["name"] = "x" });
        target.Put(new JObject { ["id"] = "d2", ["name"] = "y" });
        var keys = new[] { "d1", "d2" }.Select(id => DocumentKey.Of(target[id]!, targetContainer.PartitionKey)).ToList();
        target.Put(new JObject { ["id"] = "d1", ["name"] = "x", ["f"] = 1 });

        var tracking = new FakeTrackingContainer();
        tracking.Put(new JObject { ["id"] = "m", ["name"] = "m", ["status"] = "running", ["workers"] = new JObject { ["dead"] = new JObject { ["heartbeat"] = 1, ["state"] = "running" } } });
        var leases = new FakeTrackingContainer("migrations-leases", "/id");
        var ledgers = new RangeLedger(leases.Container, "m", 1, 0);
        await ledgers.UpdateAsync("0", null, l =>
        {
            l.Intent = new PageIntent { Worker = "dead", Page = 4, Documents = keys };
            return true;
        }, CancellationToken.None);
        var recovery = new IntentRecovery(ledgers, new TrackingStore(tracking.Container), "m", "me", targetContainer, TimeSpan.FromSeconds(5), _ => false, null);

        target.FailRead = id => id == "d2";
        await Assert.ThrowsAsync<MigrationException>(() => recovery.SettleOrphansAsync(Planner(targetContainer), CancellationToken.None));
        var kept = leases[ledgers.IdOf("0")]!;
        Assert.NotNull(kept["intent"]);
        Assert.Equal(0, (long)kept["processed"]!);

        target.FailRead = null;
        Assert.Equal(0, await recovery.SettleOrphansAsync(Planner(targetContainer), CancellationToken.None));
        Assert.Equal(0, await recovery.SettleOrphansAsync(Planner(targetContainer), CancellationToken.None));
        var settled = leases[ledgers.IdOf("0")]!;
        Assert.Null(settled["intent"]);
        Assert.Equal(1, (long)settled["processed"]!);
    }

    /// <summary>A pass's ledgers in a fake lease container, intent recovery by worker name, and a
    /// target with documents d1..d3 (their keys as first read).</summary>
    private static (FakeTrackingContainer Target, TargetContainer TargetContainer, List<JObject> Keys, FakeTrackingContainer Leases, RangeLedger Ledgers, Func<string, IntentRecovery> Recovery) Takeover()
    {
        var target = new FakeTrackingContainer("users", "/id");
        var targetContainer = new TargetContainer("users", target.Container, new PartitionKeyReader(new[] { "/id" }));
        foreach (var id in new[] { "d1", "d2", "d3" })
        {
            target.Put(new JObject { ["id"] = id, ["name"] = id });
        }

        var keys = new[] { "d1", "d2", "d3" }.Select(id => DocumentKey.Of(target[id]!, targetContainer.PartitionKey)).ToList();
        var tracking = new FakeTrackingContainer();
        tracking.Put(new JObject { ["id"] = "m", ["name"] = "m", ["status"] = "running", ["workers"] = new JObject() });
        var leases = new FakeTrackingContainer("migrations-leases", "/id");
        var ledgers = new RangeLedger(leases.Container, "m", 1, 0);
        return (target, targetContainer, keys, leases, ledgers,
            worker => new IntentRecovery(ledgers, new TrackingStore(tracking.Container), "m", worker, targetContainer, TimeSpan.FromSeconds(5), _ => false, null));
    }

    [Fact]
    public async Task A_batch_delivered_to_two_owners_around_a_lease_move_is_counted_once_when_the_old_owner_ends_it_early()
    {
        var (target, targetContainer, keys, leases, ledgers, recovery) = Takeover();

        // b took the range over and changed d1 and d2 from its delivery of the batch, and counted them.
        var theirs = Intent("b", 1, "d1", "d2");
        await ledgers.UpdateAsync("0", null, l => RangeLedger.Close(l, "b", theirs, new[] { "d1", "d2" }, 2) is not null, CancellationToken.None);
        target.Put(new JObject { ["id"] = "d1", ["name"] = "d1", ["f"] = 1 });
        target.Put(new JObject { ["id"] = "d2", ["name"] = "d2", ["f"] = 1 });

        // a, which read the same batch before it lost the range, then wrote its intent (its keys
        // as a read them) and was stopped before any write: it closes with what it changed, nothing.
        var mine = new PageIntent { Worker = "a", Page = 9, Documents = keys };
        await ledgers.UpdateAsync("0", null, l =>
        {
            l.Intent = mine;
            return true;
        }, CancellationToken.None);
        var counted = await recovery("a").CloseOwnAsync("0", null, mine, Array.Empty<string>(), Array.Empty<JObject>(), Planner(targetContainer), CancellationToken.None);

        Assert.Equal(0, counted);
        var ledger = leases[ledgers.IdOf("0")]!;
        Assert.Null(ledger["intent"]);
        Assert.Equal(2, (long)ledger["processed"]!);
    }

    [Fact]
    public async Task A_batch_ended_early_counts_its_answered_changes_and_of_its_unanswered_writes_those_found_done()
    {
        var (target, targetContainer, keys, leases, ledgers, recovery) = Takeover();
        var mine = new PageIntent { Worker = "a", Page = 3, Documents = keys };
        await ledgers.UpdateAsync("0", null, l =>
        {
            l.Intent = mine;
            return true;
        }, CancellationToken.None);

        // d1's write answered "changed"; d2's went through but its answer never came; d3's did not.
        target.Put(new JObject { ["id"] = "d1", ["name"] = "d1", ["f"] = 1 });
        target.Put(new JObject { ["id"] = "d2", ["name"] = "d2", ["f"] = 1 });
        var counted = await recovery("a").CloseOwnAsync("0", null, mine, new[] { "d1" }, new[] { keys[1], keys[2] }, Planner(targetContainer), CancellationToken.None);

        Assert.Equal(2, counted);
        Assert.Equal(2, (long)leases[ledgers.IdOf("0")]!["processed"]!);

        // Closing it again (an error after the batch had counted itself) counts nothing more.
        Assert.Equal(0, await recovery("a").CloseOwnAsync("0", null, mine, new[] { "d1", "d2" }, Array.Empty<JObject>(), Planner(targetContainer), CancellationToken.None));
        Assert.Equal(2, (long)leases[ledgers.IdOf("0")]!["processed"]!);
    }

    [Fact]
    public async Task A_takeover_fences_the_range_and_a_splits_parent_so_the_worker_that_lost_them_opens_no_batch_there()
    {
        const string parent = "{\"Range\":{\"min\":\"\",\"max\":\"3F\"}}";
        const string left = "{\"Range\":{\"min\":\"\",\"max\":\"1F\"}}";
        const string right = "{\"Range\":{\"min\":\"1F\",\"max\":\"3F\"}}";
        var (_, targetContainer, _, leases, ledgers, recovery) = Takeover();

        // a held the parent, and the right child; the left child goes to b.
        // The parent's first owner: no one else wrote there, its first batch is planned as read.
        Assert.False(await recovery("a").TakeOverAsync("p", parent, Planner(targetContainer), CancellationToken.None));
        Assert.True(await recovery("a").TakeOverAsync("r", right, Planner(targetContainer), CancellationToken.None));
        Assert.True(RangeLedger.MayOpen(Ledger(leases, ledgers, "p"), "a"));
        Assert.True(await recovery("b").TakeOverAsync("l", left, Planner(targetContainer), CancellationToken.None));

        // The range back to a, taken from b: b may have written there since a's batch was read.
        Assert.True(await recovery("a").TakeOverAsync("l", left, Planner(targetContainer), CancellationToken.None));
        Assert.True(RangeLedger.MayOpen(Ledger(leases, ledgers, "l"), "a"));
        await recovery("b").TakeOverAsync("l", left, Planner(targetContainer), CancellationToken.None);

        Assert.False(RangeLedger.MayOpen(Ledger(leases, ledgers, "p"), "a"));
        Assert.True(RangeLedger.MayOpen(Ledger(leases, ledgers, "l"), "b"));
        Assert.True(RangeLedger.MayOpen(Ledger(leases, ledgers, "r"), "a"));
        Assert.False(RangeLedger.MayOpen(Ledger(leases, ledgers, "l"), "a"));

        Assert.True(RangeLedger.Contains(parent, left));
        Assert.False(RangeLedger.Contains(left, parent));
        Assert.False(RangeLedger.Contains(left, right));
    }

    [Fact]
    public async Task A_takeover_waits_for_the_batch_the_range_s_old_owner_has_open_and_counts_nothing_of_it()
    {
        var (target, targetContainer, keys, leases, ledgers, _) = Takeover();
        var tracking = new FakeTrackingContainer();
        var time = new ObservedTime();
        tracking.Put(new JObject { ["id"] = "m", ["name"] = "m", ["status"] = "running", ["workers"] = new JObject { ["a"] = new JObject { ["heartbeat"] = time.NowMs(), ["state"] = "running" } } });
        var mine = new PageIntent { Worker = "a", Page = 9, Documents = keys };
        await ledgers.UpdateAsync("0", null, l =>
        {
            l.Intent = mine;
            return true;
        }, CancellationToken.None);
        var b = new IntentRecovery(ledgers, new TrackingStore(tracking.Container), "m", "b", targetContainer, TimeSpan.FromSeconds(5), _ => false, null, time);

        var takeover = b.TakeOverAsync("0", null, Planner(targetContainer), CancellationToken.None);
        Assert.False(takeover.IsCompleted);
        Assert.False(RangeLedger.MayOpen(Ledger(leases, ledgers, "0"), "a"));

        // a writes d1 and closes its batch: the takeover ends, and the count is a's alone.
        target.Put(new JObject { ["id"] = "d1", ["name"] = "d1", ["f"] = 1 });
        await ledgers.UpdateAsync("0", null, l => RangeLedger.Close(l, "a", mine, new[] { "d1" }, 3) is not null, CancellationToken.None);
        await time.AdvanceAsync(TimeSpan.FromMilliseconds(500), 1);
        await takeover;
        Assert.Equal(1, (long)Ledger(leases, ledgers, "0").Processed);
    }

    private static RangeLedgerDocument Ledger(FakeTrackingContainer leases, RangeLedger ledgers, string token) =>
        leases[ledgers.IdOf(token)]!.ToObject<RangeLedgerDocument>(DocumentJson.Serializer)!;

    [Fact]
    public async Task Checkpoints_that_arrive_while_one_is_written_go_together_in_the_next_write()
    {
        var tracking = new FakeTrackingContainer();
        var store = new TrackingStore(tracking.Container);
        var owner = new LeaseOwner { Host = "me", ProcessId = 1, User = "u", RunId = "mine" };
        var start = await new MigrationLifecycle(store).StartAsync(new StartRequest("m1", "users", "abc", null, null, 1, owner, TimeSpan.FromSeconds(60)), CancellationToken.None);
        var checkpoint = new LeasedCheckpoint(store, start.Document, owner, TimeSpan.FromSeconds(60));
        var held = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        tracking.BeforeReplace = () => held.Task;
        var writesBefore = tracking.Writes;

        var first = checkpoint.UpdateAsync(d => d.Processed += 1, CancellationToken.None);
        var others = Enumerable.Range(0, 10).Select(_ => checkpoint.UpdateAsync(d => d.Processed += 1, CancellationToken.None)).ToList();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (checkpoint.Queued < 10 && DateTime.UtcNow < deadline)
        {
            await Task.Yield();
        }

        Assert.Equal(10, checkpoint.Queued);
        held.SetResult(true);
        await Task.WhenAll(others.Append(first));

        Assert.Equal(11, (long)tracking["m1"]!["processed"]!);
        Assert.Equal(2, tracking.Writes - writesBefore);
    }
}
