using BenchmarkDotNet.Attributes;
using Gatehouse.Server.Tokens;

namespace Gatehouse.Bench.Micro;

/// <summary>
/// What a verified-token cache lookup pays to find its key (change 70): a token's SHA-256 against the string hash
/// the cache used when it was keyed by the token's text. The token is an access token's length.
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class TokenDigestBenchmarks
{
    private readonly string _token = new string('h', 100) + "." + new string('p', 438) + "." + new string('s', 86);

    [Benchmark(Baseline = true, Description = "the token's string hash")]
    public int StringHash() => _token.GetHashCode(StringComparison.Ordinal);

    [Benchmark(Description = "the token's digest")]
    public ulong Digest() => TokenDigest.Of(_token)!.Value.A;
}
