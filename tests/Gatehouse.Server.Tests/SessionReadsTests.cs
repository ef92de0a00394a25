using System.Text.Json;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Gatehouse.Server.Tests;

/// <summary>
/// The bearer check reads a session with its user without EF: on SQLite by a prepared statement on connections of its
/// own (<see cref="SqliteSessionReads"/>), on PostgreSQL with the checks that arrive together in one statement
/// (<see cref="PostgresSessionReads"/>). What each reads must be what EF's query finds, for every kind of row the
/// check judges (ended, banned, deleted, a bot, a visitor, no display name), a change must show at the next read, and
/// reads in parallel must each get their own row; on PostgreSQL, checks that arrive while a read is in flight share
/// statements, and fail with it in an outage.
/// </summary>
public abstract class SessionReadsTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    /// <summary>SQLite keeps a time's offset and must read it back; PostgreSQL stores instants and takes only UTC ones.</summary>
    protected virtual TimeSpan StoredOffset => TimeSpan.Zero;

    private DateTimeOffset Opened => new(2026, 12, 2, 6, 0, 0, StoredOffset);

    protected TServer Server => server;

    /// <summary>The provider's reads, and what ends them.</summary>
    private protected abstract (Func<Guid, Task<SessionState?>> Read, Action Close) OpenReads(GatehouseDb db);

    [SkippableFact]
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

        var (read, close) = OpenReads(db);
        try
        {
            var ids = sessions.Select(s => s.Id).Append(Guid.NewGuid()).ToList();
            foreach (var id in ids)
                Assert.Equal(await ReadWithEfAsync(db, id), Describe(await read(id)));
            foreach (var (session, user) in sessions.Zip(new[] { named, named, banned, deleted, visitor }))
            {
                var state = (await read(session.Id))!;
                Assert.Equal((user.Kind, user.IsGlobalBan, user.IsDeleted, session.RevokedAt), (state.User.Kind, state.User.IsGlobalBan, state.User.IsDeleted, state.RevokedAt));
            }
            Assert.Null(await read(ids[^1]));
            Assert.Equal("Ada Ł. 🛡", (await read(sessions[0].Id))!.User.DisplayName);

            await db.Sessions.Where(s => s.Id == sessions[0].Id).ExecuteUpdateAsync(s => s.SetProperty(x => x.RevokedAt, Opened.AddHours(1)));
            await db.Users.Where(u => u.Id == named.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.DisplayName, (string?)null));
            var changed = (await read(sessions[0].Id))!;
            Assert.Equal(Opened.AddHours(1), changed.RevokedAt);
            Assert.Null(changed.User.DisplayName);

            var expected = new Dictionary<Guid, string>();
            foreach (var id in ids)
                expected[id] = await ReadWithEfAsync(db, id);
            await Parallel.ForAsync(0, 400, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
            {
                var id = ids[i % ids.Count];
                Assert.Equal(expected[id], Describe(await read(id)));
            });
            // All at once, each unknown id its own (on PostgreSQL they may pile up beyond one statement; the tests below
            // make sure they do).
            var unknown = Enumerable.Range(0, 3 * PostgresSessionReads.MostPerRead).Select(_ => Guid.NewGuid()).ToList();
            var many = unknown.Concat(Enumerable.Range(0, 300).Select(i => ids[i % ids.Count])).ToList();
            var answers = await Task.WhenAll(many.Select(id => Task.Run(() => read(id))));
            Assert.All(many.Zip(answers), pair =>
                Assert.Equal(expected.TryGetValue(pair.First, out var row) ? row : "none", Describe(pair.Second)));
        }
        finally
        {
            close();
        }
    }

    private protected User NewUser(string networkId, int index, string userId, UserKind kind, bool banned, bool deleted, string? displayName) => new()
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

    private protected Session NewSession(User user, int index, DateTimeOffset? revokedAt) => new()
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

    /// <summary>The read both providers made through EF before.</summary>
    private static async Task<string> ReadWithEfAsync(GatehouseDb db, Guid id) =>
        Describe(await db.Sessions.AsNoTracking().Where(s => s.Id == id)
            .Join(db.Users, s => s.UserRef, u => u.Id, (s, u) => new SessionState(s.NetworkId, s.RevokedAt, s.CreatedAt, u))
            .FirstOrDefaultAsync());

    /// <summary>Every value the check can see, the user's included (records compare their user by reference).</summary>
    private static string Describe(SessionState? state) =>
        state is null ? "none" : JsonSerializer.Serialize(new { state.NetworkId, state.RevokedAt, state.CreatedAt, state.User });
}

[Trait(Category.Name, Category.Fast)]
public sealed class SessionReadsTestsOnSqlite(SqliteServer server) : SessionReadsTests<SqliteServer>(server)
{
    protected override TimeSpan StoredOffset => TimeSpan.FromHours(2);

    private protected override (Func<Guid, Task<SessionState?>> Read, Action Close) OpenReads(GatehouseDb db)
    {
        var reads = new SqliteSessionReads(db);
        return (id => Task.FromResult(reads.Read(id)), reads.Dispose);
    }
}

[Trait(Category.Name, Category.Postgres)]
public sealed class SessionReadsTestsOnPostgres(PostgresServer server) : SessionReadsTests<PostgresServer>(server)
{
    private protected override (Func<Guid, Task<SessionState?>> Read, Action Close) OpenReads(GatehouseDb db)
    {
        var reads = new PostgresSessionReads(db);
        return (id => reads.ReadAsync(id, CancellationToken.None), () => { });
    }

    /// <summary>
    /// While a read waits (here for a lock on the table), the checks that arrive wait for it and then go together:
    /// more than one statement takes go in as few statements as they fill, each check answered with its own row.
    /// </summary>
    [SkippableFact]
    public async Task Checks_that_arrive_while_a_read_waits_share_statements_and_each_gets_its_own_row()
    {
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var sessions = await SeedAsync(db);
        var reads = new PostgresSessionReads(db, ReadsUnderTest(db));
        var ids = sessions.Select(s => s.Id).ToList();
        var many = Enumerable.Range(0, 2 * PostgresSessionReads.MostPerRead + 10)
            .Select(i => i % 4 == 0 ? Guid.NewGuid() : ids[i % ids.Count]).ToList();

        Task<SessionState?> first;
        List<Task<SessionState?>> queued;
        await using (await LockSessionsAsync(db))
        {
            first = reads.ReadAsync(ids[0], CancellationToken.None);
            await WaitingForTheLockAsync(db);
            queued = many.Select(id => reads.ReadAsync(id, CancellationToken.None)).ToList();
            Assert.False(first.IsCompleted, "the first read ended while the table was locked");
        }

        Assert.Equal(sessions[0].DeviceId, DeviceOf((await first.WaitAsync(TimeSpan.FromSeconds(30)))!, sessions));
        var answers = await Task.WhenAll(queued).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(many.Zip(answers), pair =>
        {
            if (ids.Contains(pair.First))
                Assert.Equal(sessions.Single(s => s.Id == pair.First).DeviceId, DeviceOf(pair.Second!, sessions));
            else
                Assert.Null(pair.Second);
        });
        // The first read, then the checks that waited, in statements of at most MostPerRead: 256, 256 and 10.
        Assert.Equal(4, reads.ReadsStarted);
    }

    /// <summary>
    /// A read whose connection the database ends (as a restart does) fails as an outage (a 503), and the checks that
    /// waited behind it fail with it at once instead of each waiting out a read of its own; a check whose request went
    /// away stops waiting at once; the next check reads again.
    /// </summary>
    [SkippableFact]
    public async Task In_an_outage_the_checks_waiting_fail_with_the_read_a_cancelled_one_stops_at_once_and_the_next_reads_again()
    {
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var sessions = await SeedAsync(db);
        var reads = new PostgresSessionReads(db, ReadsUnderTest(db));
        await using (await LockSessionsAsync(db))
        {
            var first = reads.ReadAsync(sessions[0].Id, CancellationToken.None);
            await WaitingForTheLockAsync(db);
            using var leaving = new CancellationTokenSource();
            var cancelled = reads.ReadAsync(sessions[1].Id, leaving.Token);
            var queued = Enumerable.Range(0, 40).Select(i => reads.ReadAsync(sessions[i % sessions.Count].Id, CancellationToken.None)).ToList();
            leaving.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(TimeSpan.FromSeconds(5)));
            Assert.False(first.IsCompleted, "the first read ended while the table was locked");

            // As a restart does: the database ends the read's connection.
            await using (var connection = await ConnectAsync(db))
            {
                await using var end = new NpgsqlCommand(
                    $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {WaitingRead}", connection);
                await end.ExecuteNonQueryAsync();
            }
            var failure = await Assert.ThrowsAnyAsync<Exception>(() => first.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.True(DatabaseOutage.Is(failure), $"not an outage: {failure}");
            foreach (var check in queued)
            {
                var failed = await Assert.ThrowsAnyAsync<Exception>(() => check.WaitAsync(TimeSpan.FromSeconds(5)));
                Assert.True(DatabaseOutage.Is(failed), $"not an outage: {failed}");
            }
            Assert.Equal(1, reads.ReadsStarted);
        }

        var again = await reads.ReadAsync(sessions[1].Id, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(sessions[1].DeviceId, DeviceOf(again!, sessions));
        Assert.Equal(2, reads.ReadsStarted);
    }

    private async Task<List<Session>> SeedAsync(GatehouseDb db)
    {
        var network = await Server.CreateNetworkAsync();
        var users = Enumerable.Range(0, 3)
            .Select(i => NewUser(network.Id, i, $"waiting-{i}", UserKind.SignedIn, banned: false, deleted: false, $"Waiting {i}")).ToList();
        db.Users.AddRange(users);
        var sessions = Enumerable.Range(0, 6).Select(i => NewSession(users[i % users.Count], i, revokedAt: null)).ToList();
        db.Sessions.AddRange(sessions);
        await db.SaveChangesAsync();
        return sessions;
    }

    /// <summary>A connection (outside the pool) whose transaction holds the sessions table against every read until it closes.</summary>
    private static async Task<NpgsqlConnection> LockSessionsAsync(GatehouseDb db)
    {
        var connection = await ConnectAsync(db);
        await using (var begin = new NpgsqlCommand("""BEGIN; LOCK TABLE "Sessions" IN ACCESS EXCLUSIVE MODE""", connection))
            await begin.ExecuteNonQueryAsync();
        return connection;
    }

    /// <summary>
    /// The reads under test, on a pool of their own and named so that no other backend waiting for a lock (the
    /// server's own work, autovacuum) is taken for them; with timeouts a loaded machine does not reach while the test
    /// holds the lock.
    /// </summary>
    private static string ReadsUnderTest(GatehouseDb db) => new NpgsqlConnectionStringBuilder(db.Database.GetConnectionString())
    {
        ApplicationName = "session-reads-test",
        CommandTimeout = 30,
        Timeout = 15,
    }.ConnectionString;

    private const string WaitingRead = "application_name = 'session-reads-test' AND wait_event_type = 'Lock'";

    /// <summary>
    /// Until the read under test waits for a lock. Asked on a connection of its own, outside any transaction: in
    /// one, PostgreSQL answers from the activity it saw first.
    /// </summary>
    private static async Task WaitingForTheLockAsync(GatehouseDb db)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        await using var connection = await ConnectAsync(db);
        await using var waiting = new NpgsqlCommand(
            $"SELECT count(*) FROM pg_stat_activity WHERE {WaitingRead}", connection);
        while ((long)(await waiting.ExecuteScalarAsync())! == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "no read waited for the lock");
            await Task.Delay(10);
        }
    }

    private static async Task<NpgsqlConnection> ConnectAsync(GatehouseDb db)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(db.Database.GetConnectionString()) { Pooling = false, Timeout = 15 }.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>Which seeded session a read is, by its user and its opening (PostgreSQL keeps microseconds, not ticks).</summary>
    private static string DeviceOf(SessionState state, List<Session> sessions) =>
        sessions.Single(s => s.UserRef == state.User.Id && Math.Abs((s.CreatedAt - state.CreatedAt).TotalMilliseconds) < 1).DeviceId;
}
