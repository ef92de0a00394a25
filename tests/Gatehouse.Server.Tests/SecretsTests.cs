using System.Security.Cryptography;
using System.Text;
using Gatehouse.Server.Tokens;

namespace Gatehouse.Server.Tests;

/// <summary>The digests already stored must keep matching: the same SHA-256 hex for every secret, short or long.</summary>
[Trait(Category.Name, Category.Fast)]
public sealed class SecretsTests
{
    /// <summary>"aé€😀" is 5 UTF-16 characters and 10 UTF-8 bytes; up to 68 of them are hashed from the stack, more from a rented buffer.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(68)]
    [InlineData(69)]
    [InlineData(1000)]
    public void A_digest_is_the_sha256_of_the_secrets_utf8(int repeats)
    {
        var secret = string.Concat(Enumerable.Repeat("aé€😀", repeats));

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret))), Secrets.Digest(secret));
    }

    [Fact]
    public void A_known_digest_is_unchanged() =>
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Secrets.Digest("abc"));

    [Fact]
    public void Digests_are_equal_only_when_every_character_is()
    {
        var digest = Secrets.Digest("sk_one");

        Assert.True(Secrets.DigestsEqual(digest, Secrets.Digest("sk_one")));
        Assert.False(Secrets.DigestsEqual(digest, Secrets.Digest("sk_two")));
        Assert.False(Secrets.DigestsEqual(digest, digest[..^1] + (digest[^1] == '0' ? '1' : '0')));
        Assert.False(Secrets.DigestsEqual(digest, digest[..^1]));
    }
}
