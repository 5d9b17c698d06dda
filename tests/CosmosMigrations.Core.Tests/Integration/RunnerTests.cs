using System.Collections;
using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Errors;
using CosmosMigrations.Running;
using CosmosMigrations.Tests.Infrastructure;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Tests.Integration;

public sealed class RunnerTests(TestDatabase db, ITestOutputHelper output) : DatabaseTests(db, output)
{
    private async Task<MigrationConnection> ConnectAsync() =>
        await MigrationConnection.OpenAsync(Db.Server.Settings(Db.Name), null, CancellationToken.None);

    private static MigrationDefinition AddField(string name, string container, string field, object value) =>
        TestDefinitions.AddField(name, container, field, value);

    [Fact]
    public async Task Backfill_changes_every_document_exactly_once_and_completes()
    {
        var container = await Db.CreateSeededContainerAsync("users5000", 5000, 40);
        using var connection = await ConnectAsync();
        var runner = new MigrationRunner(connection) { Log = m => Console.WriteLine("LOG " + m) };
        var progress = new Progress<MigrationProgress>(p => Console.WriteLine($"PROGRESS scanned={p.Scanned} processed={p.Processed}"));

        var result = await runner.RunAsync(AddField("add-avatar", "users5000", "avatarUrl", "none"), new RunOptions(), progress, CancellationToken.None);

        Assert.Null(result.Error);
        Assert.Equal("completed", result.Status.Status);
        Assert.Equal(5000, result.Status.Processed);
        var docs = await TestDatabase.ReadAllAsync(container);
        Assert.Equal(5000, docs.Count);
        Assert.All(docs, d => Assert.Equal("none", (string?)d["avatarUrl"]));
        var tracking = await TrackingStore.Of(connection).GetAsync("add-avatar", CancellationToken.None);
        Assert.NotNull(tracking);
        Assert.Equal("completed", tracking!.Status);
        Assert.Equal(5000, tracking.Processed);
        Assert.True(tracking.StartedAt > 0);
        Assert.True(tracking.CompletedAt >= tracking.StartedAt);
        Assert.Null(tracking.Error);
        Assert.Null(tracking.Lease);

        var again = await runner.RunAsync(AddField("add-avatar", "users5000", "avatarUrl", "none"), new RunOptions(), null, CancellationToken.None);
        Assert.Equal("Skipped", again.Status.Outcome);

        var forced = await runner.RunAsync(AddField("add-avatar", "users5000", "avatarUrl", "none"), new RunOptions { Force = true }, null, CancellationToken.None);
        Assert.Equal("completed", forced.Status.Status);
        Assert.Equal(0, forced.Status.Processed);
    }

    [Fact]
    public async Task A_change_too_large_for_a_patch_reads_the_whole_document_before_replacing_it()
    {
        // The scan fetches only the fields the operations name; eleven field changes exceed one
        // patch, so the write is a replace, which must start from the whole stored document.
        var container = await Db.CreateSeededContainerAsync("wide", 150, 5, i => new JObject
        {
            ["name"] = $"User {i}",
            ["profile"] = new JObject { ["city"] = "Oslo", ["tags"] = new JArray("a", "b") },
            ["score"] = i,
        });
        using var connection = await ConnectAsync();
        var operations = Enumerable.Range(0, 11).Select(i => (object?)new Hashtable { ["AddField"] = $"f{i}", ["Value"] = i }).ToArray();
        var definition = new DefinitionParser().ParseInline("wide-add", "wide", null, operations);

        var result = await new MigrationRunner(connection).RunAsync(definition, new RunOptions { BatchSize = 40 }, null, CancellationToken.None);

        Assert.Equal("completed", result.Status.Status);
        Assert.Equal(150, result.Status.Processed);
        var docs = await TestDatabase.ReadAllAsync(container);
        Assert.Equal(150, docs.Count);
        Assert.All(docs, d =>
        {
            Assert.Equal($"User {(int)d["score"]!}", (string?)d["name"]);
            Assert.Equal("Oslo", (string?)d["profile"]!["city"]);
            Assert.Equal(2, ((JArray)d["profile"]!["tags"]!).Count);
            Assert.Equal(10, (int)d["f10"]!);
        });
    }

    [Fact]
    public async Task A_time_sliced_run_resumes_from_its_checkpoint()
    {
        var container = await Db.CreateSeededContainerAsync("slices", 1000, 10);
        using var connection = await ConnectAsync();
        var definition = AddField("slices-add", "slices", "flag", true);

        var first = await new MigrationRunner(connection).RunAsync(definition, new RunOptions { BatchSize = 100, MaxBatches = 3 }, null, CancellationToken.None);
        Assert.Equal("cancelled", first.Status.Status);
        Assert.Equal("MaxBatches", first.Status.StopReason);
        Assert.Equal(300, first.Status.Processed);

        var scannedBefore = first.Status.Scanned;
        var second = await new MigrationRunner(connection).RunAsync(definition, new RunOptions { BatchSize = 100 }, null, CancellationToken.None);
        Assert.Equal("completed", second.Status.Status);
        Assert.Equal(1000, second.Status.Processed);
        // Resumed, not restarted: the second run read only the documents after the checkpoint.
        Assert.Equal(1000, second.Status.Scanned);
        Assert.Equal(300, scannedBefore);
        Assert.Equal(1000, (await TestDatabase.ReadAllAsync(container, "SELECT * FROM c WHERE c.flag = true")).Count);
    }

    [Fact]
    public async Task A_live_lease_blocks_a_second_runner_with_already_running()
    {
        var container = await Db.CreateSeededContainerAsync("leases", 300, 5);
        using var connection = await ConnectAsync();
        var definition = AddField("lease-test", "leases", "x", 1);
        var first = new MigrationRunner(connection);
        var entered = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        first.AfterCheckpoint = async pages =>
        {
            if (pages == 1)
            {
                entered.TrySetResult();
                await release.Task;
            }
        };
        var running = first.RunAsync(definition, new RunOptions { BatchSize = 100 }, null, CancellationToken.None);
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(30));

        var error = await Assert.ThrowsAsync<MigrationException>(() => new MigrationRunner(connection).RunAsync(definition, new RunOptions(), null, CancellationToken.None));
        Assert.Equal(MigrationErrorKind.AlreadyRunning, error.Kind);
        Assert.Contains(Environment.MachineName, error.Message);

        release.SetResult();
        var result = await running;
        Assert.Equal("completed", result.Status.Status);
        Assert.Equal(300, result.Status.Processed);
    }

    [Fact]
    public async Task Stop_flag_ends_the_run_cancelled_and_the_next_start_completes()
    {
        var container = await Db.CreateSeededContainerAsync("stops", 500, 5);
        using var connection = await ConnectAsync();
        var definition = AddField("stop-test", "stops", "y", 2);
        var runner = new MigrationRunner(connection);
        runner.AfterCheckpoint = async pages =>
        {
            if (pages == 1)
            {
                await new MigrationLifecycle(TrackingStore.Of(connection)).RequestStopAsync("stop-test", CancellationToken.None);
            }
        };
        var stopped = await runner.RunAsync(definition, new RunOptions { BatchSize = 100 }, null, CancellationToken.None);
        Assert.Equal("cancelled", stopped.Status.Status);
        Assert.Equal("StopRequested", stopped.Status.StopReason);
        Assert.True(stopped.Status.Processed < 500);

        var resumed = await new MigrationRunner(connection).RunAsync(definition, new RunOptions(), null, CancellationToken.None);
        Assert.Equal("completed", resumed.Status.Status);
        Assert.Equal(500, resumed.Status.Processed);
    }

    [Fact]
    public async Task Dry_run_writes_nothing()
    {
        var container = await Db.CreateSeededContainerAsync("dry", 120, 3);
        var before = (await TestDatabase.ReadAllAsync(container)).Select(d => d.ToString()).OrderBy(s => s).ToList();
        using var connection = await ConnectAsync();
        var preview = await new MigrationRunner(connection).PreviewAsync(AddField("dry-add", "dry", "z", "v"), new RunOptions(), null, CancellationToken.None);
        Assert.Equal(120, preview.WouldChange);
        Assert.Equal(3, preview.Samples.Count);
        Assert.Contains("\"z\":\"v\"", preview.Samples[0].After);
        var after = (await TestDatabase.ReadAllAsync(container)).Select(d => d.ToString()).OrderBy(s => s).ToList();
        Assert.Equal(before, after);
        Assert.Null(await new TrackingStore(connection.Tracking).GetAsync("dry-add", CancellationToken.None));
    }
}
