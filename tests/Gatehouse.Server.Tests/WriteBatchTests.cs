using Gatehouse.Server.Audit;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// The session writer queues a group's writes and sends them together (<see cref="WriteBatch"/>; on PostgreSQL one
/// round trip). They must run in the order queued, each reporting the rows it changed, and a claim that finds a row
/// another node claimed first must fail the flush, so the group is written again one change at a time.
/// </summary>
public abstract class WriteBatchTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    private static readonly DateTimeOffset Opened = new(2026, 12, 6, 8, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Ended = Opened.AddMinutes(5);

    [SkippableFact]
    public async Task Queued_writes_run_in_order_in_one_flush_each_counting_its_own_rows_and_a_second_flush_runs_nothing_again()
    {
        var network = await server.CreateNetworkAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var user = NewUser(network, "batched");
        // More sessions than one PostgreSQL statement claims: the first claim is two statements of the batch.
        var sessions = Enumerable.Range(0, 70).Select(i => NewSession(network, user, $"device-{i:d2}")).ToList();
        var renewed = sessions[^1];
        renewed.LastRefreshedAt = Ended;
        renewed.LastRefreshedFrom = "203.0.113.9";

        await using (var transaction = await db.Database.BeginTransactionAsync())
        {
            var batch = new WriteBatch(db);
            batch.Insert([user], sessions);
            // The rows exist only once the insert before them has run; a key listed twice is claimed once.
            batch.Claim<Session>(nameof(Session.Id), [.. sessions.SkipLast(1).Select(s => (object)s.Id), sessions[0].Id], nameof(Session.RevokedAt),
                [(nameof(Session.RevokedAt), Ended), (nameof(Session.RevokedReason), "batched")], conflict: "not expected");
            batch.Update([renewed], nameof(Session.Id), [nameof(Session.LastRefreshedAt), nameof(Session.LastRefreshedFrom)]);
            // Claims only what the claim before it left: the first session is ended already.
            batch.Claim<Session>(nameof(Session.Id), [sessions[0].Id, renewed.Id], nameof(Session.RevokedAt),
                [(nameof(Session.RevokedAt), Ended), (nameof(Session.RevokedReason), "later")]);

            var changed = await batch.FlushAsync();
            Assert.Equal([71, 69, 1, 1], changed);
            Assert.Empty(await batch.FlushAsync());
            await transaction.CommitAsync();
        }

        var stored = await db.Sessions.AsNoTracking().Where(s => s.UserRef == user.Id).OrderBy(s => s.DeviceId).ToListAsync();
        Assert.Equal([.. Enumerable.Repeat("batched", 69), "later"], stored.Select(s => s.RevokedReason));
        Assert.All(stored, s => Assert.Equal(Ended, s.RevokedAt));
        Assert.Equal(Ended, stored[^1].LastRefreshedAt);
        Assert.Equal("203.0.113.9", stored[^1].LastRefreshedFrom);
        Assert.Null(stored[0].LastRefreshedAt);
    }

    [SkippableFact]
    public async Task A_claim_that_finds_a_row_claimed_first_fails_the_flush_with_its_conflict_and_the_rollback_keeps_nothing()
    {
        var network = await server.CreateNetworkAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var user = NewUser(network, "raced");
        var claimedFirst = NewSession(network, user, "device-taken");
        claimedFirst.RevokedAt = Opened;
        claimedFirst.RevokedReason = "another node";
        var live = NewSession(network, user, "device-live");
        db.AddRange(user, claimedFirst, live);
        await db.SaveChangesAsync();
        db.ChangeTracker.Clear();
        var audit = new[] { new AuditEvent { Kind = "session.revoked", Outcome = "success", Actor = user.UserId, NetworkId = network.Id, OccurredAt = Ended } };

        await using (var transaction = await db.Database.BeginTransactionAsync())
        {
            var batch = new WriteBatch(db);
            batch.Claim<Session>(nameof(Session.Id), [claimedFirst.Id, live.Id], nameof(Session.RevokedAt),
                [(nameof(Session.RevokedAt), Ended), (nameof(Session.RevokedReason), "logout")], conflict: "a session was ended elsewhere");
            batch.Insert(audit);

            var conflict = await Assert.ThrowsAsync<DbUpdateConcurrencyException>(() => batch.FlushAsync());
            Assert.Equal("a session was ended elsewhere", conflict.Message);
            await transaction.RollbackAsync();
        }

        var stored = await db.Sessions.AsNoTracking().Where(s => s.UserRef == user.Id).ToDictionaryAsync(s => s.DeviceId);
        Assert.Equal("another node", stored["device-taken"].RevokedReason);
        Assert.Null(stored["device-live"].RevokedAt);
        Assert.False(await db.AuditEvents.AnyAsync(e => e.NetworkId == network.Id && e.Kind == "session.revoked"));
    }

    private static User NewUser(TestNetwork network, string userId) =>
        new() { Id = Secrets.NewId(Opened), NetworkId = network.Id, UserId = userId, CreatedAt = Opened, UpdatedAt = Opened };

    private static Session NewSession(TestNetwork network, User user, string deviceId) => new()
    {
        Id = Guid.CreateVersion7(Opened),
        NetworkId = network.Id,
        UserRef = user.Id,
        DeviceId = deviceId,
        CreatedAt = Opened,
        ExpiresAt = Opened.AddHours(1),
    };
}

[Trait(Category.Name, Category.Fast)]
public sealed class WriteBatchTestsOnSqlite(SqliteServer server) : WriteBatchTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class WriteBatchTestsOnPostgres(PostgresServer server) : WriteBatchTests<PostgresServer>(server);
