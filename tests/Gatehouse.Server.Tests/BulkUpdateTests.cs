using System.Data.Common;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// The session writer ends sessions, claims refresh tokens and renews sessions through <see cref="BulkUpdate"/>, which
/// writes without EF. What it writes must be what EF would (a time stored in another form would no longer compare), it must skip the
/// rows already claimed and count only those it changed (the writer detects another node's claim by that count), and
/// the caches must learn of the write when, and only when, its transaction commits, for the sessions it names alone.
/// </summary>
public abstract class BulkUpdateTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    protected static readonly DateTimeOffset Opened = new(2026, 12, 2, 6, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Ended = Opened.AddTicks(1_234_567);
    private static readonly string[] SessionsTable = ["Sessions"];

    /// <summary>
    /// Whole milliseconds, which every provider stores exactly (SQLite's binary converter and PostgreSQL's microseconds
    /// both drop the last ticks), so the row read back can be compared with the value written.
    /// </summary>
    private static readonly DateTimeOffset Renewed = Opened.AddMilliseconds(4_321);

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
        var claimed = sessions[1].Id;
        var bystander = Bystander(keys);
        var before = writes.VersionOf(SessionsTable, "Sessions", claimed);
        var bystanderBefore = writes.VersionOf(SessionsTable, "Sessions", bystander);
        await using (var transaction = await db.Database.BeginTransactionAsync())
        {
            changed = await EndAsync(db, keys);
            Assert.Equal(before, writes.VersionOf(SessionsTable, "Sessions", claimed));
            await transaction.CommitAsync();
        }
        Assert.True(writes.VersionOf(SessionsTable, "Sessions", claimed) > before, "the committed claim was not counted for the caches");
        // Named by id: a session the claim did not name stays current in the caches (on PostgreSQL, the notification
        // the claim sent back to this node names the same rows).
        await Task.Delay(server.UsesSqlite ? 0 : 300);
        Assert.Equal(bystanderBefore, writes.VersionOf(SessionsTable, "Sessions", bystander));

        Assert.Equal(147, changed);
        Assert.Equal(147, await db.Sessions.CountAsync(s => s.UserRef == user.Id && s.RevokedAt == Ended && s.RevokedReason == "bulk"));
        Assert.Equal(3, await db.Sessions.CountAsync(s => s.UserRef == user.Id && s.RevokedAt == Opened && s.RevokedReason == "earlier"));
        await using (var again = await db.Database.BeginTransactionAsync())
        {
            Assert.Equal(0, await EndAsync(db, keys));
        }
    }

    [SkippableFact]
    public async Task Writes_each_rows_own_values_to_the_listed_columns_alone_and_counts_the_rows_it_found()
    {
        var network = await server.CreateNetworkAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var user = new User { Id = Secrets.NewId(Opened), NetworkId = network.Id, UserId = "bulk-renew", CreatedAt = Opened, UpdatedAt = Opened };
        db.Users.Add(user);
        var sessions = Enumerable.Range(0, 100).Select(i => new Session
        {
            Id = Guid.CreateVersion7(Opened.AddMilliseconds(i)),
            NetworkId = network.Id,
            UserRef = user.Id,
            DeviceId = $"device-{i}",
            DeviceKind = "ios",
            CreatedAt = Opened,
            ExpiresAt = Opened.AddHours(1),
        }).ToList();
        db.Sessions.AddRange(sessions);
        await db.SaveChangesAsync();
        db.ChangeTracker.Clear();

        foreach (var (session, i) in sessions.Select((s, i) => (s, i)))
        {
            session.LastRefreshedAt = Renewed.AddSeconds(i);
            session.LastRefreshedFrom = i % 2 == 0 ? $"203.0.113.{i}" : null;
            session.ExpiresAt = Renewed.AddHours(1).AddSeconds(i);
            // Not among the columns written.
            session.RevokedReason = "not written";
        }
        var unknown = new Session { Id = Guid.NewGuid(), NetworkId = network.Id, UserRef = user.Id, DeviceId = "none", CreatedAt = Opened, ExpiresAt = Opened };
        var writes = server.Services.GetRequiredService<CommittedWrites>();
        var bystander = Bystander([.. sessions.Select(s => (object)s.Id), unknown.Id]);
        // On PostgreSQL nothing counts until the node listens (a fresh server may not yet): every version reads Unknown.
        for (var waited = 0; !writes.HearsOtherWriters && waited < 100; waited++)
            await Task.Delay(100);
        Assert.True(writes.HearsOtherWriters, "the node did not start listening within 10 s");
        var before = writes.VersionOf(SessionsTable, "Sessions", sessions[42].Id);
        var bystanderBefore = writes.VersionOf(SessionsTable, "Sessions", bystander);
        int changed;
        await using (var transaction = await db.Database.BeginTransactionAsync())
        {
            // Listed twice: the later row's values are the ones written, and the row counts once.
            var earlier = new Session { Id = sessions[0].Id, NetworkId = network.Id, UserRef = user.Id, DeviceId = "earlier", CreatedAt = Opened, ExpiresAt = Opened };
            changed = await BulkUpdate.UpdateAsync(db, [earlier, .. sessions, unknown], nameof(Session.Id),
                [nameof(Session.LastRefreshedAt), nameof(Session.LastRefreshedFrom), nameof(Session.ExpiresAt)]);
            await transaction.CommitAsync();
        }
        Assert.True(writes.VersionOf(SessionsTable, "Sessions", sessions[42].Id) > before, "a renewed session was not counted for the caches");
        await Task.Delay(server.UsesSqlite ? 0 : 300);
        Assert.Equal(bystanderBefore, writes.VersionOf(SessionsTable, "Sessions", bystander));

        Assert.Equal(100, changed);
        var stored = await db.Sessions.AsNoTracking().Where(s => s.UserRef == user.Id).OrderBy(s => s.Id).ToListAsync();
        Assert.Equal(100, stored.Count);
        Assert.All(stored.Select((s, i) => (s, i)), x =>
        {
            Assert.Equal(Renewed.AddSeconds(x.i), x.s.LastRefreshedAt);
            Assert.Equal(x.i % 2 == 0 ? $"203.0.113.{x.i}" : null, x.s.LastRefreshedFrom);
            Assert.Equal(Renewed.AddHours(1).AddSeconds(x.i), x.s.ExpiresAt);
            Assert.Null(x.s.RevokedReason);
        });
        // What EF looks up by the written values finds them.
        Assert.Equal(1, await db.Sessions.CountAsync(s => s.UserRef == user.Id && s.ExpiresAt == Renewed.AddHours(1).AddSeconds(42)));
    }

    /// <summary>A session id whose count no written key shares: its caches' entry must stay current.</summary>
    private static Guid Bystander(IReadOnlyCollection<object> written)
    {
        var taken = written.Select(CommittedWrites.Stripe).ToHashSet();
        var id = Guid.NewGuid();
        while (taken.Contains(CommittedWrites.Stripe(id)))
            id = Guid.NewGuid();
        return id;
    }

    protected TServer Server => server;

    private static Task<int> EndAsync(GatehouseDb db, IReadOnlyCollection<object> keys) =>
        BulkUpdate.ClaimAsync<Session>(db, nameof(Session.Id), keys, nameof(Session.RevokedAt),
            [(nameof(Session.RevokedAt), Ended), (nameof(Session.RevokedReason), "bulk")]);
}

[Trait(Category.Name, Category.Fast)]
public sealed class BulkUpdateTestsOnSqlite(SqliteServer server) : BulkUpdateTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class BulkUpdateTestsOnPostgres(PostgresServer server) : BulkUpdateTests<PostgresServer>(server)
{
    /// <summary>PostgreSQL only: SQLite does not enforce a column's length (the API refuses long input before it is stored).</summary>
    [SkippableFact]
    public async Task A_value_too_long_for_its_column_is_refused_not_cut_to_fit()
    {
        var network = await Server.CreateNetworkAsync();
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var user = new User { Id = Secrets.NewId(Opened), NetworkId = network.Id, UserId = "bulk-too-long", CreatedAt = Opened, UpdatedAt = Opened };
        var session = new Session { Id = Guid.CreateVersion7(Opened), NetworkId = network.Id, UserRef = user.Id, DeviceId = "d", CreatedAt = Opened, ExpiresAt = Opened.AddHours(1) };
        db.AddRange(user, session);
        await db.SaveChangesAsync();
        db.ChangeTracker.Clear();
        var maxLength = db.Model.FindEntityType(typeof(Session))!.FindProperty(nameof(Session.LastRefreshedFrom))!.GetMaxLength()!.Value;
        session.LastRefreshedFrom = new string('7', maxLength + 1);

        await using (await db.Database.BeginTransactionAsync())
        {
            var refused = await Assert.ThrowsAnyAsync<DbException>(() => BulkUpdate.UpdateAsync(db, [session], nameof(Session.Id), [nameof(Session.LastRefreshedFrom)]));
            Assert.Equal("22001", refused.SqlState); // string_data_right_truncation
        }
        Assert.Null((await db.Sessions.AsNoTracking().SingleAsync(s => s.Id == session.Id)).LastRefreshedFrom);
    }
}
