using System.Text.Json;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// On SQLite the bearer check reads a session with its user without EF (<see cref="SqliteSessionReads"/>). What it
/// reads must be what EF's read (which PostgreSQL uses) finds, for every kind of row the check judges (ended, banned,
/// deleted, a bot, a visitor, no display name), a change must show at the next read, and reads in parallel must each
/// get their own row.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class SqliteSessionReadsTests(SqliteServer server) : IClassFixture<SqliteServer>
{
    private static readonly DateTimeOffset Opened = new(2026, 12, 2, 6, 0, 0, TimeSpan.FromHours(2));

    [Fact]
    public async Task Reads_what_EF_reads_sees_a_change_at_the_next_read_and_answers_parallel_reads_each_with_its_own_row()
    {
        var network = await server.CreateNetworkAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var named = NewUser(network.Id, 0, "reader-ada", UserKind.SignedIn, banned: false, deleted: false, "Ada Ł. 🛡");
        // Each flag the check judges set alone, so that reading one column for another cannot pass.
        var banned = NewUser(network.Id, 1, "reader-banned", UserKind.SignedIn, banned: true, deleted: false, "Banned");
        var deleted = NewUser(network.Id, 2, "reader-bot", UserKind.Bot, banned: false, deleted: true, displayName: null);
        var visitor = NewUser(network.Id, 3, "reader-visitor", UserKind.Visitor, banned: false, deleted: false, displayName: null);
        db.Users.AddRange(named, banned, deleted, visitor);
        var sessions = new[]
        {
            NewSession(named, 0, revokedAt: null),
            NewSession(named, 1, revokedAt: Opened.AddMinutes(5).AddMilliseconds(250)),
            NewSession(banned, 2, revokedAt: null),
            NewSession(deleted, 3, revokedAt: null),
            NewSession(visitor, 4, revokedAt: null),
        };
        db.Sessions.AddRange(sessions);
        await db.SaveChangesAsync();

        using var reads = new SqliteSessionReads(db);
        var ids = sessions.Select(s => s.Id).Append(Guid.NewGuid()).ToList();
        foreach (var id in ids)
            Assert.Equal(await ReadWithEfAsync(db, id), Describe(reads.Read(id)));
        foreach (var (session, user) in sessions.Zip(new[] { named, named, banned, deleted, visitor }))
        {
            var read = reads.Read(session.Id)!;
            Assert.Equal((user.Kind, user.IsGlobalBan, user.IsDeleted, session.RevokedAt), (read.User.Kind, read.User.IsGlobalBan, read.User.IsDeleted, read.RevokedAt));
        }
        Assert.Null(reads.Read(ids[^1]));
        Assert.Equal("Ada Ł. 🛡", reads.Read(sessions[0].Id)!.User.DisplayName);

        await db.Sessions.Where(s => s.Id == sessions[0].Id).ExecuteUpdateAsync(s => s.SetProperty(x => x.RevokedAt, Opened.AddHours(1)));
        await db.Users.Where(u => u.Id == named.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.DisplayName, (string?)null));
        var changed = reads.Read(sessions[0].Id)!;
        Assert.Equal(Opened.AddHours(1), changed.RevokedAt);
        Assert.Null(changed.User.DisplayName);

        var expected = new Dictionary<Guid, string>();
        foreach (var id in ids)
            expected[id] = await ReadWithEfAsync(db, id);
        await Parallel.ForAsync(0, 400, new ParallelOptions { MaxDegreeOfParallelism = 16 }, (i, _) =>
        {
            var id = ids[i % ids.Count];
            Assert.Equal(expected[id], Describe(reads.Read(id)));
            return ValueTask.CompletedTask;
        });
    }

    private static User NewUser(string networkId, int index, string userId, UserKind kind, bool banned, bool deleted, string? displayName) => new()
    {
        Id = Secrets.NewId(Opened.AddSeconds(index)),
        NetworkId = networkId,
        UserId = userId,
        DisplayName = displayName,
        Kind = kind,
        IsGlobalBan = banned,
        IsDeleted = deleted,
        CreatedAt = Opened.AddDays(-index),
        UpdatedAt = Opened.AddTicks(1_234_567 * (index + 1)),
    };

    private static Session NewSession(User user, int index, DateTimeOffset? revokedAt) => new()
    {
        Id = Guid.CreateVersion7(Opened.AddMilliseconds(index)),
        NetworkId = user.NetworkId,
        UserRef = user.Id,
        DeviceId = $"reader-device-{index}",
        CreatedAt = Opened.AddMinutes(index).AddTicks(index * 31),
        ExpiresAt = Opened.AddHours(1),
        RevokedAt = revokedAt,
        RevokedReason = revokedAt is null ? null : "logout",
    };

    /// <summary>The read PostgreSQL uses, and SQLite did before.</summary>
    private static async Task<string> ReadWithEfAsync(GatehouseDb db, Guid id) =>
        Describe(await SessionAccess.SessionWithUser.RunAsync(db, id, CancellationToken.None));

    /// <summary>Every value the check can see, the user's included (records compare their user by reference).</summary>
    private static string Describe(SessionState? state) =>
        state is null ? "none" : JsonSerializer.Serialize(new { state.NetworkId, state.RevokedAt, state.CreatedAt, state.User });
}
