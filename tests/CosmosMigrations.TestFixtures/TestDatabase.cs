using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;
using Xunit;

namespace CosmosMigrations.Tests.Infrastructure;

/// <summary>A fresh database per test class, dropped at the end.</summary>
public sealed class TestDatabase : IAsyncLifetime
{
    public CosmosTestServer Server { get; private set; } = null!;

    public CosmosClient Client { get; private set; } = null!;

    public Database Database { get; private set; } = null!;

    public string Name { get; } = "t" + Guid.NewGuid().ToString("N")[..12];

    public async Task InitializeAsync()
    {
        Server = await CosmosTestServer.GetAsync();
        Client = Server.CreateClient();
        Database = (await Client.CreateDatabaseIfNotExistsAsync(Name)).Database;
    }

    public async Task DisposeAsync()
    {
        try
        {
            await Database.DeleteAsync();
        }
        catch (CosmosException)
        {
        }

        Client.Dispose();
    }

    public async Task<Container> CreateContainerAsync(string name, string partitionKeyPath = "/pk")
    {
        return (await Database.CreateContainerIfNotExistsAsync(name, partitionKeyPath)).Container;
    }

    /// <summary>A new container holding <paramref name="count"/> documents (<see cref="SeedAsync"/>).</summary>
    public async Task<Container> CreateSeededContainerAsync(string name, int count, int partitions, Func<int, JObject>? shape = null)
    {
        var container = await CreateContainerAsync(name);
        await SeedAsync(container, count, partitions, shape);
        return container;
    }

    /// <summary>Inserts <paramref name="count"/> documents (id d{i}, pk p{i % partitions}) built by <paramref name="shape"/>.</summary>
    public static async Task SeedAsync(Container container, int count, int partitions, Func<int, JObject>? shape = null)
    {
        var throttle = new System.Threading.SemaphoreSlim(32);
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await throttle.WaitAsync();
            try
            {
                var doc = shape?.Invoke(i) ?? new JObject { ["name"] = $"User {i}", ["email"] = $"user{i}@example.com" };
                doc["id"] = $"d{i}";
                doc["pk"] = $"p{i % partitions}";
                await container.UpsertItemAsync(doc, new PartitionKey($"p{i % partitions}"));
            }
            finally
            {
                throttle.Release();
            }
        }));
    }

    public static Task<List<JObject>> ReadAllAsync(Container container, string query = "SELECT * FROM c") =>
        DrainAsync(container.GetItemQueryIterator<JObject>(query, requestOptions: new QueryRequestOptions { MaxItemCount = 1000 }));

    /// <summary>Every page of a feed iterator (which it disposes).</summary>
    public static async Task<List<T>> DrainAsync<T>(FeedIterator<T> iterator)
    {
        var all = new List<T>();
        using (iterator)
        {
            while (iterator.HasMoreResults)
            {
                all.AddRange(await iterator.ReadNextAsync());
            }
        }

        return all;
    }
}
