using System.Buffers.Text;
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

    public static string Digest(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>Compares two digests without an early exit, so timing says nothing about how much matched.</summary>
    public static bool DigestsEqual(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));

    /// <summary>
    /// Identifiers shaped like the hosted product's MongoDB ObjectIds (24 hex characters, the first 8 the creation
    /// time in seconds, big-endian): new rows land at the end of every index keyed by them instead of on a random
    /// page, so a burst of sign-ups writes a few pages rather than one per user (docs/benchmarks.md). The other
    /// 64 bits are random; an identifier is never a secret.
    /// </summary>
    public static string NewId(DateTimeOffset createdAt)
    {
        Span<byte> id = stackalloc byte[12];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(id, (uint)createdAt.ToUnixTimeSeconds());
        RandomNumberGenerator.Fill(id[4..]);
        return Convert.ToHexStringLower(id);
    }
}
