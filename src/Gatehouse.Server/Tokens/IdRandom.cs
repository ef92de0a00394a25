using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Gatehouse.Server.Tokens;

/// <summary>
/// Random bytes for identifiers (an auth token's <c>jti</c>, a session's, a user's and a network's id), from the OS
/// CSPRNG a block at a time: each call into it costs OpenSSL's generator set-up and a <c>getpid</c> system call (its
/// fork check), once per mint when each id drew its own (docs/benchmarks.md, change 55), and
/// <see cref="Guid.CreateVersion7(DateTimeOffset)"/> costs a <c>read</c> of <c>/dev/urandom</c> per id (change 74).
/// Each thread keeps its own block, and bytes handed out are wiped from it, so no two ids share a byte and none stays
/// in the block after use. For ids, not secrets: a secret draws its own.
/// </summary>
internal static class IdRandom
{
    private const int BlockLength = 512;

    [ThreadStatic] private static byte[]? _block;

    /// <summary>Bytes of <see cref="_block"/> not yet handed out, at its end.</summary>
    [ThreadStatic] private static int _left;

    public static void Fill(Span<byte> destination)
    {
        if (destination.Length > BlockLength)
        {
            RandomNumberGenerator.Fill(destination);
            return;
        }
        var block = _block ??= new byte[BlockLength];
        if (_left < destination.Length)
        {
            RandomNumberGenerator.Fill(block);
            _left = BlockLength;
        }
        var drawn = block.AsSpan(BlockLength - _left, destination.Length);
        drawn.CopyTo(destination);
        CryptographicOperations.ZeroMemory(drawn);
        _left -= destination.Length;
    }

    /// <summary>
    /// A version 7 UUID (RFC 9562, section 5.7), as <see cref="Guid.CreateVersion7(DateTimeOffset)"/> makes it: the
    /// time in milliseconds since the Unix epoch in the first 48 bits, big-endian, so ids of later rows sort after
    /// earlier ones as text and as PostgreSQL's <c>uuid</c>; then the version, 74 random bits and the variant.
    /// </summary>
    public static Guid Version7(DateTimeOffset createdAt)
    {
        var milliseconds = createdAt.ToUnixTimeMilliseconds();
        if (milliseconds < 0)
            throw new ArgumentOutOfRangeException(nameof(createdAt), createdAt, "A version 7 UUID holds no time before 1970.");
        Span<byte> uuid = stackalloc byte[16];
        // unix_ts_ms is the first 6 bytes; the 8-byte write's last two are overwritten by the random ones.
        BinaryPrimitives.WriteInt64BigEndian(uuid, milliseconds << 16);
        Fill(uuid[6..]);
        // ver (the high nibble of byte 6) is 7; var (the top two bits of byte 8) is 10.
        uuid[6] = (byte)(0x70 | (uuid[6] & 0x0F));
        uuid[8] = (byte)(0x80 | (uuid[8] & 0x3F));
        return new Guid(uuid, bigEndian: true);
    }
}
