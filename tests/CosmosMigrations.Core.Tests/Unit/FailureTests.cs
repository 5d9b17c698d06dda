using System.Net;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Failures;
using CosmosMigrations.Running;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Tests.Unit;

/// <summary>Documents that fail: their class, their failure store entry, how they are counted,
/// the thresholds that decide whether a run goes on, and the status a run with failures ends in.</summary>
public sealed class FailureTests
{
    private static readonly PartitionKeyReader ByPk = new(new[] { "/pk" });

    [Theory]
    [InlineData(400, FailureClass.Refused)]
    [InlineData(409, FailureClass.Refused)]
    [InlineData(412, FailureClass.Refused)]
    [InlineData(413, FailureClass.Refused)]
    [InlineData(403, FailureClass.Refused)]
    [InlineData(429, FailureClass.Exhausted)]
    [InlineData(503, FailureClass.Exhausted)]
    [InlineData(408, FailureClass.Exhausted)]
    public void A_final_status_gives_the_class(int status, FailureClass expected) =>
        Assert.Equal(expected, FailureClasses.OfStatus((HttpStatusCode)status));

    [Fact]
    public void Class_names_parse_in_any_case_and_unknown_ones_are_refused()
    {
        Assert.Equal(FailureClass.Exhausted, FailureClasses.Parse("exhausted"));
        Assert.Throws<ArgumentException>(() => FailureClasses.Parse("Poison"));
    }

    [Fact]
    public void An_entry_keeps_the_document_without_system_properties_and_finds_it_again_by_key()
    {
        var document = JObject.Parse("""{"id":"d7","pk":"p3","name":"x","_rid":"r","_etag":"\"e\"","_ts":1,"_self":"s"}""");
        var entry = FailureEntry.For("m", 1, document, ByPk, FailureClass.Transform, "boom", 5, 1000, 3600);

        Assert.Equal("d7", entry.DocumentId);
        Assert.Equal("[\"p3\"]", entry.PartitionKey);
        Assert.Equal(entry.Id, entry.PartitionKeyValue);
        Assert.Equal(JObject.Parse("""{"id":"d7","pk":"p3"}"""), entry.Key, JToken.EqualityComparer);
        Assert.Equal(JObject.Parse("""{"id":"d7","pk":"p3","name":"x"}"""), entry.BeforeImage, JToken.EqualityComparer);
        Assert.Equal(entry.BeforeImage!.ToString(Newtonsoft.Json.Formatting.None).Length, entry.BeforeImageBytes);
        Assert.Equal((5L, 3600, 1000L, "Transform"), (entry.Epoch, entry.Ttl!.Value, entry.At, entry.Class));
        // The same document and step land on the same entry; another step or key on another.
        Assert.Equal(entry.Id, FailureEntry.For("m", 1, document, ByPk, FailureClass.Refused, "again", 5, 2000, null).Id);
        Assert.NotEqual(entry.Id, FailureEntry.For("m", 2, document, ByPk, FailureClass.Transform, "boom", 5, 1000, null).Id);
        Assert.NotEqual(entry.Id, FailureEntry.For("m", 1, JObject.Parse("""{"id":"d7","pk":"p4"}"""), ByPk, FailureClass.Transform, "boom", 5, 1000, null).Id);
    }

    [Fact]
    public void A_large_document_keeps_its_size_but_not_its_image()
    {
        var document = new JObject { ["id"] = "big", ["pk"] = "p", ["blob"] = new string('x', FailureEntry.MaxBeforeImageBytes) };
        var entry = FailureEntry.For("m", 0, document, ByPk, FailureClass.Refused, "too large", 0, 0, null);

        Assert.Null(entry.BeforeImage);
        Assert.True(entry.BeforeImageBytes > FailureEntry.MaxBeforeImageBytes);
    }

    [Fact]
    public void A_failure_counts_once_by_class_and_moves_when_its_class_changes()
    {
        var tracking = new TrackingDocument();
        var transform = WriteOutcome.Failure("d1", "[\"p\"]", "boom", FailureClass.Transform);
        var refused = WriteOutcome.Failure("d1", "[\"p\"]", "413", FailureClass.Refused);

        Assert.True(PageLedger.Count(tracking, transform, new RecordedFailure(true, null)));
        Assert.False(PageLedger.Count(tracking, transform, new RecordedFailure(false, FailureClass.Transform)));
        Assert.Equal((1L, 0L), (tracking.Failed!.Transform, tracking.Failed.Refused));
        Assert.False(PageLedger.Count(tracking, refused, new RecordedFailure(false, FailureClass.Transform)));
        Assert.Equal((0L, 1L, 1L), (tracking.Failed.Transform, tracking.Failed.Refused, tracking.Failed.Total));
    }

    [Theory]
    // -MaxFailures alone: a count.
    [InlineData(0, null, 1, 10, false, true)]
    [InlineData(5, null, 5, 10, false, false)]
    [InlineData(5, null, 6, 10, true, true)]
    // -MaxFailureRate alone (no count limit): judged once enough was seen, and at the end.
    [InlineData(int.MaxValue, 0.02, 30, 999, false, false)]
    [InlineData(int.MaxValue, 0.02, 30, 1000, false, true)]
    [InlineData(int.MaxValue, 0.02, 20, 1000, false, false)]
    [InlineData(int.MaxValue, 0.02, 100, 10000, true, false)]
    [InlineData(int.MaxValue, 0.005, 10, 1000, false, false)]
    [InlineData(int.MaxValue, 0.005, 11, 2000, false, true)]
    [InlineData(int.MaxValue, 0.005, 100, 10000, true, true)]
    [InlineData(int.MaxValue, 0.005, 5, 100, true, true)]
    // Both: either one stops the run.
    [InlineData(3, 0.5, 4, 1000, false, true)]
    [InlineData(0, 0.01, 0, 1000, true, false)]
    public void Thresholds_decide_whether_a_run_goes_on(int maxFailures, double? rate, long failed, long seen, bool final, bool tooMany) =>
        Assert.Equal(tooMany, RunEnding.TooMany(failed, seen, new RunOptions { MaxFailures = maxFailures, MaxFailureRate = rate }, final));

    [Fact]
    public void A_rate_past_its_limit_is_a_clear_error_that_names_the_share_and_the_way_out()
    {
        var error = RunEnding.RateExceeded("m1", 100, 10000, new RunOptions { MaxFailures = int.MaxValue, MaxFailureRate = 0.005 });

        Assert.Equal("FailureRateExceeded", error.ErrorId);
        Assert.Contains("100 of 10000", error.Message);
        Assert.Contains("1 %", error.Message);
        Assert.Contains("-MaxFailureRate 0.005", error.Message);
        Assert.Contains("-RetryFailures", error.RecommendedAction);
    }

    [Fact]
    public void A_rate_outside_0_to_1_is_refused()
    {
        Assert.Throws<Errors.MigrationException>(() => new RunOptions { MaxFailureRate = 1.5 }.Validate());
        Assert.Throws<Errors.MigrationException>(() => new RunOptions { MaxFailureRate = 0 }.Validate());
    }

    [Fact]
    public void A_run_that_ends_with_failures_is_completed_with_failures_and_is_skipped_like_a_completed_one()
    {
        var clean = new TrackingDocument { Name = "m1", Status = TrackingStatus.Running };
        MigrationLifecycle.Complete(clean, 5);
        Assert.Equal(TrackingStatus.Completed, clean.Status);

        var failed = new TrackingDocument { Id = "m1", Name = "m1", Container = "users", Status = TrackingStatus.Running, FailureCount = 2, Checksum = "abc" };
        MigrationLifecycle.Complete(failed, 5);
        Assert.Equal(TrackingStatus.CompletedWithFailures, failed.Status);

        var owner = new LeaseOwner { Host = "me", ProcessId = 1, User = "u", RunId = "r" };
        var request = new StartRequest("m1", "users", "abc", null, null, 1, owner, TimeSpan.FromSeconds(60));
        Assert.Equal(StartOutcome.Skipped, MigrationLifecycle.Decide(failed, request, 10).Outcome);
        var rerun = MigrationLifecycle.Decide(failed, request with { Force = true }, 10);
        Assert.Equal(StartOutcome.Rerun, rerun.Outcome);
        Assert.Null(rerun.Document.FailureCount);
        Assert.Null(rerun.Document.Failed);
        Assert.NotNull(rerun.Document.FailureEpoch);
    }

    [Fact]
    public void The_end_of_run_rule_fails_a_run_past_its_rate_with_the_error_every_worker_reports_and_completes_one_below_it()
    {
        var options = new RunOptions { MaxFailures = int.MaxValue, MaxFailureRate = 0.005 };
        var past = new TrackingDocument { Id = "m1", Name = "m1", Status = TrackingStatus.Running, FailureCount = 20, Scanned = 2000 };
        var error = RunEnding.Conclude(past, options, past.Scanned, 5);

        Assert.NotNull(error);
        Assert.Equal("FailureRateExceeded", error!.ErrorId);
        Assert.Equal(TrackingStatus.Failed, past.Status);
        Assert.Equal(error.Message, past.Error);
        Assert.Equal("FailureRateExceeded", past.ErrorId);
        // Another worker, reading the tracking document, reports the same error.
        var recorded = RunEnding.Recorded(past);
        Assert.Equal(error.ErrorId, recorded.ErrorId);
        Assert.Equal(error.Kind, recorded.Kind);
        Assert.Equal(error.Message, recorded.Message);
        Assert.Equal(error.RecommendedAction, recorded.RecommendedAction);
        Assert.Equal("m1", recorded.Target);

        var below = new TrackingDocument { Id = "m2", Name = "m2", Status = TrackingStatus.Running, FailureCount = 20, Scanned = 2000 };
        Assert.Null(RunEnding.Conclude(below, new RunOptions { MaxFailures = int.MaxValue, MaxFailureRate = 0.02 }, below.Scanned, 5));
        Assert.Equal(TrackingStatus.CompletedWithFailures, below.Status);

        // The documents seen decide: more seen than the tracking document counted (a distributed
        // run's ledgers) brings the share below the rate.
        var counted = new TrackingDocument { Id = "m3", Name = "m3", Status = TrackingStatus.Running, FailureCount = 20, Scanned = 1500 };
        Assert.NotNull(RunEnding.PastThresholds(counted, new RunOptions { MaxFailures = int.MaxValue, MaxFailureRate = 0.012 }, counted.Scanned));
        Assert.Null(RunEnding.PastThresholds(counted, new RunOptions { MaxFailures = int.MaxValue, MaxFailureRate = 0.012 }, 2000));

        // Any other recorded error keeps the generic id.
        var other = new TrackingDocument { Id = "m4", Name = "m4", Status = TrackingStatus.Failed, Error = "boom", ErrorId = "DocumentMigrationFailed" };
        Assert.Equal("MigrationFailed", RunEnding.Recorded(other).ErrorId);
    }

    [Fact]
    public void The_rule_while_a_run_goes_on_names_the_first_document_past_the_count_and_the_share_past_the_rate()
    {
        var failed = new[] { WriteOutcome.Failure("d7", "[\"p1\"]", "poison", FailureClass.Transform), WriteOutcome.Failure("d8", "[\"p1\"]", "poison", FailureClass.Transform) };
        var byCount = RunEnding.PastThresholdsMidRun("m1", failed, 2, 100, new RunOptions { MaxFailures = 1 }, "batch");
        Assert.Equal("DocumentMigrationFailed", byCount!.ErrorId);
        Assert.Contains("Document 'd7'", byCount.Message);
        Assert.Contains("1 more document(s) of the same batch", byCount.Message);

        var byRate = RunEnding.PastThresholdsMidRun("m1", failed, 30, 1000, new RunOptions { MaxFailures = int.MaxValue, MaxFailureRate = 0.01 }, "batch");
        Assert.Equal("FailureRateExceeded", byRate!.ErrorId);
        Assert.Null(RunEnding.PastThresholdsMidRun("m1", failed, 30, 999, new RunOptions { MaxFailures = int.MaxValue, MaxFailureRate = 0.01 }, "batch"));
        Assert.Null(RunEnding.PastThresholdsMidRun("m1", Array.Empty<WriteOutcome>(), 30, 1000, new RunOptions { MaxFailures = int.MaxValue, MaxFailureRate = 0.01 }, "batch"));
    }

    [Fact]
    public void Progress_shows_the_failures_by_class_as_the_tracking_document_counts_them()
    {
        var document = new TrackingDocument { Name = "m1", Scanned = 50, Processed = 40, FailureCount = 3, Failed = new FailureCounts { Transform = 2, Exhausted = 1 } };
        var progress = new ProgressCounters("m1", 1).Snapshot(document, 10, 10);

        Assert.Equal(3, progress.Failed);
        Assert.Equal(new FailedByClass(2, 0, 1), progress.FailedByClass);
        Assert.Equal(40, progress.Processed);
    }
}
