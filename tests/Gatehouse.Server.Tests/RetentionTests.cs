using System.Net.Http.Json;
using Gatehouse.Server.Audit;
using Gatehouse.Server.AuthTokens;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Retention;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using static Gatehouse.Server.Tests.OtherNode;

namespace Gatehouse.Server.Tests;

/// <summary>
/// The retention service on a server of its own (its clock jumps by months); its background pass is off, so each test
/// runs one pass at a known moment.
/// </summary>
public abstract class RetentionTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    protected TServer Server => server;

    [SkippableFact]
    public async Task Ended_sessions_spent_refresh_tokens_and_old_audit_events_go_and_nothing_live_does()
    {
        var network = await server.CreateNetworkAsync();
        var loggedOut = await server.LoginAsync(network, "out", "device-out");
        using (await server.LogoutAsync(loggedOut["accessToken"]!.GetValue<string>()))
        {
        }
        var live = await server.LoginAsync(network, "live", "device-live");
        var spent = live["refreshToken"]!.GetValue<string>();
        using var refreshed = await server.RefreshAsync(network, spent);
        var current = (await refreshed.Content.ReadFromJsonAsync<System.Text.Json.Nodes.JsonNode>())!["refreshToken"]!.GetValue<string>();
        var (spentDigest, currentDigest) = (Secrets.Digest(spent), Secrets.Digest(current));
        await server.FlushAuditAsync();
        var oldestAudit = await CountAsync(db => db.AuditEvents.CountAsync());

        // A month later: the logged-out session (and its refresh token) goes; the live one and every audit event stay.
        server.Clock.Advance(TimeSpan.FromDays(31));
        var month = await PruneAsync();
        Assert.True(month.Sessions >= 1, $"sessions deleted: {month.Sessions}");
        Assert.False(await CountAsync(db => db.Sessions.AnyAsync(s => s.NetworkId == network.Id && s.RevokedAt != null)));
        Assert.Equal(2, await CountAsync(db => db.RefreshTokens.CountAsync(r => r.Digest == spentDigest || r.Digest == currentDigest)));
        Assert.True(await CountAsync(db => db.AuditEvents.CountAsync()) >= oldestAudit);

        // Ten weeks after the refresh: the spent refresh token is past its expiry by more than a week and goes; the
        // session itself is still within its absolute lifetime, so it stays (its current token has expired too).
        server.Clock.Advance(TimeSpan.FromDays(40));
        await PruneAsync();
        Assert.Equal(0, await CountAsync(db => db.RefreshTokens.CountAsync(r => r.Digest == spentDigest)));
        Assert.Equal(1, await CountAsync(db => db.Sessions.CountAsync(s => s.NetworkId == network.Id)));

        // Past 400 days: the audit events of the start go, one written now stays, and the session is long over.
        server.Clock.Advance(TimeSpan.FromDays(330));
        server.Services.GetRequiredService<AuditLog>().Record(new SecurityEvent(AuditKinds.NetworkCreated, Outcomes.Success, "test", network.Id, Detail: "recent"));
        await server.FlushAuditAsync();
        var late = await PruneAsync();
        Assert.True(late.AuditEvents >= oldestAudit, $"audit events deleted: {late.AuditEvents} of {oldestAudit}");
        Assert.Equal(["recent"], await CountAsync(db => db.AuditEvents.Where(e => e.NetworkId == network.Id).Select(e => e.Detail).ToListAsync()));
        Assert.Equal(0, await CountAsync(db => db.Sessions.CountAsync(s => s.NetworkId == network.Id)));
        Assert.Equal(new Pruned(0, 0, 0), await PruneAsync());
    }

    [SkippableFact]
    public async Task Visitors_and_bots_inactive_for_the_period_go_with_their_sessions_and_active_ones_and_users_stay()
    {
        var network = await server.CreateNetworkAsync();
        await server.SetAnonymousModeAsync(network, Users.UserKind.Visitor, true);
        await server.SetAnonymousModeAsync(network, Users.UserKind.Bot, true);
        using (await server.CreateVisitorSessionAsync(network, "device-idle"))
        using (await server.CreateVisitorSessionAsync(network, "crawler-idle", "bot"))
        using (await server.CreateVisitorSessionAsync(network, "device-back"))
        {
        }
        await server.LoginAsync(network, "ursula", "device-u");

        // 30 days on, one visitor comes back; 31 days later the other two have been idle past the default 60 days.
        server.Clock.Advance(TimeSpan.FromDays(30));
        using (var back = await server.CreateVisitorSessionAsync(network, "device-back"))
            Assert.Equal(HttpStatusCode.OK, back.StatusCode);
        server.Clock.Advance(TimeSpan.FromDays(31));
        var pruned = await PruneAsync();
        await server.FlushAuditAsync();

        Assert.True(pruned.Visitors >= 2, $"visitors and bots deleted: {pruned.Visitors}");
        var left = await CountAsync(db => db.Users.Where(u => u.NetworkId == network.Id).Select(u => u.UserId).ToListAsync());
        Assert.Equal(
            new[] { "ursula", Visitors.VisitorIdentity.UserIdFor(network.Id, Users.UserKind.Visitor, "device-back") }.Order(StringComparer.Ordinal),
            left.Order(StringComparer.Ordinal));
        Assert.False(await CountAsync(db => db.DeviceBindings.AnyAsync(d => d.NetworkId == network.Id && (d.DeviceId == "device-idle" || d.DeviceId == "crawler-idle"))));
        Assert.Equal("inactive visitors=1 bots=1", await CountAsync(db => db.AuditEvents
            .Where(e => e.NetworkId == network.Id && e.Kind == AuditKinds.UsersPruned).Select(e => e.Detail).SingleAsync()));
        using var returning = await server.CreateVisitorSessionAsync(network, "device-idle");
        Assert.Equal(HttpStatusCode.OK, returning.StatusCode);
    }

    /// <summary>
    /// Old audit events are found by their key from the lowest up (the table has no index on the time alone): the
    /// walk goes on past a batch that also holds a newer event, and the newer one stays.
    /// </summary>
    [SkippableFact]
    public async Task Old_audit_events_written_after_a_newer_one_go_in_the_same_pass_and_the_newer_one_stays()
    {
        var network = await server.CreateNetworkAsync();
        var now = server.Clock.GetUtcNow();
        var old = now - server.Services.GetRequiredService<IOptions<GatehouseOptions>>().Value.Retention.AuditEvents - TimeSpan.FromDays(1);
        AuditEvent Event(DateTimeOffset at, string detail) =>
            new() { NetworkId = network.Id, OccurredAt = at, Kind = AuditKinds.NetworkCreated, Outcome = Outcomes.Success, Actor = "retention-test", Detail = detail };
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
            // The newer event among old ones, with two batches of old events written after it.
            db.AuditEvents.AddRange(Enumerable.Range(0, RetentionService.Batch / 2).Select(_ => Event(old, "old")));
            db.AuditEvents.Add(Event(now, "new"));
            db.AuditEvents.AddRange(Enumerable.Range(0, 2 * RetentionService.Batch).Select(_ => Event(old, "written after")));
            await db.SaveChangesAsync();
        }

        var pruned = await PruneAsync();

        Assert.True(pruned.AuditEvents >= RetentionService.Batch / 2 + 2 * RetentionService.Batch, $"audit events deleted: {pruned.AuditEvents}");
        Assert.Equal(["new"], await CountAsync(db => db.AuditEvents.Where(e => e.Actor == "retention-test").Select(e => e.Detail).ToListAsync()));
    }

    /// <summary>
    /// Each table's backlog spans more than two batches, its keys among those of rows that stay: a batch is read from
    /// just past the last key of the one before (change 92), so keys compared otherwise than the database orders them
    /// (a user's text id, a session's UUID, which SQLite keeps as text, a refresh token's digest, an auth token's id)
    /// would skip rows. The rows that stay are deleted at the end, so that later tests' passes, after the clock has
    /// moved on, do not meet them.
    /// </summary>
    [SkippableFact]
    public async Task A_pass_deletes_backlogs_of_several_batches_among_rows_that_stay()
    {
        var network = await server.CreateNetworkAsync();
        var now = server.Clock.GetUtcNow();
        const int backlog = 2 * RetentionService.Batch + 500;
        const int staying = 1_000;
        var random = new Random(92);
        DateTimeOffset DaysAgo(int from, int to) => now - TimeSpan.FromDays(from + random.NextDouble() * (to - from));
        Users.User NewUser(string userId, Users.UserKind kind, DateTimeOffset at) =>
            new() { Id = Secrets.NewId(at), NetworkId = network.Id, UserId = userId, Kind = kind, CreatedAt = at, UpdatedAt = at };
        // Users created over the same two years (their ids begin with the time), the visitors idle for over 60 days.
        var signedIn = Enumerable.Range(0, staying).Select(i => NewUser("user-" + i, Users.UserKind.SignedIn, DaysAgo(61, 730))).ToList();
        var visitors = Enumerable.Range(0, backlog).Select(i => NewUser("visitor-" + i, Users.UserKind.Visitor, DaysAgo(61, 730)));
        // Sessions opened over the same weeks (their ids begin with the time): live ones, and ones logged out over 30 days ago.
        Session NewSession(DateTimeOffset at, DateTimeOffset? revokedAt) => new()
        {
            Id = IdRandom.Version7(at), NetworkId = network.Id, UserRef = signedIn[0].Id, DeviceId = "device", CreatedAt = at,
            ExpiresAt = revokedAt ?? now + TimeSpan.FromDays(20), RevokedAt = revokedAt,
        };
        var live = Enumerable.Range(0, staying).Select(_ => NewSession(DaysAgo(40, 100), null)).ToList();
        var loggedOut = Enumerable.Range(0, backlog).Select(_ => NewSession(DaysAgo(40, 100), DaysAgo(31, 39)));
        // Refresh tokens of the live sessions: current ones, and ones expired more than a week ago.
        RefreshToken NewToken(DateTimeOffset expiresAt) => new()
        {
            Digest = Secrets.Digest("refresh-" + random.NextInt64()), SessionId = live[random.Next(staying)].Id,
            IssuedAt = expiresAt - TimeSpan.FromDays(60), ExpiresAt = expiresAt,
        };
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
            db.Users.AddRange(signedIn.Concat(visitors));
            db.Sessions.AddRange(live.Concat(loggedOut));
            db.RefreshTokens.AddRange(Enumerable.Range(0, staying).Select(_ => NewToken(DaysAgo(-60, -1))));
            db.RefreshTokens.AddRange(Enumerable.Range(0, backlog).Select(_ => NewToken(DaysAgo(8, 20))));
            // Single-use auth tokens' ids as clients choose them: any text.
            db.SpentAuthTokens.AddRange(Enumerable.Range(0, staying + backlog).Select(i =>
                new SpentAuthToken { Jti = $"jti-{random.NextInt64()}-{i}", NetworkId = network.Id, ExpiresAt = i < staying ? DaysAgo(-1, 0) : DaysAgo(0, 1) }));
            await db.SaveChangesAsync();
        }

        // A walk that never ended would hang the suite instead of failing this test.
        var pruned = await PruneAsync().WaitAsync(TimeSpan.FromMinutes(2));

        Assert.True(pruned.Visitors >= backlog && pruned.Sessions >= backlog && pruned.RefreshTokens >= backlog, $"deleted: {pruned}");
        var usersLeft = await CountAsync(db => db.Users.Where(u => u.NetworkId == network.Id).Select(u => u.Id).ToListAsync());
        Assert.Equal(signedIn.Select(u => u.Id).Order(StringComparer.Ordinal), usersLeft.Order(StringComparer.Ordinal));
        var sessionsLeft = await CountAsync(db => db.Sessions.Where(s => s.NetworkId == network.Id).Select(s => s.Id).ToListAsync());
        Assert.Equal(live.Select(s => s.Id).Order(), sessionsLeft.Order());
        var liveIds = live.Select(s => s.Id).ToList();
        Assert.Equal(staying, await CountAsync(db => db.RefreshTokens.CountAsync(r => liveIds.Contains(r.SessionId))));
        Assert.Equal(0, await CountAsync(db => db.RefreshTokens.CountAsync(r => liveIds.Contains(r.SessionId) && r.ExpiresAt < now)));
        Assert.Equal(staying, await CountAsync(db => db.SpentAuthTokens.CountAsync(t => t.NetworkId == network.Id)));
        Assert.Equal(0, await CountAsync(db => db.SpentAuthTokens.CountAsync(t => t.NetworkId == network.Id && t.ExpiresAt < now)));

        await CountAsync(async db =>
        {
            await db.SpentAuthTokens.Where(t => t.NetworkId == network.Id).ExecuteDeleteAsync();
            await db.RefreshTokens.Where(r => liveIds.Contains(r.SessionId)).ExecuteDeleteAsync();
            await db.Sessions.Where(s => s.NetworkId == network.Id).ExecuteDeleteAsync();
            return await db.Users.Where(u => u.NetworkId == network.Id).ExecuteDeleteAsync();
        });
    }

    private protected Task<Pruned> PruneAsync() => server.Services.GetRequiredService<RetentionService>().PruneAsync();

    private async Task<T> CountAsync<T>(Func<GatehouseDb, Task<T>> query)
    {
        await using var scope = server.Services.CreateAsyncScope();
        return await query(scope.ServiceProvider.GetRequiredService<GatehouseDb>());
    }
}

public sealed class RetentionSqliteServer : GatehouseServer
{
    public RetentionSqliteServer() => Settings["Gatehouse:Retention:Enabled"] = "false";
}

public sealed class RetentionPostgresServer : PostgresServer
{
    public RetentionPostgresServer()
    {
        Settings["Gatehouse:Retention:Enabled"] = "false";
        // The visitors' race tests hold a login on a lock until a pass reaches it: with the 2 s a statement gets by
        // default, a slow moment would fail the login's statement first and write it again after the pass, and the
        // test would no longer be about the race.
        CommandTimeoutSeconds = 30;
    }
}

[Trait(Category.Name, Category.Slow)]
public sealed class RetentionTestsOnSqlite(RetentionSqliteServer server) : RetentionTests<RetentionSqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class RetentionTestsOnPostgres(RetentionPostgresServer server) : RetentionTests<RetentionPostgresServer>(server)
{
    /// <summary>
    /// A pass finds a visitor idle past the period just as another login on its device waits for the device's binding
    /// (held here by another node's transaction): the visitor itself coming back, or a user taking the device, which
    /// ends the visitor's session. The pass waits for that login: deleting the visitor's session first and then waiting
    /// for the binding, it held the session the user's login went on to end, and PostgreSQL failed one of the two after
    /// its deadlock check; the visitor's login went in between, and the pass then failed on the visitor's new session.
    /// Now the visitor who came back stays with its new session, and the one whose device was taken goes.
    /// </summary>
    [SkippableTheory]
    [InlineData("the visitor comes back")]
    [InlineData("a user takes the device")]
    public async Task A_login_on_an_idle_visitors_device_during_a_pass_is_waited_for(string login)
    {
        var network = await Server.CreateNetworkAsync();
        await Server.SetAnonymousModeAsync(network, Users.UserKind.Visitor, true);
        var device = "device-" + login.Replace(' ', '-');
        await VisitorTokenAsync(network, device);
        var visitor = Visitors.VisitorIdentity.UserIdFor(network.Id, Users.UserKind.Visitor, device);
        await IdlePastThePeriodAsync();
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();

        await using var binder = await HeldBinding.LockAsync(OtherNodeConnectionString(db), network.Id, device);
        var comesBack = login == "the visitor comes back";
        var loggedIn = comesBack ? VisitorTokenAsync(network, device) : UserTokenAsync(network, "ursula", device);
        await WaitingForALockAsync(binder.Connection, binder.Connection, "DeviceBindings");
        var pass = PruneAsync();
        await WaitingForALockAsync(binder.Connection, binder.Connection, "DeviceBindings", waiters: 2);
        await binder.ReleaseAsync();

        await pass.WaitAsync(TimeSpan.FromSeconds(30));
        await AssertSignedInAsync(await loggedIn.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(comesBack ? [visitor] : ["ursula"], await UsersAsync(db, network));
        Assert.Equal(comesBack ? 2 : 1, await db.Sessions.AsNoTracking().CountAsync(s => s.NetworkId == network.Id));
    }

    /// <summary>
    /// A visitor whose device a user has since taken has no binding for the pass to lock: its login on that device reads
    /// the visitor while the pass (held here on the visitor's old session by another node's transaction) holds the
    /// visitor's row, and its new session waits for that row. The pass deletes the visitor and commits; the login's
    /// session then fails on the missing row, and is written again alone, which makes the visitor anew. Before, that
    /// error was no reason to write it again, and the login failed with a 500.
    /// </summary>
    [SkippableFact]
    public async Task A_visitor_coming_back_to_a_taken_device_while_a_pass_deletes_it_is_made_anew()
    {
        var network = await Server.CreateNetworkAsync();
        await Server.SetAnonymousModeAsync(network, Users.UserKind.Visitor, true);
        await VisitorTokenAsync(network, "device-taken");
        var visitor = Visitors.VisitorIdentity.UserIdFor(network.Id, Users.UserKind.Visitor, "device-taken");
        await IdlePastThePeriodAsync();
        // Taken now, so that the visitor's session, ended now, is not among the ended sessions the pass deletes first (nor,
        // with the default lifetimes, among those past their absolute lifetime or their last refresh token): the pass
        // meets it only when it locks the visitor's sessions, holding the visitor's row.
        await UserTokenAsync(network, "ursula", "device-taken");
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var oldSession = await db.Sessions.AsNoTracking().Where(s => s.NetworkId == network.Id && s.RevokedReason == RevokeReasons.DeviceRebound)
            .Select(s => s.Id).SingleAsync();

        await using var otherNode = await OpenOtherNodeAsync(OtherNodeConnectionString(db));
        await using var holding = await otherNode.BeginTransactionAsync();
        await ExecuteAsync(otherNode, holding, """SELECT 1 FROM "Sessions" WHERE "Id" = $1 FOR UPDATE""", oldSession);
        var pass = PruneAsync();
        await WaitingForALockAsync(otherNode, otherNode, "Sessions");
        var comesBack = VisitorTokenAsync(network, "device-taken");
        await WaitingForALockAsync(otherNode, otherNode, "Sessions", waiters: 2);
        await holding.CommitAsync();

        await pass.WaitAsync(TimeSpan.FromSeconds(30));
        await AssertSignedInAsync(await comesBack.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(new[] { "ursula", visitor }.Order(StringComparer.Ordinal), await UsersAsync(db, network));
        Assert.False(await db.Sessions.AsNoTracking().AnyAsync(s => s.Id == oldSession));
    }

    /// <summary>
    /// Two visitors coming back in one login group to devices a user has since taken: no binding of theirs for a pass to
    /// lock first, so the group's new sessions take their users' rows (a key share each, the foreign key) while a pass
    /// deleting both takes those rows whole in key order (another node's transaction here, as its pass would). The group
    /// now takes them in that order too, so it waits for the first and holds nothing the pass wants next. In arrival
    /// order (here the second user's first) the group held the second and waited for the first, and the pass then waited
    /// for the second: each held by the other until PostgreSQL's deadlock check failed one. The other node asks for the
    /// second without waiting, so a deadlock check cannot settle it first, and both sessions must come from the one
    /// group's transaction: a group failed for any reason is written again a login at a time, in which order no two
    /// rows cross.
    /// </summary>
    [SkippableFact]
    public async Task Visitors_coming_back_in_one_group_take_their_rows_in_the_passs_order()
    {
        var network = await Server.CreateNetworkAsync();
        await Server.SetAnonymousModeAsync(network, Users.UserKind.Visitor, true);
        string[] devices = ["device-back-1", "device-back-2"];
        foreach (var device in devices)
        {
            await VisitorTokenAsync(network, device);
            await UserTokenAsync(network, "ursula", device);
        }
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var stored = await db.Networks.AsNoTracking().SingleAsync(n => n.Id == network.Id);
        var visitors = await db.Users.AsNoTracking().Where(u => u.NetworkId == network.Id && u.Kind == Users.UserKind.Visitor)
            .Select(u => new { u.Id, u.UserId }).ToListAsync();
        var (first, second) = (visitors.MinBy(v => v.Id, StringComparer.Ordinal)!, visitors.MaxBy(v => v.Id, StringComparer.Ordinal)!);
        var connectionString = OtherNodeConnectionString(db);

        var sessions = Server.Services.GetRequiredService<SessionService>();
        await using var writer = await HeldWriter.HoldAsync(sessions, stored, connectionString);
        await using var otherPass = await OpenOtherNodeAsync(connectionString);
        await using var deleting = await otherPass.BeginTransactionAsync();
        await ExecuteAsync(otherPass, deleting, """SELECT 1 FROM "Users" WHERE "Id" = $1 FOR UPDATE""", first.Id);

        Task<(IssuedSession? Issued, Refusal? Error)> Open(string userId, string device, Users.UserKind kind) =>
            sessions.OpenAsync(stored, new Login(userId, device, null, null, null, null, kind), "127.0.0.1", CancellationToken.None);
        var deviceOf = devices.ToDictionary(d => Visitors.VisitorIdentity.UserIdFor(network.Id, Users.UserKind.Visitor, d));
        List<Task<(IssuedSession? Issued, Refusal? Error)>> comingBack =
            [Open(second.UserId, deviceOf[second.UserId], Users.UserKind.Visitor), Open(first.UserId, deviceOf[first.UserId], Users.UserKind.Visitor)];
        await writer.ReleaseAsync();
        // The group's insert of the sessions waits for the first visitor's row (its foreign key check).
        await WaitingForALockAsync(writer.Connection, otherPass, "Sessions");

        // 55P03 at once if the group holds a share of the second visitor's row.
        await ExecuteAsync(otherPass, deleting, """SELECT 1 FROM "Users" WHERE "Id" = $1 FOR UPDATE NOWAIT""", second.Id);
        await deleting.RollbackAsync();

        var opened = await Task.WhenAll(comingBack.Append(writer.Login)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(opened, o => Assert.Null(o.Error));
        Assert.Equal([second.Id, first.Id], opened.Take(2).Select(o => o.Issued!.User.Id));
        var newSessions = opened.Take(2).Select(o => o.Issued!.Session.Id).ToArray();
        var writtenBy = await db.Database.SqlQuery<string>($"""SELECT xmin::text AS "Value" FROM "Sessions" WHERE "Id" = ANY({newSessions})""").ToListAsync();
        Assert.Single(writtenBy.Distinct());
        Assert.Equal(2, writtenBy.Count);
    }

    /// <summary>
    /// Every node runs a pass, and on PostgreSQL their batches take turns (an advisory lock each batch's transaction
    /// holds): two passes over the same refresh tokens, one deleting them in its plan's order and the other locking them
    /// by digest, could otherwise each wait for the other. A pass waits while another node's batch holds the lock.
    /// </summary>
    [SkippableFact]
    public async Task Two_nodes_passes_take_turns_batch_by_batch()
    {
        var network = await Server.CreateNetworkAsync();
        var loggedOut = await Server.LoginAsync(network, "out", "device-out");
        using (var logout = await Server.LogoutAsync(loggedOut["accessToken"]!.GetValue<string>()))
            Assert.Equal(HttpStatusCode.OK, logout.StatusCode);
        Server.Clock.Advance(TimeSpan.FromDays(31));
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();

        await using var otherNode = await OpenOtherNodeAsync(OtherNodeConnectionString(db));
        await using var otherPass = await otherNode.BeginTransactionAsync();
        await ExecuteAsync(otherNode, otherPass, "SELECT pg_advisory_xact_lock($1)", RetentionService.PassLock);
        var pass = PruneAsync();
        await WaitingForAnAdvisoryLockAsync(OtherNodeConnectionString(db), RetentionService.PassLock);
        await otherPass.CommitAsync();

        Assert.True((await pass.WaitAsync(TimeSpan.FromSeconds(30))).Sessions >= 1);
        Assert.False(await db.Sessions.AsNoTracking().AnyAsync(s => s.NetworkId == network.Id));
    }

    /// <summary>
    /// A pass run once before the clock moves, so that the pass under test reaches the visitors at once (its queries
    /// compiled, the rows other tests left ended already deleted); then the visitors made so far are idle past the
    /// default 60 days.
    /// </summary>
    private async Task IdlePastThePeriodAsync()
    {
        await PruneAsync();
        Server.Clock.Advance(TimeSpan.FromDays(61));
    }

    private async Task<string> VisitorTokenAsync(TestNetwork network, string device)
    {
        using var response = await Server.CreateVisitorSessionAsync(network, device);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<System.Text.Json.Nodes.JsonNode>())!["accessToken"]!.GetValue<string>();
    }

    private async Task<string> UserTokenAsync(TestNetwork network, string userId, string device) =>
        (await Server.LoginAsync(network, userId, device))["accessToken"]!.GetValue<string>();

    private async Task AssertSignedInAsync(string accessToken)
    {
        using var me = await Server.GetWithBearerAsync("/api/v3/users/me", accessToken);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
    }

    private static async Task<List<string>> UsersAsync(GatehouseDb db, TestNetwork network) =>
        (await db.Users.AsNoTracking().Where(u => u.NetworkId == network.Id).Select(u => u.UserId).ToListAsync()).Order(StringComparer.Ordinal).ToList();
}
