namespace CosmosMigrations.Moving;

/// <summary>A Bloom filter over 64-bit hashes: "seen before?" answered with no false negatives and,
/// at the size chosen for the expected count, about 0.05 % false positives, in at most
/// <see cref="MaxBytes"/> of memory whatever the count (past that, false positives grow and only
/// cost more confirmations). The k probes are derived from the hash's two halves (Kirsch and
/// Mitzenmacher).</summary>
internal sealed class PairFilter
{
    /// <summary>The memory ceiling: 64 MB.</summary>
    public const long MaxBytes = 64L * 1024 * 1024;

    private const int BitsPerItem = 16;
    private const int Probes = 11;

    private readonly ulong[] _words;
    private readonly ulong _bits;

    public PairFilter(long expectedItems)
    {
        var bits = Math.Clamp(Math.Max(1, expectedItems) * BitsPerItem, 1L << 16, MaxBytes * 8);
        _words = new ulong[(bits + 63) / 64];
        _bits = (ulong)_words.Length * 64;
    }

    public long SizeBytes => _words.LongLength * 8;

    /// <summary>Adds the hash; true when it may have been added before (every probe was set).</summary>
    public bool Add(ulong hash)
    {
        var first = hash & 0xFFFFFFFF;
        var second = (hash >> 32) | 1;
        var seen = true;
        for (ulong i = 0; i < Probes; i++)
        {
            var bit = (first + i * second) % _bits;
            ref var word = ref _words[bit >> 6];
            var mask = 1UL << (int)(bit & 63);
            if ((word & mask) == 0)
            {
                seen = false;
                word |= mask;
            }
        }

        return seen;
    }
}
