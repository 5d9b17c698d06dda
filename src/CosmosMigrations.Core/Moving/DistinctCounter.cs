using System.Numerics;

namespace CosmosMigrations.Moving;

/// <summary>Counts distinct values in fixed memory (HyperLogLog, 2^14 registers of one byte: 16 KB,
/// a standard error of about 0.8 %). Below a few thousand values it is exact: the values' hashes are
/// kept in a set until it holds <see cref="ExactLimit"/>, then the registers take over.</summary>
internal sealed class DistinctCounter
{
    private const int Precision = 14;
    private const int RegisterCount = 1 << Precision;

    /// <summary>How many distinct hashes are counted exactly before the estimate takes over.</summary>
    public const int ExactLimit = 4096;

    private readonly byte[] _registers = new byte[RegisterCount];
    private HashSet<ulong>? _exact = new();

    /// <summary>False while the count is exact (every hash still held).</summary>
    public bool Estimated => _exact is null;

    public void Add(ulong hash)
    {
        var index = (int)(hash >> (64 - Precision));
        // The rank of the first 1 bit in the remaining 50 bits (1-based), as HyperLogLog defines it.
        var rest = (hash << Precision) | (1UL << (Precision - 1));
        var rank = (byte)(BitOperations.LeadingZeroCount(rest) + 1);
        if (rank > _registers[index])
        {
            _registers[index] = rank;
        }

        if (_exact is not null)
        {
            _exact.Add(hash);
            if (_exact.Count > ExactLimit)
            {
                _exact = null;
            }
        }
    }

    public long Count
    {
        get
        {
            if (_exact is not null)
            {
                return _exact.Count;
            }

            double sum = 0;
            var zeros = 0;
            foreach (var register in _registers)
            {
                sum += Math.Pow(2, -register);
                if (register == 0)
                {
                    zeros++;
                }
            }

            var alpha = 0.7213 / (1 + 1.079 / RegisterCount);
            var estimate = alpha * RegisterCount * RegisterCount / sum;
            if (estimate <= 2.5 * RegisterCount && zeros > 0)
            {
                // Small ranges: linear counting is the better estimate (Flajolet et al.).
                estimate = RegisterCount * Math.Log((double)RegisterCount / zeros);
            }

            return (long)Math.Round(estimate);
        }
    }
}
