using Gatehouse.Server.Tokens;

namespace Gatehouse.Server.Tests;

[Trait(Category.Name, Category.Fast)]
public sealed class IdRandomTests
{
    [Fact]
    public void Ids_drawn_across_many_blocks_never_repeat_and_are_never_left_zero()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        Span<byte> id = stackalloc byte[16];
        // 2,000 ids of 16 bytes span more than 60 blocks of 512: a block reused, or handed out twice, repeats an id.
        for (var i = 0; i < 2_000; i++)
        {
            IdRandom.Fill(id);
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
            IdRandom.Fill(odd);
            Assert.True(seen.Add(Convert.ToHexString(odd)));
        }
        IdRandom.Fill(large);
        // 4 KB of CSPRNG output with a run of 64 zero bytes left unfilled would show here.
        Assert.DoesNotContain(Enumerable.Range(0, large.Length / 64), chunk => large.AsSpan(chunk * 64, 64).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void A_version_7_id_carries_its_time_version_and_variant_as_the_framework_writes_them()
    {
        var at = DateTimeOffset.FromUnixTimeMilliseconds(1_796_000_123_456);
        var id = IdRandom.Version7(at);
        var framework = Guid.CreateVersion7(at);

        Assert.Equal(7, id.Version);
        // The RFC 9562 variant is the top two bits, 10; the two below them are random (Variant shows all four).
        Assert.Equal(0b10, id.Variant >> 2);
        // The time, then the version digit: the first 13 hex digits are the framework's for the same millisecond.
        Assert.Equal(framework.ToString("N")[..13], id.ToString("N")[..13]);
        Assert.Equal(at.ToUnixTimeMilliseconds(), Convert.ToInt64(id.ToString("N")[..12], 16));
    }

    [Fact]
    public void Version_7_ids_never_repeat_and_a_later_millisecond_sorts_after_an_earlier_one_as_text()
    {
        var start = DateTimeOffset.FromUnixTimeMilliseconds(1_796_000_000_000);
        var ids = Enumerable.Range(0, 3_000).Select(i => (At: i / 3, Id: IdRandom.Version7(start.AddMilliseconds(i / 3)))).ToList();

        Assert.Equal(ids.Count, ids.Select(x => x.Id).Distinct().Count());
        // Three ids share each millisecond, in random order among themselves; across milliseconds the text order is
        // the time order (SQLite compares the stored text, PostgreSQL the uuid's bytes in the same order).
        var sorted = ids.OrderBy(x => x.Id.ToString(), StringComparer.Ordinal).Select(x => x.At).ToList();
        Assert.Equal(ids.Select(x => x.At).ToList(), sorted);
    }

    [Fact]
    public void A_time_before_1970_is_refused_as_the_framework_refuses_it()
    {
        var before = DateTimeOffset.FromUnixTimeMilliseconds(-1);
        Assert.Throws<ArgumentOutOfRangeException>(() => Guid.CreateVersion7(before));
        Assert.Throws<ArgumentOutOfRangeException>(() => IdRandom.Version7(before));
    }

    [Fact]
    public void Every_one_of_a_version_7_ids_74_random_bits_takes_both_values()
    {
        var at = DateTimeOffset.FromUnixTimeMilliseconds(1_796_000_123_456);
        Span<byte> bytes = stackalloc byte[16];
        var ones = new byte[16];
        var zeros = new byte[16];
        for (var i = 0; i < 200; i++)
        {
            Assert.True(IdRandom.Version7(at).TryWriteBytes(bytes, bigEndian: true, out _));
            for (var b = 0; b < 16; b++)
            {
                ones[b] |= bytes[b];
                zeros[b] |= (byte)~bytes[b];
            }
        }
        // Time (bytes 0-5), version and variant are fixed: each fixed bit is seen as one value only. Every other bit,
        // over 200 ids, is seen as both (a bit left unfilled fails; a stuck one by chance has odds of 2^-199).
        var random = Enumerable.Repeat((byte)0xFF, 16).ToArray();
        random.AsSpan(0, 6).Clear();
        random[6] = 0x0F;
        random[8] = 0x3F;
        for (var b = 0; b < 16; b++)
        {
            Assert.Equal(random[b], (byte)(ones[b] & zeros[b]));
        }
    }

    [Fact]
    public void An_object_id_is_24_lowercase_hex_digits_led_by_its_creation_second()
    {
        var at = DateTimeOffset.FromUnixTimeSeconds(1_796_000_123);
        var ids = Enumerable.Range(0, 500).Select(_ => Secrets.NewId(at)).ToList();

        Assert.All(ids, id => Assert.Matches("^[0-9a-f]{24}$", id));
        Assert.All(ids, id => Assert.Equal(at.ToUnixTimeSeconds(), Convert.ToInt64(id[..8], 16)));
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
    }
}
