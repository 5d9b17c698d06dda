using System.Collections.Concurrent;
using System.IO;
using System.Net;
using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Tests.Infrastructure;
using Microsoft.Azure.Cosmos;
using NSubstitute;

namespace CosmosMigrations.Tests.Fakes;

/// <summary>An in-memory account behind fakes of the SDK's abstract types (CosmosClient, Database,
/// Container, FeedIterator), for unit tests of what the local server cannot show: a container
/// split into several feed ranges. Only what the runner calls is faked; the rest throws.</summary>
internal sealed class FakeAccount
{
    public FakeAccount(FakeRangedContainer target)
    {
        Target = target;
        var database = Substitute.For<Database>();
        database.Id.Returns("db");
        database.GetContainer(Tracking.Id).Returns(Tracking.Container);
        database.GetContainer(Journal.Id).Returns(Journal.Records.Container);
        database.GetContainer(target.Id).Returns(target.Container);
        var client = Substitute.For<CosmosClient>();
        client.GetDatabase("db").Returns(database);
        Client = client;
    }

    /// <summary>An account whose container "orders" has <paramref name="ranges"/> feed ranges of
    /// <paramref name="documentsPerRange"/> documents each, scanned for those without the flag
    /// (<see cref="TestDefinitions.AddFlag"/>'s migration).</summary>
    public static (FakeRangedContainer Target, FakeAccount Account) Orders(int ranges, int documentsPerRange)
    {
        var target = new FakeRangedContainer("orders", ranges, documentsPerRange, TestDefinitions.LacksFlag);
        return (target, new FakeAccount(target));
    }

    public CosmosClient Client { get; }

    public FakeTrackingContainer Tracking { get; } = new();

    /// <summary>The journal container (before-images), seen by document: its records hold a page of
    /// documents each.</summary>
    public FakeJournal Journal { get; } = new();

    public FakeRangedContainer Target { get; }

    public MigrationConnection Connect() =>
        MigrationConnection.FromClient(Client, new ConnectionSettings { Endpoint = "https://fake.documents.azure.com/", Database = "db" });

    internal static ResponseMessage Response(HttpStatusCode status, JToken? body = null, string? etag = null, string? continuation = null)
    {
        var response = new ResponseMessage(status);
        if (body is not null)
        {
            response.Content = DocumentJson.ToStream(body);
        }

        response.Headers["x-ms-request-charge"] = "1";
        if (etag is not null)
        {
            response.Headers["etag"] = etag;
        }

        if (continuation is not null)
        {
            response.Headers["x-ms-continuation"] = continuation;
        }

        return response;
    }

    internal static JObject Read(Stream stream)
    {
        stream.Position = 0;
        return DocumentJson.ReadObject(stream)!;
    }
}

/// <summary>The tracking container: documents by id, each with an ETag that every write changes,
/// and If-Match honoured as the service does. (The journal container is one too.)</summary>
/// <summary>The journal container's records (<see cref="Records"/>, items by id as the tracking
/// container keeps them), and a view of them by document: how many documents have a before-image,
/// and each document's entry as it is stored in its record, with the record's scope (its
/// migration, container and step) beside it.</summary>
internal sealed class FakeJournal
{
    public FakeTrackingContainer Records { get; } = new("migrations-journal", "/pk");

    public string Id => Records.Id;

    public int Count => Entries().Count();

    public JObject? this[string id] => Entries().Where(e => (string?)e["id"] == id).Select(e => (JObject?)e).LastOrDefault();

    private IEnumerable<JObject> Entries() =>
        Records.All().OrderBy(r => (long?)r["seq"] ?? 0).SelectMany(record => CosmosMigrations.Journal.PageRecord.Entries(record).Select(entry =>
        {
            var json = new JObject { ["id"] = entry.Id, ["migration"] = record["migration"], ["container"] = record["container"], ["step"] = record["step"], ["key"] = entry.Key };
            if (entry.IsWhole)
            {
                json["document"] = entry.Document;
                json["afterHash"] = entry.AfterHash;
            }
            else
            {
                json["changes"] = entry.ChangesJson();
            }

            return json;
        }));
}

internal sealed class FakeTrackingContainer
{
    private readonly ConcurrentDictionary<string, (JObject Document, string ETag)> _items = new(StringComparer.Ordinal);
    private int _version;

    public FakeTrackingContainer(string id = "migrations", string partitionKeyPath = "/id")
    {
        Id = id;
        var c = Substitute.For<Container>();
        c.Id.Returns(Id);
        var properties = Substitute.For<ContainerResponse>();
        properties.Resource.Returns(new ContainerProperties(id, partitionKeyPath));
        c.ReadContainerAsync(Arg.Any<ContainerRequestOptions>(), Arg.Any<CancellationToken>()).Returns(Task.FromResult(properties));
        c.ReadItemStreamAsync(Arg.Any<string>(), Arg.Any<PartitionKey>(), Arg.Any<ItemRequestOptions>(), Arg.Any<CancellationToken>())
            .Returns(call => Task.FromResult(FailRead?.Invoke(call.ArgAt<string>(0)) == true ? FakeAccount.Response(HttpStatusCode.InternalServerError) : Read(call.ArgAt<string>(0))));
        c.GetItemQueryStreamIterator(Arg.Any<QueryDefinition>(), Arg.Any<string>(), Arg.Any<QueryRequestOptions>())
            .Returns(_ => new OnePageIterator(FakeAccount.Response(HttpStatusCode.OK, new JObject { ["Documents"] = new JArray(_items.Values.Select(i => i.Document.DeepClone())) })));
        c.CreateItemStreamAsync(Arg.Any<Stream>(), Arg.Any<PartitionKey>(), Arg.Any<ItemRequestOptions>(), Arg.Any<CancellationToken>())
            .Returns(call => Task.FromResult(Create(FakeAccount.Read(call.ArgAt<Stream>(0)))));
        c.ReplaceItemStreamAsync(Arg.Any<Stream>(), Arg.Any<string>(), Arg.Any<PartitionKey>(), Arg.Any<ItemRequestOptions>(), Arg.Any<CancellationToken>())
            .Returns(async call =>
            {
                var document = FakeAccount.Read(call.ArgAt<Stream>(0));
                if (BeforeReplace is { } hold)
                {
                    await hold();
                }

                return Replace(document, call.ArgAt<string>(1), call.ArgAt<ItemRequestOptions>(3)?.IfMatchEtag);
            });
        c.DeleteItemStreamAsync(Arg.Any<string>(), Arg.Any<PartitionKey>(), Arg.Any<ItemRequestOptions>(), Arg.Any<CancellationToken>())
            .Returns(call => Task.FromResult(Delete(call.ArgAt<string>(0), call.ArgAt<ItemRequestOptions>(2)?.IfMatchEtag)));
        c.PatchItemStreamAsync(Arg.Any<string>(), Arg.Any<PartitionKey>(), Arg.Any<IReadOnlyList<PatchOperation>>(), Arg.Any<PatchItemRequestOptions>(), Arg.Any<CancellationToken>())
            .Returns(call => Task.FromResult(Patch(call.ArgAt<string>(0), call.ArgAt<IReadOnlyList<PatchOperation>>(2), call.ArgAt<PatchItemRequestOptions>(3)?.FilterPredicate)));
        Container = c;
    }

    public string Id { get; }

    public Container Container { get; }

    public int Count => _items.Count;

    public JObject? this[string id] => _items.TryGetValue(id, out var item) ? (JObject)item.Document.DeepClone() : null;

    /// <summary>Called before each replace is applied (a test holds a write in flight with it).</summary>
    public Func<Task>? BeforeReplace { get; set; }

    /// <summary>Reads of the ids it selects answer 500 (a service failing).</summary>
    public Func<string, bool>? FailRead { get; set; }

    /// <summary>Every item, as stored.</summary>
    public IReadOnlyList<JObject> All()
    {
        lock (_items)
        {
            return _items.Values.Select(i => (JObject)i.Document.DeepClone()).ToList();
        }
    }

    /// <summary>Writes made through the container (creates, replaces and deletes that went through).</summary>
    public int Writes => Volatile.Read(ref _writes);

    /// <summary>Another process writes the document (a stop request, a takeover): a new ETag.</summary>
    public void Put(JObject document)
    {
        lock (_items)
        {
            var etag = NextETag();
            document["_etag"] = etag;
            _items[(string)document["id"]!] = (document, etag);
        }
    }

    /// <summary>Another process deletes the document (a reset).</summary>
    public void Remove(string id) => _items.TryRemove(id, out _);

    private int _writes;

    /// <summary>Patch with Set of top-level values only, and a filter predicate of the form
    /// <c>FROM c WHERE c.field = 'value'</c> (all the tracking store's lifecycle needs of it).</summary>
    private ResponseMessage Patch(string id, IReadOnlyList<PatchOperation> operations, string? filterPredicate)
    {
        lock (_items)
        {
            if (!_items.TryGetValue(id, out var current))
            {
                return FakeAccount.Response(HttpStatusCode.NotFound);
            }

            if (filterPredicate is not null)
            {
                var match = System.Text.RegularExpressions.Regex.Match(filterPredicate, @"^FROM c WHERE c\.(\w+) = '([^']*)'$");
                Assert.True(match.Success, $"the fake judges only simple conditions, not {filterPredicate}");
                if ((string?)current.Document[match.Groups[1].Value] != match.Groups[2].Value)
                {
                    return FakeAccount.Response(HttpStatusCode.PreconditionFailed);
                }
            }

            var document = (JObject)current.Document.DeepClone();
            foreach (var operation in operations)
            {
                Assert.True(operation.OperationType is PatchOperationType.Set or PatchOperationType.Increment, $"the fake patches with Set and Increment, not {operation.OperationType}");
                var value = JToken.FromObject(operation.GetType().GetProperty("Value")!.GetValue(operation)!);
                var segments = operation.Path.TrimStart('/').Split('/');
                var parent = document;
                foreach (var segment in segments.Take(segments.Length - 1))
                {
                    parent = parent[segment] as JObject ?? (JObject)(parent[segment] = new JObject());
                }

                var name = segments[^1];
                parent[name] = operation.OperationType == PatchOperationType.Increment
                    ? new JValue((parent[name]?.Value<double>() ?? 0) + value.Value<double>())
                    : value;
            }

            var etag = NextETag();
            document["_etag"] = etag;
            _items[id] = (document, etag);
            Interlocked.Increment(ref _writes);
            return FakeAccount.Response(HttpStatusCode.OK, document, etag);
        }
    }

    private ResponseMessage Delete(string id, string? ifMatch)
    {
        lock (_items)
        {
            if (!_items.TryGetValue(id, out var current))
            {
                return FakeAccount.Response(HttpStatusCode.NotFound);
            }

            if (ifMatch is not null && ifMatch != current.ETag)
            {
                return FakeAccount.Response(HttpStatusCode.PreconditionFailed);
            }

            _items.TryRemove(id, out _);
            Interlocked.Increment(ref _writes);
            return FakeAccount.Response(HttpStatusCode.NoContent);
        }
    }

    private string NextETag() => "\"" + Interlocked.Increment(ref _version) + "\"";

    private ResponseMessage Read(string id) =>
        _items.TryGetValue(id, out var item) ? FakeAccount.Response(HttpStatusCode.OK, item.Document, item.ETag) : FakeAccount.Response(HttpStatusCode.NotFound);

    private ResponseMessage Create(JObject document)
    {
        var etag = NextETag();
        document["_etag"] = etag;
        if (!_items.TryAdd((string)document["id"]!, (document, etag)))
        {
            return FakeAccount.Response(HttpStatusCode.Conflict);
        }

        Interlocked.Increment(ref _writes);
        return FakeAccount.Response(HttpStatusCode.Created, document, etag);
    }

    private ResponseMessage Replace(JObject document, string id, string? ifMatch)
    {
        lock (_items)
        {
            if (!_items.TryGetValue(id, out var current))
            {
                return FakeAccount.Response(HttpStatusCode.NotFound);
            }

            if (ifMatch is not null && ifMatch != current.ETag)
            {
                return FakeAccount.Response(HttpStatusCode.PreconditionFailed);
            }

            var etag = NextETag();
            document["_etag"] = etag;
            _items[id] = (document, etag);
            Interlocked.Increment(ref _writes);
            return FakeAccount.Response(HttpStatusCode.OK, document, etag);
        }
    }
}

/// <summary>A container whose documents lie in several feed ranges. A query over a range returns,
/// page by page, that range's documents that <see cref="Selects"/> (the scan's condition), from a
/// continuation token of the form <c>range:position</c>; a patch applies its Set operations. Every
/// call is recorded, so a test can see which range was read when and from where.</summary>
internal sealed class FakeRangedContainer
{
    private readonly List<JObject>[] _ranges;
    private readonly ConcurrentDictionary<string, int> _patches = new(StringComparer.Ordinal);

    public FakeRangedContainer(string id, int ranges, int documentsPerRange, Func<JObject, bool> selects)
    {
        Id = id;
        Selects = selects;
        _ranges = Enumerable.Range(0, ranges)
            .Select(r => Enumerable.Range(0, documentsPerRange).Select(i => new JObject { ["id"] = $"r{r}-{i:D4}", ["pk"] = $"p{r}", ["_etag"] = "\"1\"" }).ToList())
            .ToArray();
        FeedRanges = Enumerable.Range(0, ranges)
            .Select(r => FeedRange.FromJsonString($"{{\"Range\":{{\"min\":\"{r * 10:X2}\",\"max\":\"{(r + 1) * 10:X2}\"}}}}"))
            .ToList();

        var c = Substitute.For<Container>();
        c.Id.Returns(id);
        var response = Substitute.For<ContainerResponse>();
        response.Resource.Returns(new ContainerProperties(id, "/pk"));
        c.ReadContainerAsync(Arg.Any<ContainerRequestOptions>(), Arg.Any<CancellationToken>()).Returns(Task.FromResult(response));
        c.GetFeedRangesAsync(Arg.Any<CancellationToken>()).Returns(Task.FromResult<IReadOnlyList<FeedRange>>(FeedRanges));
        c.GetItemQueryStreamIterator(Arg.Any<FeedRange>(), Arg.Any<QueryDefinition>(), Arg.Any<string>(), Arg.Any<QueryRequestOptions>())
            .Returns(call => new RangeIterator(this, IndexOf(call.ArgAt<FeedRange>(0)), call.ArgAt<string>(2), call.ArgAt<QueryRequestOptions>(3)?.MaxItemCount ?? 100));
        // The runner's probe of its query (TOP 1) and its COUNT go to the whole container.
        c.GetItemQueryStreamIterator(Arg.Any<QueryDefinition>(), Arg.Any<string>(), Arg.Any<QueryRequestOptions>())
            .Returns(_ => new OnePageIterator(FakeAccount.Response(HttpStatusCode.OK, new JObject { ["Documents"] = new JArray(1) })));
        c.GetItemQueryIterator<long>(Arg.Any<QueryDefinition>(), Arg.Any<string>(), Arg.Any<QueryRequestOptions>())
            .Returns(_ => new CountIterator(_ranges.Sum(r => r.Count(Selects))));
        c.PatchItemStreamAsync(Arg.Any<string>(), Arg.Any<PartitionKey>(), Arg.Any<IReadOnlyList<PatchOperation>>(), Arg.Any<PatchItemRequestOptions>(), Arg.Any<CancellationToken>())
            .Returns(call => PatchAsync(call.ArgAt<string>(0), call.ArgAt<IReadOnlyList<PatchOperation>>(2)));
        Container = c;
    }

    public string Id { get; }

    public Container Container { get; }

    public IReadOnlyList<FeedRange> FeedRanges { get; }

    public Func<JObject, bool> Selects { get; }

    /// <summary>Each query over a range: (range, the continuation it started from).</summary>
    public ConcurrentQueue<(int Range, string? Continuation)> Queries { get; } = new();

    /// <summary>Called before each page is served (a test can hold a page back).</summary>
    public Func<int, int, Task>? BeforePage { get; set; }

    /// <summary>Called before each patch is applied.</summary>
    public Func<string, Task>? BeforePatch { get; set; }

    /// <summary>Answers 412 to the patch of these documents (their guard no longer holds: an
    /// application changed them between the scan and the write).</summary>
    public Func<string, bool>? RefusePatch { get; set; }

    public IReadOnlyDictionary<string, int> Patches => _patches;

    public IEnumerable<JObject> Documents => _ranges.SelectMany(r => r);

    public int DocumentCount => _ranges.Sum(r => r.Count);

    private int IndexOf(FeedRange range)
    {
        var json = range.ToJsonString();
        for (var i = 0; i < FeedRanges.Count; i++)
        {
            if (FeedRanges[i].ToJsonString() == json)
            {
                return i;
            }
        }

        throw new ArgumentException($"Unknown feed range {json}");
    }

    private async Task<ResponseMessage> PatchAsync(string id, IReadOnlyList<PatchOperation> operations)
    {
        if (BeforePatch is { } hook)
        {
            await hook(id).ConfigureAwait(false);
        }

        if (RefusePatch?.Invoke(id) == true)
        {
            return FakeAccount.Response(HttpStatusCode.PreconditionFailed);
        }

        var document = Documents.Single(d => (string?)d["id"] == id);
        lock (document)
        {
            foreach (var operation in operations)
            {
                var value = operation.GetType().GetProperty("Value")!.GetValue(operation);
                document[operation.Path.TrimStart('/')] = JToken.FromObject(value!);
            }
        }

        _patches.AddOrUpdate(id, 1, (_, n) => n + 1);
        return FakeAccount.Response(HttpStatusCode.OK);
    }

    private sealed class RangeIterator : FeedIterator
    {
        private readonly FakeRangedContainer _owner;
        private readonly int _range;
        private readonly int _pageSize;
        private int _position;

        public RangeIterator(FakeRangedContainer owner, int range, string? continuation, int pageSize)
        {
            _owner = owner;
            _range = range;
            _pageSize = pageSize;
            owner.Queries.Enqueue((range, continuation));
            if (continuation is not null)
            {
                var parts = continuation.Split(':');
                Assert.Equal(range.ToString(System.Globalization.CultureInfo.InvariantCulture), parts[0]);
                _position = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        public override bool HasMoreResults => _position < _owner._ranges[_range].Count;

        public override async Task<ResponseMessage> ReadNextAsync(CancellationToken cancellationToken = default)
        {
            if (_owner.BeforePage is { } hook)
            {
                await hook(_range, _position).ConfigureAwait(false);
            }

            var documents = _owner._ranges[_range];
            var page = new JArray();
            while (_position < documents.Count && page.Count < _pageSize)
            {
                var document = documents[_position++];
                lock (document)
                {
                    if (_owner.Selects(document))
                    {
                        page.Add(document.DeepClone());
                    }
                }
            }

            var continuation = _position < documents.Count ? $"{_range}:{_position}" : null;
            return FakeAccount.Response(HttpStatusCode.OK, new JObject { ["Documents"] = page }, continuation: continuation);
        }
    }

    private sealed class CountIterator : FeedIterator<long>
    {
        private long? _count;

        public CountIterator(long count) => _count = count;

        public override bool HasMoreResults => _count is not null;

        public override Task<FeedResponse<long>> ReadNextAsync(CancellationToken cancellationToken = default)
        {
            var response = Substitute.For<FeedResponse<long>>();
            var values = new List<long> { _count!.Value };
            response.GetEnumerator().Returns(_ => values.GetEnumerator());
            response.Count.Returns(1);
            response.RequestCharge.Returns(1);
            _count = null;
            return Task.FromResult(response);
        }
    }
}

/// <summary>A query the fakes answer in one page, then no more: the tracking container's listing
/// of every item (all the ledgers' listing needs of it), a ranged container's probe (TOP 1).</summary>
internal sealed class OnePageIterator : FeedIterator
{
    private ResponseMessage? _page;

    public OnePageIterator(ResponseMessage page) => _page = page;

    public override bool HasMoreResults => _page is not null;

    public override Task<ResponseMessage> ReadNextAsync(CancellationToken cancellationToken = default)
    {
        var page = _page!;
        _page = null;
        return Task.FromResult(page);
    }
}
