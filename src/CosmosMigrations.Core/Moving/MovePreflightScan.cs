using System.Diagnostics;
using System.Text;
using CosmosMigrations.Connection;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;
using CosmosMigrations.Scanning;

namespace CosmosMigrations.Moving;

/// <summary>What Test-ContainerMove is given.</summary>
internal sealed record MovePreflightOptions(string Container, IReadOnlyList<string> PartitionKey, string? Filter = null, double? MaxRUPerSecond = null,
    int PageSize = 500, int SampleSize = 5);

/// <summary>How far a preflight got: documents read of those counted, request units spent.</summary>
internal sealed record MovePreflightProgress(long Documents, long? Total, double RequestCharge, TimeSpan Elapsed);

/// <summary>Test-ContainerMove: reads the source once, page by page, under the RU budget, and writes
/// nothing. Memory stays flat: distinct keys in a HyperLogLog (16 KB), the heaviest keys in two
/// Space-Saving sketches (a thousand counters each), the (new key, id) pairs in a Bloom filter (at
/// most 64 MB) whose suspects are confirmed by a query each, so the collision count is exact.</summary>
internal static class MovePreflightScan
{
    /// <summary>The service's limit on one logical partition's storage.</summary>
    public const long LogicalPartitionLimitBytes = 20L * 1024 * 1024 * 1024;

    /// <summary>Share of the limit from which a key is a problem: it would have little room to grow.</summary>
    public const double ShareWarning = 0.8;

    private const int SketchCapacity = 1000;
    private const int MaxConfirmedGroups = 1_000_000;

    /// <summary>Request units of a write of 1 KB with the default indexing policy (the service's
    /// published order of magnitude: about 5 to 6); a write costs about that per KB.</summary>
    public const double WriteRequestUnitsPerKilobyte = 5.5;

    public static async Task<MovePreflight> RunAsync(MigrationConnection connection, MovePreflightOptions options, IProgress<MovePreflightProgress>? progress,
        Action<string>? log, CancellationToken cancellationToken)
    {
        var source = await connection.GetContainerAsync(options.Container, cancellationToken, refresh: true).ConfigureAwait(false);
        var properties = (await source.Container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        var sourcePaths = properties.PartitionKeyPaths is { Count: > 0 } ? properties.PartitionKeyPaths.ToList() : new List<string> { properties.PartitionKeyPath };
        var key = MoveKey.Parse(options.PartitionKey, sourcePaths);
        var filter = string.IsNullOrWhiteSpace(options.Filter) ? null : options.Filter!.Trim();
        Definitions.DefinitionParser.ValidateFilter(filter, options.Container);

        var gate = new RequestGate(4, options.MaxRUPerSecond);
        var sender = new ResilientSender(gate);
        var clock = Stopwatch.StartNew();
        var countQuery = filter is null ? "SELECT VALUE COUNT(1) FROM c" : $"SELECT VALUE COUNT(1) FROM c WHERE {filter}";
        var total = await DocumentCount.EstimateAsync(source, countQuery, filter, gate, log, cancellationToken).ConfigureAwait(false);

        var distinct = new DistinctCounter();
        var byBytes = new HeavyHitters(SketchCapacity);
        var byDocuments = new HeavyHitters(SketchCapacity);
        var pairs = new PairFilter(total ?? 1_000_000);
        var confirmed = new HashSet<ulong>();
        var collisionsExact = true;
        long documents = 0, bytes = 0, missing = 0, collisions = 0;
        var missingSamples = new List<string>();
        var collisionSamples = new List<string>();
        var scanCharge = 0.0;

        var query = new QueryDefinition(filter is null ? "SELECT * FROM c" : $"SELECT * FROM c WHERE {filter}");
        using (var reader = new PageReader(source.Container, null, query, null, options.PageSize, sender))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false) is { } page)
            {
                scanCharge = gate.TotalCharge;
                foreach (var document in page.Documents)
                {
                    var id = (string?)document["id"] ?? "";
                    var keyText = key.Describe(document);
                    var size = Encoding.UTF8.GetByteCount(document.ToString(Newtonsoft.Json.Formatting.None));
                    documents++;
                    bytes += size;
                    distinct.Add(StableHash.Of(keyText));
                    byBytes.Add(keyText, size);
                    byDocuments.Add(keyText, 1);
                    if (key.IsMissing(document))
                    {
                        missing++;
                        if (missingSamples.Count < options.SampleSize)
                        {
                            missingSamples.Add(id);
                        }
                    }

                    var pair = StableHash.Of(keyText + "\u0000" + id);
                    if (!pairs.Add(pair) || confirmed.Contains(pair))
                    {
                        continue;
                    }

                    // A suspect: the Bloom filter may err on the side of "seen". A query settles it.
                    var group = await CountSameIdAndKeyAsync(source, key, document, id, filter, sender, cancellationToken).ConfigureAwait(false);
                    if (group < 2)
                    {
                        continue;
                    }

                    if (confirmed.Count >= MaxConfirmedGroups)
                    {
                        collisionsExact = false;
                        continue;
                    }

                    confirmed.Add(pair);
                    collisions += group - 1;
                    if (collisionSamples.Count < options.SampleSize)
                    {
                        collisionSamples.Add($"{id} @ {keyText}");
                    }
                }

                progress?.Report(new MovePreflightProgress(documents, total, gate.TotalCharge, clock.Elapsed));
            }
        }

        var largest = LargestKeys(byBytes, byDocuments);
        var settings = MoveSettings.Describe(properties, key);
        var problems = new List<string>();
        if (collisions > 0)
        {
            problems.Add($"{collisions} document(s) repeat an id within one logical partition of {key} (e.g. {string.Join(", ", collisionSamples.Take(3))}): each would overwrite the other in the target. Make the ids unique per new key in the source first, or choose a key that includes the id (a hierarchical key ending in /id).");
        }

        if (missing > 0)
        {
            problems.Add($"{missing} document(s) have no value at {key} (e.g. {string.Join(", ", missingSamples.Take(3))}): they would all share the one logical partition of documents without a key. Backfill the key first (Invoke-Backfill -Filter 'NOT IS_DEFINED(…)'), or filter them out.");
        }

        foreach (var load in largest.Where(l => l.ShareOfLimit >= ShareWarning))
        {
            problems.Add($"The logical partition {load.Key} would hold {load.Bytes:N0} bytes, {load.ShareOfLimit:P0} of the 20 GB limit{(load.ShareOfLimit >= 1 ? ": the service would refuse writes to it (403, substatus 1014)" : ", leaving little room to grow")}. Choose a key with more values, or a hierarchical key.");
        }

        var (estimate, duration, basis) = await EstimateAsync(source, documents, bytes, scanCharge, options.MaxRUPerSecond, cancellationToken).ConfigureAwait(false);
        return new MovePreflight
        {
            Container = source.Name,
            SourcePartitionKey = sourcePaths,
            PartitionKey = key.Paths,
            Filter = filter,
            Documents = documents,
            Bytes = bytes,
            DistinctKeys = distinct.Count,
            DistinctKeysEstimated = distinct.Estimated,
            LargestKeys = largest,
            MissingKey = missing,
            MissingKeySampleIds = missingSamples,
            Collisions = collisions,
            CollisionSampleIds = collisionSamples,
            CollisionsExact = collisionsExact,
            Settings = settings,
            RequestCharge = Math.Round(gate.TotalCharge, 2),
            EstimatedRequestUnits = Math.Round(estimate),
            EstimatedDuration = duration,
            EstimateBasis = basis,
            Duration = clock.Elapsed,
            Problems = problems,
        };
    }

    /// <summary>The five heaviest keys by bytes and the five by documents, heaviest (bytes) first.</summary>
    internal static IReadOnlyList<MoveKeyLoad> LargestKeys(HeavyHitters byBytes, HeavyHitters byDocuments)
    {
        var documentsOf = byDocuments.Top(SketchCapacity).ToDictionary(k => k.Key, StringComparer.Ordinal);
        var bytesOf = byBytes.Top(SketchCapacity).ToDictionary(k => k.Key, StringComparer.Ordinal);
        var keys = byBytes.Top(5).Select(k => k.Key).Concat(byDocuments.Top(5).Select(k => k.Key)).Distinct(StringComparer.Ordinal);
        return keys.Select(k =>
            {
                var inBytes = bytesOf.TryGetValue(k, out var b) ? b : null;
                var inDocuments = documentsOf.TryGetValue(k, out var d) ? d : null;
                var bytes = inBytes?.Weight ?? 0;
                var docs = inDocuments?.Weight ?? inBytes?.Documents ?? 0;
                var estimated = byBytes.Estimated || byDocuments.Estimated || inBytes is null || inDocuments is null;
                return new MoveKeyLoad(k, docs, bytes, Math.Round((double)bytes / LogicalPartitionLimitBytes, 6), estimated, inBytes?.Error ?? 0);
            })
            .OrderByDescending(l => l.Bytes).ThenByDescending(l => l.Documents).ToList();
    }

    /// <summary>Documents with this id in this logical partition of the new key (under the filter).</summary>
    private static async Task<long> CountSameIdAndKeyAsync(TargetContainer source, MoveKey key, JObject document, string id, string? filter, ResilientSender sender,
        CancellationToken cancellationToken)
    {
        var (condition, parameters) = key.SameKeyCondition(document);
        var text = $"SELECT VALUE COUNT(1) FROM c WHERE c.id = @id AND {condition}" + (filter is null ? "" : $" AND ({filter})");
        var query = new QueryDefinition(text).WithParameter("@id", id);
        foreach (var (name, value) in parameters)
        {
            query = query.WithParameter(name, value);
        }

        return await DocumentCount.CountAsync(source, query, sender, new GiveUp("TransientFailuresExhausted", $"Checking whether id '{id}' repeats under the new key kept failing.",
            source.Name, "The service is throttling or unavailable: lower -MaxRUPerSecond or try again later."), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The copy's cost: each document read once from the change feed (about what this scan
    /// paid per document) and written once (about <see cref="WriteRequestUnitsPerKilobyte"/> RU per
    /// KB); its time at -MaxRUPerSecond, else at the source's provisioned throughput.</summary>
    private static async Task<(double Units, TimeSpan? Duration, string Basis)> EstimateAsync(TargetContainer source, long documents, long bytes, double scanCharge,
        double? budget, CancellationToken cancellationToken)
    {
        var readPerDocument = documents == 0 ? 0 : scanCharge / documents;
        var averageKilobytes = documents == 0 ? 0 : bytes / 1024.0 / documents;
        var writePerDocument = WriteRequestUnitsPerKilobyte * Math.Max(1, averageKilobytes);
        var units = documents * (readPerDocument + writePerDocument);
        var basis = $"{readPerDocument:0.##} RU/doc to read (as measured by this scan) + {writePerDocument:0.##} RU/doc to write ({averageKilobytes:0.##} KB a document, ~{WriteRequestUnitsPerKilobyte} RU/KB with the default indexing policy)";
        var rate = budget;
        if (rate is null)
        {
            try
            {
                var throughput = await source.Container.ReadThroughputAsync(new RequestOptions(), cancellationToken).ConfigureAwait(false);
                rate = throughput.Resource?.AutoscaleMaxThroughput ?? throughput.Resource?.Throughput;
                basis += rate is null ? "" : $", at the source's provisioned {rate:N0} RU/s";
            }
            catch (CosmosException ex) when (ex.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.BadRequest or HttpStatusCode.Forbidden)
            {
                // Shared database throughput or serverless: no rate of the container's own.
            }
        }
        else
        {
            basis += $", at -MaxRUPerSecond {rate:N0}";
        }

        if (rate is null)
        {
            basis += "; no time estimate (no provisioned throughput of the container's own: give -MaxRUPerSecond)";
        }

        return (units, rate is > 0 ? TimeSpan.FromSeconds(units / rate.Value) : null, basis);
    }
}
