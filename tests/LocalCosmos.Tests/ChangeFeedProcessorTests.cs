using System.Collections.Concurrent;
using CosmosMigrations.Tests.Infrastructure;

namespace LocalCosmos.Tests;

/// <summary>The SDK's change feed processor and estimator on a container of several ranges (what
/// -Distributed builds on): one lease per range, shared by the instances, handed over when one
/// stops, and an estimate of the true lag.</summary>
public sealed class ChangeFeedProcessorTests(TestDatabase db, ITestOutputHelper output) : DatabaseTests(db, output)
{
    private static Task<List<JObject>> LeasesAsync(Container leases) =>
        TestDatabase.ReadAllAsync(leases, "SELECT * FROM c WHERE IS_DEFINED(c.LeaseToken)");

    private static async Task<long> LagAsync(ChangeFeedEstimator estimator)
    {
        long lag = 0;
        using var iterator = estimator.GetCurrentStateIterator();
        while (iterator.HasMoreResults)
        {
            lag += (await iterator.ReadNextAsync()).Sum(s => s.EstimatedLag);
        }

        return lag;
    }

    [Fact]
    public async Task Two_instances_share_the_leases_a_stopped_ones_go_to_the_other_and_the_estimator_reports_the_true_lag()
    {
        var monitored = await Db.CreateContainerAsync("cfp");
        var leases = (await Db.Database.CreateContainerIfNotExistsAsync("cfp-leases", "/id")).Container;
        await TestDatabase.SeedAsync(monitored, 400, 40);
        var ranges = (await monitored.GetFeedRangesAsync()).Count;
        var deliveries = new ConcurrentDictionary<string, int>();

        ChangeFeedProcessor Build(string instance) => monitored
            .GetChangeFeedProcessorBuilder<JObject>("migrate", (changes, cancellationToken) =>
            {
                foreach (var document in changes)
                {
                    deliveries.AddOrUpdate((string)document["id"]!, 1, (_, n) => n + 1);
                }

                return Task.CompletedTask;
            })
            .WithInstanceName(instance)
            .WithLeaseContainer(leases)
            .WithStartTime(DateTime.MinValue.ToUniversalTime())
            .WithPollInterval(TimeSpan.FromMilliseconds(100))
            .WithLeaseConfiguration(acquireInterval: TimeSpan.FromMilliseconds(200), expirationInterval: TimeSpan.FromSeconds(5), renewInterval: TimeSpan.FromMilliseconds(500))
            .Build();

        var a = Build("A");
        var b = Build("B");
        await a.StartAsync();
        await b.StartAsync();
        try
        {
            await WaitUntilAsync(() => Task.FromResult(deliveries.Count == 400), "the 400 documents are delivered");
            await WaitUntilAsync(async () =>
            {
                var owners = (await LeasesAsync(leases)).Select(l => (string?)l["Owner"]).ToList();
                return owners.Count == ranges && owners.Contains("A") && owners.Contains("B");
            }, "both instances own leases");
            var owned = (await LeasesAsync(leases)).GroupBy(l => (string?)l["Owner"]).ToDictionary(g => g.Key ?? "", g => g.Count());
            Output.WriteLine($"{ranges} ranges, leases: {string.Join(", ", owned.Select(o => $"{o.Key} {o.Value}"))}");
            Assert.Equal(ranges, owned.Values.Sum());

            await a.StopAsync();
            await TestDatabase.SeedAsync(monitored, 200, 40, i => new JObject { ["late"] = true });
            for (var i = 400; i < 600; i++)
            {
                await monitored.CreateItemAsync(new JObject { ["id"] = $"n{i}", ["pk"] = $"p{i % 40}" }, new PartitionKey($"p{i % 40}"));
            }

            await WaitUntilAsync(() => Task.FromResult(deliveries.Count == 600), "the new documents are delivered");
            await WaitUntilAsync(async () => (await LeasesAsync(leases)).All(l => (string?)l["Owner"] == "B"), "B owns every lease");
        }
        finally
        {
            await a.StopAsync();
            await b.StopAsync();
        }

        // Every document at least once (the documents rewritten late twice): what the
        // processor promises; none lost across the hand-over.
        Assert.Equal(600, deliveries.Count);
        Assert.All(deliveries, d => Assert.InRange(d.Value, 1, d.Key.StartsWith('d') && int.Parse(d.Key.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture) < 200 ? 3 : 2));

        // With every processor stopped, the estimator counts what was written since.
        var estimator = monitored.GetChangeFeedEstimator("migrate", leases);
        Assert.Equal(0, await LagAsync(estimator));
        for (var i = 0; i < 150; i++)
        {
            await monitored.CreateItemAsync(new JObject { ["id"] = $"lag{i}", ["pk"] = $"p{i % 40}" }, new PartitionKey($"p{i % 40}"));
        }

        Assert.Equal(150, await LagAsync(estimator));
        var c = Build("C");
        await c.StartAsync();
        try
        {
            await WaitUntilAsync(() => Task.FromResult(deliveries.Count == 750), "the lagging documents are delivered");
            await WaitUntilAsync(async () => await LagAsync(estimator) == 0, "the estimated lag is 0");
        }
        finally
        {
            await c.StopAsync();
        }
    }
}
