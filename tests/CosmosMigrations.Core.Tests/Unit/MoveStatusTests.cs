using CosmosMigrations.Errors;
using CosmosMigrations.Moving;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Tests.Unit;

/// <summary>A move's tracking document: a plain migration's start on it is refused (it would rewrite
/// the move's status), a move's own start is not; the rate samples that its status shows.</summary>
public sealed class MoveStatusTests
{
    private static readonly LeaseOwner Me = new() { Host = "me", ProcessId = 1, User = "u", RunId = "mine" };

    private static TrackingDocument CopiedMove()
    {
        var document = new TrackingDocument { Id = "mv", Name = "mv", Status = TrackingStatus.Completed, Container = "orders", Checksum = "abc", Phase = MovePhase.Copied, Mode = MigrationLifecycle.DistributedMode };
        new MoveRecord { Source = "orders", Target = "orders2", PartitionKey = new List<string> { "/tenant" }, CreatedTarget = true }.WriteTo(document);
        return document;
    }

    private static StartRequest Request(bool move, bool force) =>
        new("mv", "orders", "abc", "d", null, 1, Me, TimeSpan.FromSeconds(60), force, Worker: "w1", Move: move);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_plain_start_on_a_move_is_refused_whatever_force(bool force)
    {
        var error = Assert.Throws<MigrationException>(() => MigrationLifecycle.Decide(CopiedMove(), Request(move: false, force), 1_000));
        Assert.Equal("MigrationIsAMove", error.ErrorId);
        Assert.Equal(MigrationErrorKind.InvalidState, error.Kind);
        Assert.Contains("Start-ContainerMove -Name mv -Container orders -Target orders2 -PartitionKey /tenant", error.RecommendedAction);
    }

    [Fact]
    public void A_moves_own_start_is_decided_as_any_start()
    {
        Assert.Equal(StartOutcome.Skipped, MigrationLifecycle.Decide(CopiedMove(), Request(move: true, force: false), 1_000).Outcome);
    }

    [Fact]
    public void Samples_are_taken_while_running_at_most_once_an_interval_and_the_last_two_give_the_rate()
    {
        var document = CopiedMove();
        Assert.False(MoveLiveStatus.Sample(document, 10_000), "a move that is not running is not sampled");

        document.Status = TrackingStatus.Running;
        document.Scanned = 100;
        Assert.True(MoveLiveStatus.Sample(document, 10_000));
        Assert.Null(MoveLiveStatus.Rate(MoveRecord.Of(document)!));

        document.Scanned = 300;
        Assert.False(MoveLiveStatus.Sample(document, 11_000), "another worker sampled a second ago");
        Assert.True(MoveLiveStatus.Sample(document, 15_000));
        Assert.Equal(40.0, MoveLiveStatus.Rate(MoveRecord.Of(document)!));

        document.Scanned = 1_300;
        Assert.True(MoveLiveStatus.Sample(document, 25_000));
        var record = MoveRecord.Of(document)!;
        Assert.Equal(2, record.RateSamples!.Count);
        Assert.Equal(100.0, MoveLiveStatus.Rate(record));
        Assert.Equal("orders2", record.Target);
    }
}
