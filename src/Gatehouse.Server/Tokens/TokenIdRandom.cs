using System.Security.Cryptography;

namespace Gatehouse.Server.Tokens;

/// <summary>
/// Random bytes for token ids (an auth token's <c>jti</c>), from the OS CSPRNG a block at a time: each call into it
/// costs OpenSSL's generator set-up and a <c>getpid</c> system call (its fork check), once per mint when each id drew
/// its own (docs/benchmarks.md, change 55). Each thread keeps its own block, and bytes handed out are wiped from it,
/// so no two ids share a byte and none stays in memory after use. For ids, not secrets: a secret draws its own.
/// </summary>
internal static class TokenIdRandom
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
}
