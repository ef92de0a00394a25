using System.Buffers;
using System.Buffers.Text;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.Server.Tokens;

/// <summary>
/// Opaque secrets (server keys, refresh tokens): 256 bits from the OS CSPRNG, a prefix that secret scanners
/// recognise, and a SHA-256 digest that is all the database ever holds. A fast hash is right here because
/// the input is already full-entropy: there is nothing for a slow hash to protect against.
/// </summary>
internal static class Secrets
{
    public static string Create(string prefix) => prefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    /// <summary>
    /// The digest's hex string is the only allocation: every credential check digests what was presented, and the
    /// two arrays this took, with the two <see cref="DigestsEqual"/> took, were a tenth of a mint's garbage
    /// (docs/benchmarks.md, change 61). The secret's bytes are wiped once hashed.
    /// </summary>
    public static string Digest(string secret)
    {
        const int OnStack = 1024;
        var most = Encoding.UTF8.GetMaxByteCount(secret.Length);
        var rented = most > OnStack ? ArrayPool<byte>.Shared.Rent(most) : null;
        Span<byte> utf8 = rented is null ? stackalloc byte[OnStack] : rented;
        var written = Encoding.UTF8.GetBytes(secret, utf8);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(utf8[..written], hash);
        CryptographicOperations.ZeroMemory(utf8[..written]);
        if (rented is not null)
            ArrayPool<byte>.Shared.Return(rented);
        return Convert.ToHexStringLower(hash);
    }

    /// <summary>Compares two digests without an early exit, so timing says nothing about how much matched.</summary>
    public static bool DigestsEqual(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(MemoryMarshal.AsBytes(a.AsSpan()), MemoryMarshal.AsBytes(b.AsSpan()));

    /// <summary>
    /// Identifiers shaped like the hosted product's MongoDB ObjectIds (24 hex characters, the first 8 the creation
    /// time in seconds, big-endian): new rows land at the end of every index keyed by them instead of on a random
    /// page, so a burst of sign-ups writes a few pages rather than one per user (docs/benchmarks.md). The other
    /// 64 bits are random (<see cref="IdRandom"/>); an identifier is never a secret.
    /// </summary>
    public static string NewId(DateTimeOffset createdAt)
    {
        Span<byte> id = stackalloc byte[12];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(id, (uint)createdAt.ToUnixTimeSeconds());
        IdRandom.Fill(id[4..]);
        return Convert.ToHexStringLower(id);
    }
}
