using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace CosmosMigrations.Moving;

/// <summary>A 64-bit hash that is the same in every process and on every machine (the sketches and
/// the digest compare values computed by different runs): the first 8 bytes of SHA-256, whose bits
/// are uniform, as a HyperLogLog and a Bloom filter need, and whose collisions are as rare as 64
/// bits allow.</summary>
internal static class StableHash
{
    public static ulong Of(string text)
    {
        var length = Encoding.UTF8.GetMaxByteCount(text.Length);
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var written = Encoding.UTF8.GetBytes(text, 0, text.Length, rented, 0);
            return Of(rented.AsSpan(0, written));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public static ulong Of(ReadOnlySpan<byte> bytes)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(bytes, digest);
        return BinaryPrimitives.ReadUInt64LittleEndian(digest);
    }
}
