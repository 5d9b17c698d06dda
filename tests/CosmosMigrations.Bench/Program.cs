using System.Diagnostics;
using System.Globalization;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

// Usage: bench <seed|raw|bulk|loop> <endpoint> <key> <database> <container> <count|field> [concurrency]
//        bench journal-size <endpoint> <key> <database> <journal container> <migration> <target container>
// Prints one JSON line: what was done, how many documents, how long, the process's CPU and memory
// (journal-size: the bytes of a migration's journal entries and of the target's documents, as stored).
var mode = args[0];
var endpoint = args[1];
var key = args[2];
var database = args[3];
var containerName = args[4];
using var client = new CosmosClient(endpoint, key, new CosmosClientOptions
{
    ConnectionMode = ConnectionMode.Gateway,
    LimitToEndpoint = new Uri(endpoint).IsLoopback,
    EnableContentResponseOnWrite = false,
    HttpClientFactory = () => new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true, MaxConnectionsPerServer = 64 }),
});
var clock = Stopwatch.StartNew();
// The request units the service charged this run's requests (query pages included), as its
// answers say (the local server charges 1 a request).
double charge = 0;
switch (mode)
{
    case "seed":
    {
        // ~0.5 KB documents in 40 partition keys.
        var count = int.Parse(args[5], CultureInfo.InvariantCulture);
        await client.CreateDatabaseIfNotExistsAsync(database);
        var container = (await client.GetDatabase(database).CreateContainerIfNotExistsAsync(containerName, "/pk")).Container;
        using var gate = new SemaphoreSlim(64);
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                var doc = new JObject
                {
                    ["id"] = $"d{i}", ["pk"] = $"p{i % 40}", ["name"] = $"User {i}", ["email"] = $"user{i}@example.com",
                    ["bio"] = new string('x', 380), ["score"] = i,
                };
                await container.UpsertItemAsync(doc, new PartitionKey($"p{i % 40}"));
            }
            finally
            {
                gate.Release();
            }
        }));
        Report(count);
        break;
    }

    case "raw":
    {
        // A: the ceiling. List the ids, then patch every document, N in flight, no tracking.
        var field = args[5];
        var concurrency = int.Parse(args[6], CultureInfo.InvariantCulture);
        var container = client.GetDatabase(database).GetContainer(containerName);
        var ids = new List<(string Id, string Pk)>();
        using (var iterator = container.GetItemQueryIterator<JObject>("SELECT c.id, c.pk FROM c", requestOptions: new QueryRequestOptions { MaxItemCount = 1000 }))
        {
            while (iterator.HasMoreResults)
            {
                var page = await iterator.ReadNextAsync();
                charge += page.RequestCharge;
                foreach (var d in page)
                {
                    ids.Add(((string)d["id"]!, (string)d["pk"]!));
                }
            }
        }

        using var gate = new SemaphoreSlim(concurrency);
        await Task.WhenAll(ids.Select(async d =>
        {
            await gate.WaitAsync();
            try
            {
                var response = await container.PatchItemAsync<JObject>(d.Id, new PartitionKey(d.Pk), new[] { PatchOperation.Set("/" + field, 1) });
                Add(response.RequestCharge);
            }
            finally
            {
                gate.Release();
            }
        }));
        Report(ids.Count);
        break;
    }

    case "bulk":
    {
        // The peer column: a bulk-mode upsert loop, as the Cosmigrator tool runs a migration. Read
        // whole documents a page of 100 at a time, add the field in memory, and upsert the page's
        // documents whole, all 100 at once, waiting for the batch before the next page (the local
        // server cannot parse the SDK's binary bulk batches, so the batch is 100 concurrent point
        // upserts, which is what bulk mode sends one partition's worth at a time).
        var field = args[5];
        var container = client.GetDatabase(database).GetContainer(containerName);
        var done = 0;
        using var iterator = container.GetItemQueryIterator<JObject>($"SELECT * FROM c WHERE NOT IS_DEFINED(c.{field})", requestOptions: new QueryRequestOptions { MaxItemCount = 100 });
        while (iterator.HasMoreResults)
        {
            var page = await iterator.ReadNextAsync();
            charge += page.RequestCharge;
            await Task.WhenAll(page.Select(async d =>
            {
                d[field] = 1;
                var response = await container.UpsertItemAsync(d, new PartitionKey((string)d["pk"]!));
                Add(response.RequestCharge);
            }));
            done += page.Count;
        }

        Report(done);
        break;
    }

    case "loop":
    {
        // C: the seed's pattern. Read a page of 100, patch each document in turn, next page.
        var field = args[5];
        var container = client.GetDatabase(database).GetContainer(containerName);
        var done = 0;
        string? continuation = null;
        do
        {
            using var iterator = container.GetItemQueryIterator<JObject>($"SELECT * FROM c WHERE NOT IS_DEFINED(c.{field})", continuation, new QueryRequestOptions { MaxItemCount = 100 });
            var page = await iterator.ReadNextAsync();
            foreach (var d in page)
            {
                await container.PatchItemAsync<JObject>((string)d["id"]!, new PartitionKey((string)d["pk"]!), new[] { PatchOperation.Set("/" + field, 1) });
                done++;
            }

            continuation = page.ContinuationToken;
        }
        while (continuation is not null);
        Report(done);
        break;
    }

    case "journal-size":
    {
        // The stored size of a migration's before-images per document (its records hold a page of
        // documents each), beside the documents' own.
        var migration = args[5];
        var (records, recordBytes, entries) = await SizeAsync(client.GetDatabase(database).GetContainer(containerName),
            new QueryDefinition("SELECT * FROM c WHERE c.migration = @m").WithParameter("@m", migration));
        var (documents, documentBytes, _) = await SizeAsync(client.GetDatabase(database).GetContainer(args[6]), new QueryDefinition("SELECT * FROM c"));
        Console.WriteLine(new JObject
        {
            ["mode"] = mode,
            ["records"] = records,
            ["entries"] = entries,
            ["bytesPerEntry"] = entries == 0 ? 0 : Math.Round((double)recordBytes / entries, 1),
            ["documents"] = documents,
            ["bytesPerDocument"] = documents == 0 ? 0 : Math.Round((double)documentBytes / documents, 1),
        }.ToString(Newtonsoft.Json.Formatting.None));
        break;
    }
}

// Items, their bytes as stored, and the documents they hold (a journal record's ids; 1 otherwise).
static async Task<(long Count, long Bytes, long Documents)> SizeAsync(Container container, QueryDefinition query)
{
    long count = 0, bytes = 0, held = 0;
    using var iterator = container.GetItemQueryStreamIterator(query, requestOptions: new QueryRequestOptions { MaxItemCount = 1000 });
    while (iterator.HasMoreResults)
    {
        using var response = await iterator.ReadNextAsync();
        response.EnsureSuccessStatusCode();
        using var page = await System.Text.Json.JsonDocument.ParseAsync(response.Content);
        foreach (var item in page.RootElement.GetProperty("Documents").EnumerateArray())
        {
            count++;
            bytes += System.Text.Encoding.UTF8.GetByteCount(item.GetRawText());
            held += item.TryGetProperty("ids", out var ids) ? ids.GetArrayLength() : 1;
        }
    }

    return (count, bytes, held);
}

void Add(double requestCharge)
{
    lock (client)
    {
        charge += requestCharge;
    }
}

// CPU (user + system) of the whole process, start-up and connection included: the bench
// subtracts a run over an empty container to get the cost per document.
void Report(int documents)
{
    using var process = Process.GetCurrentProcess();
    Console.WriteLine(new JObject
    {
        ["mode"] = mode,
        ["documents"] = documents,
        ["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 3),
        ["docsPerSecond"] = documents == 0 ? 0 : Math.Round(documents / clock.Elapsed.TotalSeconds, 1),
        ["requestCharge"] = Math.Round(charge, 2),
        ["cpuSeconds"] = Math.Round(process.TotalProcessorTime.TotalSeconds, 3),
        ["peakWorkingSetMiB"] = Math.Round(process.PeakWorkingSet64 / 1048576.0, 1),
        ["allocatedMiB"] = Math.Round(GC.GetTotalAllocatedBytes() / 1048576.0, 1),
        ["gcCount"] = GC.CollectionCount(0),
        ["gen1"] = GC.CollectionCount(1),
        ["gen2"] = GC.CollectionCount(2),
        ["gcPauseMs"] = Math.Round(GC.GetTotalPauseDuration().TotalMilliseconds),
        ["jitMs"] = Math.Round(System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds),
        ["jitMethods"] = System.Runtime.JitInfo.GetCompiledMethodCount(),
    }.ToString(Newtonsoft.Json.Formatting.None));
}
