namespace CosmosMigrations.Moving;

/// <summary>What Test-ContainerMove found: whether a container (or the part -Filter selects) can move
/// to a new partition key, what it would cost, and what stands in the way.</summary>
public sealed class MovePreflight
{
    public string Container { get; init; } = "";

    /// <summary>The source's partition key paths.</summary>
    public IReadOnlyList<string> SourcePartitionKey { get; init; } = Array.Empty<string>();

    /// <summary>The new partition key paths.</summary>
    public IReadOnlyList<string> PartitionKey { get; init; } = Array.Empty<string>();

    public string? Filter { get; init; }

    /// <summary>Documents read (exact).</summary>
    public long Documents { get; init; }

    /// <summary>Their JSON size as read, in bytes (exact; the 20 GB limit also counts index overhead).</summary>
    public long Bytes { get; init; }

    /// <summary>Logical partitions of the new key: exact up to 4,096, a HyperLogLog estimate beyond (±0.8 %).</summary>
    public long DistinctKeys { get; init; }

    public bool DistinctKeysEstimated { get; init; }

    /// <summary>The heaviest logical partitions of the new key, by bytes and by documents.</summary>
    public IReadOnlyList<MoveKeyLoad> LargestKeys { get; init; } = Array.Empty<MoveKeyLoad>();

    /// <summary>Documents without a value of the new key (they would share one logical partition).</summary>
    public long MissingKey { get; init; }

    public IReadOnlyList<string> MissingKeySampleIds { get; init; } = Array.Empty<string>();

    /// <summary>Documents whose id repeats within one logical partition of the new key: each
    /// beyond the first of its group would be refused (409). Exact: every suspect the filter
    /// flags is confirmed by a query.</summary>
    public long Collisions { get; init; }

    /// <summary>Ids that collide, with the new key they share ("id @ [key]").</summary>
    public IReadOnlyList<string> CollisionSampleIds { get; init; } = Array.Empty<string>();

    /// <summary>False only past a million colliding groups (then the count is a lower bound).</summary>
    public bool CollisionsExact { get; init; } = true;

    /// <summary>Every setting of the source: what the target gets, and what not and why.</summary>
    public IReadOnlyList<MoveSetting> Settings { get; init; } = Array.Empty<MoveSetting>();

    /// <summary>Request units this preflight spent (as the service charged them).</summary>
    public double RequestCharge { get; init; }

    /// <summary>Request units the copy is expected to cost (reading the change feed and writing the target).</summary>
    public double EstimatedRequestUnits { get; init; }

    /// <summary>How long the copy would take at the rate of <see cref="EstimateBasis"/>; null without a rate.</summary>
    public TimeSpan? EstimatedDuration { get; init; }

    /// <summary>How the estimate was made.</summary>
    public string EstimateBasis { get; init; } = "";

    public TimeSpan Duration { get; init; }

    /// <summary>What stands in the way of the move, one sentence each.</summary>
    public IReadOnlyList<string> Problems { get; init; } = Array.Empty<string>();

    public bool Ready => Problems.Count == 0;
}

/// <summary>A logical partition of the new key: its documents and bytes, and its share of the
/// service's 20 GB limit for one logical partition. Estimated: the counts are Space-Saving's (bytes
/// at most <see cref="BytesError"/> too high, documents a lower bound).</summary>
public sealed record MoveKeyLoad(string Key, long Documents, long Bytes, double ShareOfLimit, bool Estimated, long BytesError = 0);
