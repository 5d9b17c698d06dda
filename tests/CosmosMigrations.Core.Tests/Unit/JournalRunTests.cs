using CosmosMigrations.Running;
using CosmosMigrations.Tests.Fakes;
using CosmosMigrations.Tests.Infrastructure;

namespace CosmosMigrations.Tests.Unit;

/// <summary>A journaled run over a container of several feed ranges (fakes): one before-image per
/// changed document, written before its change; none left behind for a change that was not made;
/// none at all with -NoJournal.</summary>
public sealed class JournalRunTests
{
    [Fact]
    public async Task Every_change_has_its_before_image_first_and_a_change_not_made_leaves_none()
    {
        var (target, account) = FakeAccount.Orders(ranges: 3, documentsPerRange: 100);
        var patches = 0;
        var journaledBeforePatch = 0;
        target.BeforePatch = id =>
        {
            // The before-image of a document is in the journal when its change is sent.
            Interlocked.Increment(ref patches);
            if (account.Journal[id] is not null)
            {
                Interlocked.Increment(ref journaledBeforePatch);
            }

            return Task.CompletedTask;
        };
        // An application writes the field itself into some documents between the scan and the write.
        target.RefusePatch = id => id.EndsWith('7');
        using var connection = account.Connect();

        var result = await new MigrationRunner(connection).RunAsync(TestDefinitions.AddFlag("journaled", "orders"), new RunOptions(), null, CancellationToken.None);

        Assert.Equal("completed", result.Status.Status);
        var refused = target.Documents.Count(d => ((string)d["id"]!).EndsWith('7'));
        Assert.Equal(300 - refused, result.Status.Processed);
        Assert.Equal(patches, journaledBeforePatch);
        Assert.True(patches >= 300);
        Assert.Equal(300 - refused, account.Journal.Count);
        var entry = account.Journal["r1-0003"]!;
        Assert.Equal("journaled", (string?)entry["migration"]);
        Assert.Equal("[{\"path\":\"/flag\",\"after\":true}]", entry["changes"]!.ToString(Newtonsoft.Json.Formatting.None));
        Assert.Null(account.Journal["r1-0007"]);
        var tracking = account.Tracking["journaled"]!;
        Assert.True((bool)tracking["journal"]!["complete"]!);
        Assert.Equal(new[] { 0 }, tracking["journal"]!["passes"]!.Values<int>());
    }

    [Fact]
    public async Task Without_a_journal_nothing_is_kept_and_the_migration_is_marked_not_undoable()
    {
        var (target, account) = FakeAccount.Orders(ranges: 2, documentsPerRange: 50);
        using var connection = account.Connect();

        var result = await new MigrationRunner(connection).RunAsync(TestDefinitions.AddFlag("unjournaled", "orders"), new RunOptions { Journal = false }, null, CancellationToken.None);

        Assert.Equal(100, result.Status.Processed);
        Assert.Equal(0, account.Journal.Count);
        Assert.False((bool)account.Tracking["unjournaled"]!["journal"]!["complete"]!);
        Assert.False(result.Status.Undoable);
        Assert.Contains("-NoJournal", result.Status.UndoBlocker, StringComparison.Ordinal);
    }
}
