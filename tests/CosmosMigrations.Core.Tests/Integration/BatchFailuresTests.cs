using CosmosMigrations.Connection;
using CosmosMigrations.Distributed;
using CosmosMigrations.Errors;
using CosmosMigrations.Failures;
using CosmosMigrations.Requests;
using CosmosMigrations.Running;
using CosmosMigrations.Steps;
using CosmosMigrations.Tests.Infrastructure;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Tests.Integration;

/// <summary>Batches of different feed ranges record their failed documents at the same time. The
/// first of them creates the tracking document's class counts and capped list; under a loaded full
/// test run, a move's Transform count read 0 for 2 because a later batch's create overwrote an
/// earlier one's.</summary>
public sealed class BatchFailuresTests(TestDatabase db, ITestOutputHelper output) : DatabaseTests(db, output)
{
    [Fact]
    public async Task Batches_that_record_at_once_lose_no_count_and_no_listed_failure()
    {
        const string name = "batch-failures";
        const int batches = 16;
        var container = await Db.CreateContainerAsync("bf");
        using var connection = await MigrationConnection.OpenAsync(Db.Server.Settings(Db.Name), null, CancellationToken.None);
        var store = TrackingStore.Of(connection);
        Assert.True(await store.TryCreateAsync(new TrackingDocument { Id = name, Name = name, Container = "bf", FailureCount = 0 }, CancellationToken.None));
        var target = await connection.GetContainerAsync("bf", CancellationToken.None);
        var failureStore = new FailureStore(connection.FailureContainerName, ct => FailureStore.OpenContainerAsync(connection, create: true, ct), ResilientSender.Ungated);
        var recorder = new BatchFailures(store, name, target, failureStore, new RunOptions { MaxFailures = 1000 });

        // Each batch holds one failed document, Transform and Refused in turn, all released at once.
        using var start = new ManualResetEventSlim(false);
        var recording = Enumerable.Range(0, batches).Select(i => Task.Run(async () =>
        {
            start.Wait();
            var document = new JObject { ["id"] = $"d{i}", ["pk"] = "p" };
            var failed = WriteOutcome.Failure($"d{i}", "[\"p\"]", "no", i % 2 == 0 ? FailureClass.Transform : FailureClass.Refused);
            return await recorder.RecordAsync(0, new[] { failed }, new[] { document }, CancellationToken.None);
        })).ToList();
        start.Set();
        var past = await Task.WhenAll(recording);

        Assert.DoesNotContain(true, past);
        var tracking = (await store.GetAsync(name, CancellationToken.None))!;
        Assert.Equal(batches, tracking.FailureCount);
        Assert.NotNull(tracking.Failed);
        Assert.Equal(batches / 2, tracking.Failed!.Transform);
        Assert.Equal(batches / 2, tracking.Failed.Refused);
        Assert.Equal(Enumerable.Range(0, batches).Select(i => $"d{i}").OrderBy(i => i), tracking.Failures!.Select(f => f.Id).OrderBy(i => i));
        _ = container;
    }
}
