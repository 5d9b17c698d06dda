using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.TestKit;

/// <summary>Synchronous helpers for PowerShell tests and the demo (PowerShell cannot await).</summary>
public sealed class TestData : IDisposable
{
    private readonly CosmosClient _client;
    private readonly LocalServerAdmin _admin;

    public TestData(string endpoint, string key)
    {
        Endpoint = endpoint;
        _client = new CosmosClient(endpoint, key, new CosmosClientOptions
        {
            ConnectionMode = ConnectionMode.Gateway,
            LimitToEndpoint = new Uri(endpoint).IsLoopback,
            HttpClientFactory = () => new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true, MaxConnectionsPerServer = 64 }),
        });
        _admin = new LocalServerAdmin(endpoint);
    }

    public string Endpoint { get; }

    public void CreateDatabase(string database) => _client.CreateDatabaseIfNotExistsAsync(database).GetAwaiter().GetResult();

    public void DeleteDatabase(string database)
    {
        try
        {
            _client.GetDatabase(database).DeleteAsync().GetAwaiter().GetResult();
        }
        catch (CosmosException)
        {
        }
    }

    public void CreateContainer(string database, string container, string partitionKeyPath = "/pk") =>
        _client.GetDatabase(database).CreateContainerIfNotExistsAsync(container, partitionKeyPath).GetAwaiter().GetResult();

    /// <summary>A container with a hierarchical partition key (MultiHash, up to three paths).</summary>
    public void CreateHierarchicalContainer(string database, string container, string[] partitionKeyPaths) =>
        _client.GetDatabase(database).CreateContainerIfNotExistsAsync(new ContainerProperties(container, partitionKeyPaths.ToList())).GetAwaiter().GetResult();

    /// <summary>A container from its properties as JSON (as the service writes them: id,
    /// partitionKey, indexingPolicy, defaultTtl, uniqueKeyPolicy, computedProperties, …).</summary>
    public void CreateContainerFromJson(string database, string json) =>
        _client.GetDatabase(database).CreateContainerAsync(Newtonsoft.Json.JsonConvert.DeserializeObject<ContainerProperties>(json)!).GetAwaiter().GetResult();

    /// <summary>A container's properties as the service returns them, as JSON.</summary>
    public string ContainerJson(string database, string container) =>
        Newtonsoft.Json.JsonConvert.SerializeObject(_client.GetDatabase(database).GetContainer(container).ReadContainerAsync().GetAwaiter().GetResult().Resource);

    /// <summary>Inserts documents d{start}..d{start+count-1} with pk p{i % partitions}, name and email (the seed's shape).</summary>
    public void Seed(string database, string container, int count, int partitions, int start = 0, string? extraJson = null)
    {
        var target = _client.GetDatabase(database).GetContainer(container);
        var extra = string.IsNullOrEmpty(extraJson) ? null : JObject.Parse(extraJson!);
        using var throttle = new SemaphoreSlim(48);
        Task.WhenAll(Enumerable.Range(start, count).Select(async i =>
        {
            await throttle.WaitAsync().ConfigureAwait(false);
            try
            {
                var doc = new JObject { ["id"] = $"d{i}", ["pk"] = $"p{i % partitions}", ["name"] = $"User {i}", ["email"] = $"user{i}@example.com" };
                if (extra is not null)
                {
                    doc.Merge(extra);
                }

                await target.UpsertItemAsync(doc, new PartitionKey($"p{i % partitions}")).ConfigureAwait(false);
            }
            finally
            {
                throttle.Release();
            }
        })).GetAwaiter().GetResult();
    }

    /// <summary>The sample data of the demo and of the README's first session: a new database with
    /// <paramref name="count"/> users (a quarter of them with mixed-case emails) and as many posts
    /// in the seed's old shape, which the
    /// migrations in examples/migrations bring up to date. Changes nothing and returns false when
    /// the database exists.</summary>
    public bool SeedSampleDatabase(string database, int count, int partitions)
    {
        if (_client.CreateDatabaseIfNotExistsAsync(database).GetAwaiter().GetResult().StatusCode != HttpStatusCode.Created)
        {
            return false;
        }

        CreateContainer(database, "users");
        CreateContainer(database, "posts");
        SeedUsers(database, "users", count, partitions, mixedCaseEmails: true);
        SeedPosts(database, "posts", count, partitions);
        return true;
    }

    /// <summary>Users in the seed's old shape: name, email and userName (to be renamed). With
    /// <paramref name="mixedCaseEmails"/>, every fourth email is written as a person might type it
    /// (User4@Example.com), for a backfill that normalises emails to change something.</summary>
    public void SeedUsers(string database, string container, int count, int partitions, bool mixedCaseEmails = false) =>
        SeedShaped(database, container, count, partitions, i => new JObject
        {
            ["name"] = $"User {i}",
            ["email"] = mixedCaseEmails && i % 4 == 0 ? $"User{i}@Example.com" : $"user{i}@example.com",
            ["userName"] = $"user{i}",
        });

    /// <summary>Posts in the seed's old shape: status, publishedAt, priority (low/medium/high) and a legacyField.</summary>
    public void SeedPosts(string database, string container, int count, int partitions) =>
        SeedShaped(database, container, count, partitions, i => new JObject
        {
            ["title"] = $"Post {i}",
            ["status"] = i % 3 == 0 ? "draft" : "published",
            ["publishedAt"] = 1_700_000_000_000L + i * 60_000L,
            ["priority"] = (i % 4) switch { 0 => "low", 1 => "medium", 2 => "high", _ => "urgent" },
            ["legacyField"] = "v1",
        });

    /// <summary>Documents of a hierarchical-key container get each other key path as a field of
    /// a few values ("/tenant" → tenant = "tenant0".."tenant2"), and their full key.</summary>
    private void SeedShaped(string database, string container, int count, int partitions, Func<int, JObject> shape)
    {
        var target = _client.GetDatabase(database).GetContainer(container);
        var paths = target.ReadContainerAsync().GetAwaiter().GetResult().Resource.PartitionKeyPaths ?? new[] { "/pk" };
        using var throttle = new SemaphoreSlim(48);
        Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await throttle.WaitAsync().ConfigureAwait(false);
            try
            {
                var doc = shape(i);
                doc.AddFirst(new JProperty("pk", $"p{i % partitions}"));
                doc.AddFirst(new JProperty("id", $"d{i}"));
                if (paths.Count > 1)
                {
                    var key = new PartitionKeyBuilder();
                    foreach (var name in paths.Select(p => p.TrimStart('/')))
                    {
                        doc[name] ??= $"{name}{i % 3}";
                        key.Add((string)doc[name]!);
                    }

                    await target.UpsertItemAsync(doc, key.Build()).ConfigureAwait(false);
                    return;
                }

                await target.UpsertItemAsync(doc, new PartitionKey($"p{i % partitions}")).ConfigureAwait(false);
            }
            finally
            {
                throttle.Release();
            }
        })).GetAwaiter().GetResult();
    }

    /// <summary>Sets one field with a patch, as an application would while a migration runs.</summary>
    public void PatchField(string database, string container, string id, string partitionKey, string field, string value) =>
        _client.GetDatabase(database).GetContainer(container)
            .PatchItemAsync<JObject>(id, new PartitionKey(partitionKey), new[] { PatchOperation.Set("/" + field, value) }).GetAwaiter().GetResult();

    public string IndexingPolicyJson(string database, string container)
    {
        var properties = _client.GetDatabase(database).GetContainer(container).ReadContainerAsync().GetAwaiter().GetResult().Resource;
        return Newtonsoft.Json.JsonConvert.SerializeObject(properties.IndexingPolicy);
    }

    public void Upsert(string database, string container, string json)
    {
        var doc = JObject.Parse(json);
        _client.GetDatabase(database).GetContainer(container).UpsertItemAsync(doc, new PartitionKey((string?)doc["pk"] ?? (string?)doc["id"])).GetAwaiter().GetResult();
    }

    /// <summary>Every document as raw JSON text, ordered by id (for byte-for-byte comparisons).</summary>
    public string[] ReadAllJson(string database, string container, string query = "SELECT * FROM c")
    {
        var results = new List<string>();
        using var iterator = _client.GetDatabase(database).GetContainer(container).GetItemQueryStreamIterator(query, requestOptions: new QueryRequestOptions { MaxItemCount = 1000 });
        while (iterator.HasMoreResults)
        {
            using var response = iterator.ReadNextAsync().GetAwaiter().GetResult();
            response.EnsureSuccessStatusCode();
            using var reader = new System.IO.StreamReader(response.Content);
            var page = JObject.Parse(reader.ReadToEnd());
            results.AddRange(((JArray)page["Documents"]!).Select(d => d.ToString(Newtonsoft.Json.Formatting.None)));
        }

        return results.OrderBy(s => (string?)JObject.Parse(s)["id"], StringComparer.Ordinal).ToArray();
    }

    /// <summary>Upserts a document sent exactly as written (no parsing on the way: dates, numbers and
    /// escapes reach the service as the text has them); the partition key is its "pk".</summary>
    public void UpsertRaw(string database, string container, string json)
    {
        var pk = (string?)JObject.Parse(json)["pk"];
        using var body = new System.IO.MemoryStream(Encoding.UTF8.GetBytes(json));
        using var response = _client.GetDatabase(database).GetContainer(container).UpsertItemStreamAsync(body, new PartitionKey(pk)).GetAwaiter().GetResult();
        response.EnsureSuccessStatusCode();
    }

    /// <summary>Every document exactly as the service sent it, system properties aside: for each
    /// document, its own properties' bytes (names and values as served, in their order, without
    /// re-encoding), ordered by id. Two reads are equal only if the documents are equal byte for byte.</summary>
    public string[] ReadAllExact(string database, string container, string query = "SELECT * FROM c")
    {
        var system = new HashSet<string>(StringComparer.Ordinal) { "_rid", "_self", "_etag", "_attachments", "_ts", "_lsn" };
        var results = new List<(string Id, string Json)>();
        using var iterator = _client.GetDatabase(database).GetContainer(container).GetItemQueryStreamIterator(query, requestOptions: new QueryRequestOptions { MaxItemCount = 1000 });
        while (iterator.HasMoreResults)
        {
            using var response = iterator.ReadNextAsync().GetAwaiter().GetResult();
            response.EnsureSuccessStatusCode();
            using var buffer = new System.IO.MemoryStream();
            response.Content.CopyTo(buffer);
            using var page = System.Text.Json.JsonDocument.Parse(buffer.ToArray());
            foreach (var element in page.RootElement.GetProperty("Documents").EnumerateArray())
            {
                var raw = Encoding.UTF8.GetBytes(element.GetRawText());
                var reader = new System.Text.Json.Utf8JsonReader(raw);
                var parts = new List<string>();
                reader.Read();
                while (reader.Read() && reader.TokenType == System.Text.Json.JsonTokenType.PropertyName)
                {
                    var start = (int)reader.TokenStartIndex;
                    var name = reader.GetString()!;
                    reader.Read();
                    reader.Skip();
                    var end = (int)reader.BytesConsumed;
                    if (!system.Contains(name))
                    {
                        parts.Add(Encoding.UTF8.GetString(raw, start, end - start));
                    }
                }

                results.Add((element.GetProperty("id").GetString()!, "{" + string.Join(",", parts) + "}"));
            }
        }

        return results.OrderBy(r => r.Id, StringComparer.Ordinal).Select(r => r.Json).ToArray();
    }

    /// <summary>Deletes a container (the same name can then be created again: another container).</summary>
    public void DeleteContainer(string database, string container) =>
        _client.GetDatabase(database).GetContainer(container).DeleteContainerAsync().GetAwaiter().GetResult();

    /// <summary>Replaces a document whole, as an application would.</summary>
    public void Replace(string database, string container, string json)
    {
        var doc = JObject.Parse(json);
        _client.GetDatabase(database).GetContainer(container).ReplaceItemAsync(doc, (string)doc["id"]!, new PartitionKey((string?)doc["pk"] ?? (string?)doc["id"])).GetAwaiter().GetResult();
    }

    /// <summary>Deletes a document, as an application would.</summary>
    public void Delete(string database, string container, string id, string partitionKey) =>
        _client.GetDatabase(database).GetContainer(container).DeleteItemAsync<JObject>(id, new PartitionKey(partitionKey)).GetAwaiter().GetResult();

    /// <summary>Removes one field with a patch, as an application would.</summary>
    public void RemoveField(string database, string container, string id, string partitionKey, string field) =>
        _client.GetDatabase(database).GetContainer(container)
            .PatchItemAsync<JObject>(id, new PartitionKey(partitionKey), new[] { PatchOperation.Remove("/" + field) }).GetAwaiter().GetResult();

    /// <summary>Adds a composite index to a container's indexing policy, as an administrator would.</summary>
    public void AddCompositeIndex(string database, string container, string first, string second)
    {
        var target = _client.GetDatabase(database).GetContainer(container);
        var properties = target.ReadContainerAsync().GetAwaiter().GetResult().Resource;
        properties.IndexingPolicy.CompositeIndexes.Add(new System.Collections.ObjectModel.Collection<CompositePath>
        {
            new CompositePath { Path = "/" + first, Order = CompositePathSortOrder.Ascending },
            new CompositePath { Path = "/" + second, Order = CompositePathSortOrder.Ascending },
        });
        target.ReplaceContainerAsync(properties).GetAwaiter().GetResult();
    }

    public long Count(string database, string container, string condition = "true")
    {
        using var iterator = _client.GetDatabase(database).GetContainer(container).GetItemQueryIterator<long>($"SELECT VALUE COUNT(1) FROM c WHERE {condition}");
        long total = 0;
        while (iterator.HasMoreResults)
        {
            total += iterator.ReadNextAsync().GetAwaiter().GetResult().Sum();
        }

        return total;
    }

    /// <summary>Sets the local harness's fault injection (JSON as tests/LocalCosmos/faults.js reads it).</summary>
    public string SetFaults(string json) => _admin.SetFaultsAsync(json).GetAwaiter().GetResult();

    /// <summary>Splits a partition key range of a container on the local harness (the fullest when
    /// <paramref name="range"/> is null); answers {"parent", "children"} as JSON.</summary>
    public string Split(string database, string container, string? range = null) => _admin.SplitAsync(database, container, range).GetAwaiter().GetResult();

    /// <summary>Makes a container's all-versions change log on the local harness forget what it holds,
    /// as past the feed's retention window; answers {"dropped"} as JSON.</summary>
    public string ExpireChangeLog(string database, string container) => _admin.ExpireChangeLogAsync(database, container).GetAwaiter().GetResult();

    /// <summary>The live partition key ranges of a container on the local harness, as JSON.</summary>
    public string Ranges(string database, string container) => _admin.RangesAsync(database, container).GetAwaiter().GetResult();

    public string Stats() => _admin.StatsAsync().GetAwaiter().GetResult();

    public void Dispose()
    {
        _client.Dispose();
        _admin.Dispose();
    }
}
