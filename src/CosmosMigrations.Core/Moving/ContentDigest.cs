using CosmosMigrations.Documents;

namespace CosmosMigrations.Moving;

/// <summary>An order-independent digest of a container's user content: the count of documents and
/// the sum (mod 2^64) of each document's 64-bit hash. Two containers read in any order, in pages of
/// any size, by any number of ranges, give the same digest exactly when (up to a 2^-64 chance) they
/// hold the same documents. A document's hash is that of its canonical form (<see cref="CanonicalJson"/>).</summary>
internal sealed class ContentDigest : IEquatable<ContentDigest>
{
    public long Documents { get; private set; }

    public ulong Sum { get; private set; }

    public void Add(JObject document)
    {
        Documents++;
        Sum += HashOf(document);
    }

    /// <summary>Adds another digest's documents (digests of ranges add up to the container's).</summary>
    public void Add(ContentDigest other)
    {
        Documents += other.Documents;
        Sum += other.Sum;
    }

    public static ulong HashOf(JObject document) => StableHash.Of(CanonicalJson.Of(document));

    public bool Equals(ContentDigest? other) => other is not null && other.Documents == Documents && other.Sum == Sum;

    public override bool Equals(object? obj) => Equals(obj as ContentDigest);

    public override int GetHashCode() => HashCode.Combine(Documents, Sum);

    /// <summary>As the tracking document and the verification show it: count and sum in hex.</summary>
    public override string ToString() => $"{Documents}:{Sum:x16}";
}
