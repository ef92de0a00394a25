using System.Text;
using System.Text.Json;
using Gatehouse.Server.Users;
using Gatehouse.Server.Users.Http;

namespace Gatehouse.Server.Tests;

/// <summary>
/// <see cref="UsersAnswer"/> writes the most frequent answer by hand, for speed. The SDKs read what the serializer
/// writes for <see cref="UsersResponse"/>, so the hand-written bytes must be exactly those, for every field and for
/// text that needs escaping; a field added to <see cref="UserView"/> and not to the writer fails here.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class UsersAnswerTests
{
    private static readonly DateTimeOffset Created = new DateTimeOffset(2026, 11, 30, 12, 34, 56, TimeSpan.FromHours(2)).AddTicks(1_234_567);
    private static readonly DateTimeOffset Updated = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    public static TheoryData<string> Users => ["plain", "no display name", "banned visitor", "text to escape", "every field set"];

    [Theory]
    [MemberData(nameof(Users))]
    public void The_hand_written_answer_is_byte_for_byte_the_serializers(string name)
    {
        var user = name switch
        {
            "plain" => UserView.Of(new User { Id = "6752b1c0a1b2c3d4e5f60718", NetworkId = "net", UserId = "alice", DisplayName = "Alice", CreatedAt = Created, UpdatedAt = Updated }),
            "no display name" => UserView.Of(new User { Id = "u1", NetworkId = "net", UserId = "bob", CreatedAt = Created, UpdatedAt = Created }),
            "banned visitor" => UserView.Of(new User
            {
                Id = "u2", NetworkId = "net", UserId = "visitor-1", Kind = UserKind.Visitor, IsGlobalBan = true, IsDeleted = true, CreatedAt = Updated, UpdatedAt = Updated,
            }),
            "text to escape" => UserView.Of(new User
            {
                Id = "u3", NetworkId = "net", UserId = "a\"b\\c/d<e>&'f\u0001", DisplayName = "Zoë 👩‍💻 </script>\n\u2028", CreatedAt = Created, UpdatedAt = Updated,
            }),
            _ => new UserView("u4", "net/user/u4", "carol", "Carol", new Dictionary<string, string> { ["team"] = "blue", ["é"] = "<b>" }, ["admin", "moderator"], ["ban"],
                3, "hash", "file-1", false, true, true, "bot", Created, Updated),
        };

        var expected = JsonSerializer.Serialize(new UsersResponse([user], []), UserJson.Default.UsersResponse);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
            UsersAnswer.Write(json, user);

        Assert.Equal(expected, Encoding.UTF8.GetString(buffer.ToArray()));
    }

    [Fact]
    public void Timestamps_are_UTC_with_milliseconds_truncated_and_a_trailing_Z()
    {
        var random = new Random(20261201);
        var times = new List<DateTimeOffset>
        {
            Created, Updated, DateTimeOffset.UnixEpoch, new(1, 1, 1, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(9999, 12, 31, 23, 59, 59, TimeSpan.Zero).AddTicks(9_999_999),
            new DateTimeOffset(2027, 1, 1, 0, 30, 0, TimeSpan.FromHours(5.5)).AddTicks(9_999),
        };
        for (var i = 0; i < 1000; i++)
            times.Add(new DateTimeOffset(random.NextInt64(DateTime.MinValue.Ticks + TimeSpan.TicksPerDay, DateTime.MaxValue.Ticks - TimeSpan.TicksPerDay), TimeSpan.FromMinutes(random.Next(-14 * 60, 14 * 60))));

        foreach (var time in times)
        {
            var written = JsonSerializer.Serialize(new AuthTokens.Http.AuthTokenResponse("t", time), AuthTokens.Http.AuthTokenJson.Default.AuthTokenResponse);
            Assert.Equal($"{{\"authToken\":\"t\",\"expiresAt\":\"{time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture)}\"}}", written);
        }
    }
}
