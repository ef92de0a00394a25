using Gatehouse.Server.Tokens;

namespace Gatehouse.Server.Tests;

[Trait(Category.Name, Category.Fast)]
public sealed class TokenIdRandomTests
{
    [Fact]
    public void Ids_drawn_across_many_blocks_never_repeat_and_are_never_left_zero()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        Span<byte> id = stackalloc byte[16];
        // 2,000 ids of 16 bytes span more than 60 blocks of 512: a block reused, or handed out twice, repeats an id.
        for (var i = 0; i < 2_000; i++)
        {
            TokenIdRandom.Fill(id);
            Assert.True(seen.Add(Convert.ToHexString(id)));
            Assert.True(id.IndexOfAnyExcept((byte)0) >= 0);
        }
    }

    [Fact]
    public void Draws_of_uneven_and_oversized_lengths_are_filled_whole()
    {
        var odd = new byte[7];
        var large = new byte[4096];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 200; i++)
        {
            TokenIdRandom.Fill(odd);
            Assert.True(seen.Add(Convert.ToHexString(odd)));
        }
        TokenIdRandom.Fill(large);
        // 4 KB of CSPRNG output with a run of 64 zero bytes left unfilled would show here.
        Assert.DoesNotContain(Enumerable.Range(0, large.Length / 64), chunk => large.AsSpan(chunk * 64, 64).IndexOfAnyExcept((byte)0) < 0);
    }
}
