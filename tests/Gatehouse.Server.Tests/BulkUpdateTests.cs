using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// The session writer ends sessions and claims refresh tokens through <see cref="BulkUpdate"/>, which writes without
/// EF. What it writes must be what EF would (a time stored in another form would no longer compare), it must skip the
/// rows already claimed and count only those it changed (the writer detects another node's claim by that count), and
/// the caches must learn of the write when, and only when, its transaction commits.
/// </summary>
public abstract class BulkUpdateTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    private static readonly DateTimeOffset Opened = new(2026, 12, 2, 6, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Ended = Opened.AddTicks(1_234_567);
    private static readonly string[] SessionsTable = ["Sessions"];

    [SkippableFact]
    public async Task Claims_every_listed_row_not_claimed_yet_stores_values_EF_finds_and_counts_the_table_once_committed()
    {
        var network = await server.CreateNetworkAsync();
        var writes = server.Services.GetRequiredService<CommittedWrites>();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var user = new User { Id = Secrets.NewId(Opened), NetworkId = network.Id, UserId = "bulk-update", CreatedAt = Opened, UpdatedAt = Opened };
        db.Users.Add(user);
        // More sessions than one server statement takes, so PostgreSQL's side runs in several.
        var sessions = Enumerable.Range(0, 150).Select(i => new Session
        {
            Id = Guid.CreateVersion7(Opened.AddMilliseconds(i)),
            NetworkId = network.Id,
            UserRef = user.Id,
            DeviceId = $"device-{i}",
            CreatedAt = Opened,
            ExpiresAt = Opened.AddHours(1),
            RevokedAt = i % 50 == 0 ? Opened : null,
            RevokedReason = i % 50 == 0 ? "earlier" : null,
        }).ToList();
        db.Sessions.AddRange(sessions);
        await db.SaveChangesAsync();
        db.ChangeTracker.Clear();
        var keys = sessions.Select(s => (object)s.Id).Append(Guid.NewGuid()).ToList();

        await using (var rolledBack = await db.Database.BeginTransactionAsync())
        {
            Assert.Equal(147, await EndAsync(db, keys));
        }
        Assert.Equal(3, await db.Sessions.CountAsync(s => s.UserRef == user.Id && s.RevokedAt != null));

        int changed;
        var before = writes.VersionOf(SessionsTable);
        await using (var transaction = await db.Database.BeginTransactionAsync())
        {
            changed = await EndAsync(db, keys);
            Assert.Equal(before, writes.VersionOf(SessionsTable));
            await transaction.CommitAsync();
        }
        Assert.True(writes.VersionOf(SessionsTable) > before, "the committed claim was not counted for the caches");

        Assert.Equal(147, changed);
        Assert.Equal(147, await db.Sessions.CountAsync(s => s.UserRef == user.Id && s.RevokedAt == Ended && s.RevokedReason == "bulk"));
        Assert.Equal(3, await db.Sessions.CountAsync(s => s.UserRef == user.Id && s.RevokedAt == Opened && s.RevokedReason == "earlier"));
        await using (var again = await db.Database.BeginTransactionAsync())
        {
            Assert.Equal(0, await EndAsync(db, keys));
        }
    }

    private static Task<int> EndAsync(GatehouseDb db, IReadOnlyCollection<object> keys) =>
        BulkUpdate.ClaimAsync<Session>(db, nameof(Session.Id), keys, nameof(Session.RevokedAt),
            [(nameof(Session.RevokedAt), Ended), (nameof(Session.RevokedReason), "bulk")]);
}

[Trait(Category.Name, Category.Fast)]
public sealed class BulkUpdateTestsOnSqlite(SqliteServer server) : BulkUpdateTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class BulkUpdateTestsOnPostgres(PostgresServer server) : BulkUpdateTests<PostgresServer>(server);
