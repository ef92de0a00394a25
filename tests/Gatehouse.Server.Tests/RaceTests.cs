using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Certificates;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.ServerKeys;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using static Gatehouse.Server.Tests.OtherNode;

namespace Gatehouse.Server.Tests;

/// <summary>Concurrent requests against the invariants that must hold however they interleave.</summary>
public abstract class RaceTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    protected TServer Server => server;

    [SkippableFact]
    public async Task Of_fifty_concurrent_uses_of_one_refresh_token_exactly_one_wins_and_the_reuse_ends_the_session()
    {
        var network = await server.CreateNetworkAsync();
        var refreshToken = (await server.LoginAsync(network, "racer", "device-r"))["refreshToken"]!.GetValue<string>();

        var answers = await Task.WhenAll(Enumerable.Range(0, 50).Select(async _ =>
        {
            using var response = await server.RefreshAsync(network, refreshToken);
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }));

        var winners = answers.Where(a => a.StatusCode == HttpStatusCode.OK).ToList();
        Assert.Single(winners);
        // The rest are refused as reuse (or, once one ended it, as an ended session): 401, never 429, although the 49
        // exceed the session's 30 refreshes a minute, since a reuse is judged before the limit.
        Assert.All(answers.Where(a => a.StatusCode != HttpStatusCode.OK), a => Assert.Equal(HttpStatusCode.Unauthorized, a.StatusCode));
        var winnersToken = JsonNode.Parse(winners[0].Body)!["accessToken"]!.GetValue<string>();
        using var me = await server.GetWithBearerAsync("/api/v3/users/me", winnersToken);
        await Envelope.AssertUnauthorizedAsync(me);
    }

    [SkippableFact]
    public async Task Two_users_logging_in_on_one_device_at_once_leave_exactly_one_of_them_signed_in()
    {
        var network = await server.CreateNetworkAsync();
        var violations = 0;
        for (var round = 0; round < 10; round++)
        {
            var device = $"kiosk-{round}";
            var logins = await Task.WhenAll(
                server.LoginAsync(network, $"first-{round}", device),
                server.LoginAsync(network, $"second-{round}", device));
            var live = 0;
            foreach (var login in logins)
            {
                using var me = await server.GetWithBearerAsync("/api/v3/users/me", login["accessToken"]!.GetValue<string>());
                if (me.StatusCode == HttpStatusCode.OK)
                    live++;
            }
            if (live != 1)
                violations++;
        }
        Assert.Equal(0, violations);
    }

    [SkippableFact]
    public async Task Concurrent_server_key_generations_never_leave_three_keys_valid()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);

        var keys = await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            await using var scope = server.Services.CreateAsyncScope();
            var found = await scope.ServiceProvider.GetRequiredService<NetworkAdministration>().FindAsync(network.Id);
            var (key, error) = await scope.ServiceProvider.GetRequiredService<ServerKeyService>().GenerateAsync(found!, "race");
            Assert.Null(error);
            return key!;
        }));

        var valid = 0;
        foreach (var key in keys)
        {
            using var response = await server.MintV3Async(key, "alice");
            if (response.StatusCode == HttpStatusCode.OK)
                valid++;
        }
        Assert.InRange(valid, 1, 2);
    }

    [SkippableFact]
    public async Task Concurrent_certificate_creations_never_leave_a_third_active_certificate()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);

        var created = await Task.WhenAll(Enumerable.Range(0, 6).Select(async i =>
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var csr = new CertificateRequest($"CN=race-{i}", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();
            await using var scope = server.Services.CreateAsyncScope();
            var found = await scope.ServiceProvider.GetRequiredService<NetworkAdministration>().FindAsync(network.Id);
            var (certificate, _) = await scope.ServiceProvider.GetRequiredService<ClientCertificates>().CreateAsync(found!, $"race-{i}", csr, "race");
            return certificate is not null;
        }));

        Assert.Equal(2, created.Count(c => c));
        await using var check = server.Services.CreateAsyncScope();
        Assert.Equal(2, await check.ServiceProvider.GetRequiredService<GatehouseDb>().ClientCertificates.CountAsync(c => c.NetworkId == network.Id));
    }
}

[Trait(Category.Name, Category.Fast)]
public sealed class RaceTestsOnSqlite(SqliteServer server) : RaceTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class RaceTestsOnPostgres(PostgresServer server) : RaceTests<PostgresServer>(server)
{
    /// <summary>
    /// Two nodes' groups creating the same two new users at once: the group here gets them in the order b, a; the other
    /// node's (a transaction of this test) has inserted a and goes on to b. Inserted in arrival order, each group would
    /// wait for the other's uncommitted row until PostgreSQL, after its deadlock_timeout, failed one. In key order the
    /// group here waits for a and the other node's b waits for nothing; once the other node commits, the group fails on
    /// the unique key and each login is written again alone, finding the user the other node made.
    /// </summary>
    [SkippableFact]
    public async Task Two_nodes_creating_the_same_new_users_in_opposite_orders_do_not_deadlock()
    {
        var network = await Server.CreateNetworkAsync();
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var stored = await db.Networks.AsNoTracking().SingleAsync(n => n.Id == network.Id);
        var connectionString = OtherNodeConnectionString(db);
        // The other node's insert below gives up after 100 ms; PostgreSQL's deadlock check must come well after it, or it
        // would fail the group first and hide the wait (the cluster tests/postgres.sh starts keeps the default 1 s).
        Assert.True(await db.Database.SqlQueryRaw<int>("SELECT setting::int AS \"Value\" FROM pg_settings WHERE name = 'deadlock_timeout'").SingleAsync() >= 500,
            "PostgreSQL's deadlock_timeout is too short for this test");

        var sessions = Server.Services.GetRequiredService<SessionService>();
        await using var writer = await HeldWriter.HoldAsync(sessions, stored, connectionString);

        await using var otherNode = await OpenOtherNodeAsync(connectionString);
        await using var otherGroup = await otherNode.BeginTransactionAsync();
        // 100 ms, well under deadlock_timeout (checked above): if this insert waits for the group's uncommitted b, it fails here first.
        await ExecuteAsync(otherNode, otherGroup, "SET LOCAL lock_timeout = '100ms'");
        await InsertUserAsync(otherNode, otherGroup, network.Id, "raced-a");

        Task<(IssuedSession? Issued, Refusal? Error)> Open(string user) =>
            sessions.OpenAsync(stored, new Login(user, $"{user}-device", null, null, null, null), "127.0.0.1", CancellationToken.None);
        List<Task<(IssuedSession? Issued, Refusal? Error)>> raced = [Open("raced-b"), Open("raced-a")];
        await writer.ReleaseAsync();
        await WaitingForALockAsync(writer.Connection, otherNode, "Users");

        await InsertUserAsync(otherNode, otherGroup, network.Id, "raced-b");
        await otherGroup.CommitAsync();

        var opened = await Task.WhenAll(raced.Append(writer.Login)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(opened, o => Assert.Null(o.Error));
        Assert.Equal(["other-raced-b", "other-raced-a"], opened.Take(2).Select(o => o.Issued!.User.Id));
        Assert.Equal(2, await db.Users.CountAsync(u => u.NetworkId == network.Id && u.UserId.StartsWith("raced-")));
    }

    /// <summary>
    /// A new user's first login alone in its group, while another node inserts the same user: the login waits for the
    /// other node's uncommitted row, which then commits, and its insert fails on the unique key. That PostgreSQL error
    /// (not EF's) was no reason for the writer to write the login again, and it failed with a 500; written again, it
    /// finds the user the other node made.
    /// </summary>
    [SkippableFact]
    public async Task A_login_alone_that_loses_a_new_user_to_another_node_is_written_again()
    {
        var network = await Server.CreateNetworkAsync();
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var stored = await db.Networks.AsNoTracking().SingleAsync(n => n.Id == network.Id);
        await using var otherNode = await OpenOtherNodeAsync(OtherNodeConnectionString(db));
        await using var otherGroup = await otherNode.BeginTransactionAsync();
        await InsertUserAsync(otherNode, otherGroup, network.Id, "twin");

        var login = Server.Services.GetRequiredService<SessionService>()
            .OpenAsync(stored, new Login("twin", "twin-device", null, null, null, null), "127.0.0.1", CancellationToken.None);
        await WaitingForALockAsync(otherNode, otherNode, "Users");
        await otherGroup.CommitAsync();

        var (issued, error) = await login.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Null(error);
        Assert.Equal("other-twin", issued!.User.Id);
    }

    /// <summary>
    /// A refresh token redeemed on another node while this node's group, which read it unused, waits to lock it: the
    /// group's claim changes one row fewer than it judged, so the group is written again one refresh at a time, where the
    /// token reads as used and its session ends as a reuse; the other refresh of the group is unharmed. Without that
    /// count the token would be redeemed twice, once on each node.
    /// </summary>
    [SkippableFact]
    public async Task A_refresh_token_redeemed_on_another_node_while_a_group_waits_is_refused_as_reused()
    {
        var network = await Server.CreateNetworkAsync();
        var raced = (await Server.LoginAsync(network, "raced", "raced-device"))["refreshToken"]!.GetValue<string>();
        var bystander = (await Server.LoginAsync(network, "bystander", "bystander-device"))["refreshToken"]!.GetValue<string>();
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var stored = await db.Networks.AsNoTracking().SingleAsync(n => n.Id == network.Id);
        var racedSession = await SessionOfAsync(db, raced);
        var bystanderSession = await SessionOfAsync(db, bystander);
        var connectionString = OtherNodeConnectionString(db);

        var sessions = Server.Services.GetRequiredService<SessionService>();
        await using var writer = await HeldWriter.HoldAsync(sessions, stored, connectionString);

        // The other node has claimed the token and not committed yet: the group reads it unused.
        await using var otherNode = await OpenOtherNodeAsync(connectionString);
        await using var otherRefresh = await otherNode.BeginTransactionAsync();
        await ExecuteAsync(otherNode, otherRefresh, """UPDATE "RefreshTokens" SET "UsedAt" = now() WHERE "Digest" = $1 AND "UsedAt" IS NULL""",
            Secrets.Digest(raced));

        var racedRefresh = sessions.RefreshAsync(stored, raced, "127.0.0.1", CancellationToken.None);
        var bystanderRefresh = sessions.RefreshAsync(stored, bystander, "127.0.0.1", CancellationToken.None);
        await writer.ReleaseAsync();
        await WaitingForALockAsync(writer.Connection, otherNode, "RefreshTokens");
        await otherRefresh.CommitAsync();

        await Task.WhenAll(writer.Login, racedRefresh, bystanderRefresh).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Null((await writer.Login).Error);
        Assert.Same(Errors.RefreshTokenReused, (await racedRefresh).Error);
        Assert.Null((await bystanderRefresh).Error);
        Assert.NotNull((await bystanderRefresh).Issued!.RefreshToken);
        var ended = await db.Sessions.AsNoTracking().Where(s => s.Id == racedSession || s.Id == bystanderSession).ToDictionaryAsync(s => s.Id);
        Assert.Equal(RevokeReasons.RefreshReuse, ended[racedSession].RevokedReason);
        Assert.Null(ended[bystanderSession].RevokedAt);
        // The raced session keeps only its login's token (the failed group's new one was rolled back); the bystander's
        // has its login's and its refresh's.
        Assert.Equal(1, await db.RefreshTokens.CountAsync(r => r.SessionId == racedSession));
        Assert.Equal(2, await db.RefreshTokens.CountAsync(r => r.SessionId == bystanderSession));
    }

    /// <summary>
    /// A group refreshing two sessions takes their refresh tokens' locks in key order, as retention's pass locks a
    /// visitor's tokens: another node that holds the lower token and goes on to the higher one takes it at once. The
    /// claim alone took them in its plan's order, the heap's for a bitmap scan (many digests on a large table) or a
    /// sequential scan (a small one): the two tokens are chosen so that the heap holds the higher one first, and with
    /// that claim the group held it while it waited for the lower, until PostgreSQL failed one of the two. The test
    /// checks that the claim's plan here visits the heap; an index scan would take the tokens in key order with or
    /// without the lock.
    /// </summary>
    [SkippableFact]
    public async Task A_group_refreshing_two_sessions_locks_their_tokens_in_key_order()
    {
        var network = await Server.CreateNetworkAsync();
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var byDigest = new Dictionary<string, string>(StringComparer.Ordinal);
        // Logins until two of their tokens lie in the heap against PostgreSQL's order of the key (each new pair is one
        // with even odds).
        (string Lower, string Higher)? pair = null;
        for (var login = 0; pair is null; login++)
        {
            Assert.True(login < 20, "twenty logins' refresh tokens all lay in the heap in key order");
            var token = (await Server.LoginAsync(network, $"refresher-{login}", $"refresher-device-{login}"))["refreshToken"]!.GetValue<string>();
            byDigest[Secrets.Digest(token)] = token;
            string[] digests = [.. byDigest.Keys];
            var inverted = await db.Database.SqlQuery<string>($"""
                SELECT lower."Digest" || ' ' || higher."Digest" AS "Value" FROM "RefreshTokens" lower
                JOIN "RefreshTokens" higher ON higher.ctid < lower.ctid AND higher."Digest" > lower."Digest"
                WHERE lower."Digest" = ANY({digests}) AND higher."Digest" = ANY({digests}) LIMIT 1
                """).ToListAsync();
            if (inverted is [var found] && found.Split(' ') is [var lowerDigest, var higherDigest])
                pair = (lowerDigest, higherDigest);
        }
        var (lower, higher) = pair.Value;
        var stored = await db.Networks.AsNoTracking().SingleAsync(n => n.Id == network.Id);
        var connectionString = OtherNodeConnectionString(db);

        var sessions = Server.Services.GetRequiredService<SessionService>();
        await using var writer = await HeldWriter.HoldAsync(sessions, stored, connectionString);
        await using var otherNode = await OpenOtherNodeAsync(connectionString);
        // Only a plan that visits the heap takes the two out of key order: were the claim an index scan here, the test
        // could not tell the lock from its absence.
        await using (var explain = new NpgsqlCommand(
            """EXPLAIN UPDATE "RefreshTokens" SET "UsedAt" = now() WHERE "UsedAt" IS NULL AND "Digest" = ANY($1)""", otherNode))
        {
            explain.Parameters.Add(new NpgsqlParameter { Value = new[] { higher, lower } });
            var plan = new List<string>();
            await using var lines = await explain.ExecuteReaderAsync();
            while (await lines.ReadAsync())
                plan.Add(lines.GetString(0));
            Assert.True(plan.Exists(line => line.Contains("Seq Scan", StringComparison.Ordinal) || line.Contains("Bitmap Heap Scan", StringComparison.Ordinal)),
                "The claim's plan does not visit the heap in its order:\n" + string.Join('\n', plan));
        }
        await using var otherPass = await otherNode.BeginTransactionAsync();
        const string LockToken = """SELECT 1 FROM "RefreshTokens" WHERE "Digest" = $1 FOR UPDATE""";
        await ExecuteAsync(otherNode, otherPass, LockToken, lower);

        List<Task<(IssuedSession? Issued, Refusal? Error)>> refreshes =
            [sessions.RefreshAsync(stored, byDigest[higher], "127.0.0.1", CancellationToken.None),
             sessions.RefreshAsync(stored, byDigest[lower], "127.0.0.1", CancellationToken.None)];
        await writer.ReleaseAsync();
        await WaitingForALockAsync(writer.Connection, otherNode, "RefreshTokens");

        // NOWAIT: fails at once (55P03) if the group holds the higher token while it waits for the lower.
        await ExecuteAsync(otherNode, otherPass, LockToken + " NOWAIT", higher);
        await otherPass.RollbackAsync();

        var refreshed = await Task.WhenAll(refreshes).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Null((await writer.Login).Error);
        Assert.All(refreshed, r => Assert.Null(r.Error));
        // Both new tokens from one transaction: a group failed and written again a refresh at a time cannot pass for it.
        string[] issued = [.. refreshed.Select(r => Secrets.Digest(r.Issued!.RefreshToken!))];
        var writtenBy = await db.Database.SqlQuery<string>($"""SELECT xmin::text AS "Value" FROM "RefreshTokens" WHERE "Digest" = ANY({issued})""").ToListAsync();
        Assert.Equal(2, writtenBy.Count);
        Assert.Single(writtenBy.Distinct());
    }

    /// <summary>
    /// A group that ends two sessions in different phases (a login signs one out of its device, a logout ends the
    /// other) takes their locks in key order, as every group does: another node's group that holds the lower one and
    /// goes on to the higher one takes it at once, where a group locking them phase by phase held the higher one while
    /// it waited for the lower, and the two waited for each other until PostgreSQL failed one of them.
    /// </summary>
    [SkippableFact]
    public async Task A_group_ending_two_sessions_locks_them_in_key_order()
    {
        var network = await Server.CreateNetworkAsync();
        await Server.LoginAsync(network, "first", "first-device");
        await Server.LoginAsync(network, "second", "second-device");
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var stored = await db.Networks.AsNoTracking().SingleAsync(n => n.Id == network.Id);
        // In PostgreSQL's order of the key, which is what the lock must follow.
        var ordered = await db.Database.SqlQuery<Guid>($"""
            SELECT "Id" AS "Value" FROM "Sessions" WHERE "NetworkId" = {network.Id} AND "DeviceId" IN ('first-device', 'second-device') ORDER BY "Id"
            """).ToListAsync();
        var (lower, higher) = (await db.Sessions.AsNoTracking().SingleAsync(s => s.Id == ordered[0]), await db.Sessions.AsNoTracking().SingleAsync(s => s.Id == ordered[1]));
        var connectionString = OtherNodeConnectionString(db);

        var sessions = Server.Services.GetRequiredService<SessionService>();
        await using var writer = await HeldWriter.HoldAsync(sessions, stored, connectionString);
        await using var otherNode = await OpenOtherNodeAsync(connectionString);
        await using var otherGroup = await otherNode.BeginTransactionAsync();
        const string LockSession = """SELECT 1 FROM "Sessions" WHERE "Id" = $1 FOR NO KEY UPDATE""";
        await ExecuteAsync(otherNode, otherGroup, LockSession, lower.Id);

        // The login signs the higher session's user out of its device; the logout ends the lower session.
        var newcomer = sessions.OpenAsync(stored, new Login("newcomer", higher.DeviceId, null, null, null, null), "127.0.0.1", CancellationToken.None);
        var lowerUser = lower.DeviceId == "first-device" ? "first" : "second";
        var logout = sessions.RevokeAsync(lower.Id, RevokeReasons.Logout,
            SecurityEvents.LoggedOut(lowerUser, network.Id, lower.Id, RevokeReasons.Logout), "127.0.0.1", CancellationToken.None);
        await writer.ReleaseAsync();
        await WaitingForALockAsync(writer.Connection, otherNode, "Sessions");

        // NOWAIT: fails at once (55P03) if the group holds the higher session while it waits for the lower.
        await ExecuteAsync(otherNode, otherGroup, LockSession + " NOWAIT", higher.Id);
        await otherGroup.CommitAsync();

        await Task.WhenAll(writer.Login, newcomer, logout).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Null((await writer.Login).Error);
        Assert.Null((await newcomer).Error);
        Assert.NotNull(await logout);
        var ended = await db.Sessions.AsNoTracking().Where(s => s.Id == lower.Id || s.Id == higher.Id).ToDictionaryAsync(s => s.Id, s => s.RevokedReason);
        Assert.Equal(RevokeReasons.Logout, ended[lower.Id]);
        Assert.Equal(RevokeReasons.DeviceRebound, ended[higher.Id]);
    }

    /// <summary>
    /// The sessions a group ends are written at its end, but its later changes see them ended: in one group, a login that
    /// signs a user out of its device, then that session's refresh and logout; a replayed refresh token, then its
    /// session's logout. The refresh is refused as for an ended session, the logouts find nothing to end (no
    /// <c>session.revoked</c> event), the sessions keep the reasons the group's first changes gave them, and the group
    /// commits once, not written again one change at a time.
    /// </summary>
    [SkippableFact]
    public async Task A_group_reads_the_sessions_it_ended_earlier_as_ended()
    {
        var network = await Server.CreateNetworkAsync();
        var signedOutToken = (await Server.LoginAsync(network, "signed-out", "shared-device"))["refreshToken"]!.GetValue<string>();
        var replayed = (await Server.LoginAsync(network, "replayed", "replayed-device"))["refreshToken"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.OK, (await Server.RefreshAsync(network, replayed)).StatusCode);
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var stored = await db.Networks.AsNoTracking().SingleAsync(n => n.Id == network.Id);
        var signedOut = await SessionOfAsync(db, signedOutToken);
        var replayedSession = await SessionOfAsync(db, replayed);
        var connectionString = OtherNodeConnectionString(db);

        var sessions = Server.Services.GetRequiredService<SessionService>();
        await using var writer = await HeldWriter.HoldAsync(sessions, stored, connectionString);
        // From here: the held login's group and the one behind it.
        using var changesPerCommit = new InstrumentRecording<int>(Server.Services, "gatehouse.sessions.changes_per_commit");
        Task<SecurityEvent?> Logout(Guid session, string user) => sessions.RevokeAsync(session, RevokeReasons.Logout,
            SecurityEvents.LoggedOut(user, network.Id, session, RevokeReasons.Logout), "127.0.0.1", CancellationToken.None);
        var newcomer = sessions.OpenAsync(stored, new Login("newcomer", "shared-device", null, null, null, null), "127.0.0.1", CancellationToken.None);
        var signedOutRefresh = sessions.RefreshAsync(stored, signedOutToken, "127.0.0.1", CancellationToken.None);
        var signedOutLogout = Logout(signedOut, "signed-out");
        var replay = sessions.RefreshAsync(stored, replayed, "127.0.0.1", CancellationToken.None);
        var replayedLogout = Logout(replayedSession, "replayed");
        await writer.ReleaseAsync();

        await Task.WhenAll(writer.Login, newcomer, signedOutRefresh, signedOutLogout, replay, replayedLogout).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Null((await newcomer).Error);
        Assert.Same(Errors.SessionEnded, (await signedOutRefresh).Error);
        Assert.Null(await signedOutLogout);
        Assert.Same(Errors.RefreshTokenReused, (await replay).Error);
        Assert.Null(await replayedLogout);
        var reasons = await db.Sessions.AsNoTracking().Where(s => s.Id == signedOut || s.Id == replayedSession).ToDictionaryAsync(s => s.Id, s => s.RevokedReason);
        Assert.Equal(RevokeReasons.DeviceRebound, reasons[signedOut]);
        Assert.Equal(RevokeReasons.RefreshReuse, reasons[replayedSession]);
        string[] details = [$"session={signedOut}", $"session={replayedSession}"];
        Assert.Equal(0, await db.AuditEvents.CountAsync(e => e.Kind == AuditKinds.SessionRevoked && details.Contains(e.Detail!)));
        Assert.Equal([1, 5], changesPerCommit.Values);
    }

    /// <summary>
    /// An admin's or operator's end of many sessions at once (a user's sessions revoked, a ban, secure mode turned on,
    /// visitors turned off) takes their locks in key order, as the session writer's groups do: another node's group that
    /// holds a lower session and goes on to a higher one takes it at once. An UPDATE alone held the sessions its plan met
    /// first (here one made earlier with a higher key) while it waited for the lower, and the two waited for each other
    /// until PostgreSQL failed one of them, the admin's request among the possible ones. The session the other group
    /// ended keeps its end, and is not counted.
    /// </summary>
    [SkippableTheory]
    [InlineData("revoke")]
    [InlineData("ban")]
    [InlineData("secure mode on")]
    [InlineData("visitors off")]
    public async Task Ending_many_sessions_at_once_locks_them_in_key_order(string operation)
    {
        var network = await Server.CreateNetworkAsync();
        var visitors = operation == "visitors off";
        if (visitors)
            await Server.SetAnonymousModeAsync(network, Users.UserKind.Visitor, true);
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        // The test's clock stands still, so the sessions' keys (version 7 UUIDs) share its millisecond and their order is
        // random. A plan meets a network's sessions in the device index's order (devices are named in the order made)
        // and a user's in the table's (so does the user index, whose ties go by place in the table): sessions are made
        // until one made before the last, with a higher key, comes before it in both orders.
        var made = new List<string>();
        string? higher = null;
        while (higher is null)
        {
            Assert.True(made.Count < 16, "sixteen sessions made in one millisecond of the test's clock came in key order");
            var device = $"device-{made.Count:00}";
            if (visitors)
                Assert.Equal(HttpStatusCode.OK, (await Server.CreateVisitorSessionAsync(network, device)).StatusCode);
            else
                await Server.LoginAsync(network, "many", device);
            made.Add(device);
            var byKey = await DevicesAsync(db, network, byPlace: false);
            var byPlace = await DevicesAsync(db, network, byPlace: true);
            higher = made.Take(made.Count - 1).FirstOrDefault(d => byKey.IndexOf(d) > byKey.IndexOf(device) && byPlace.IndexOf(d) < byPlace.IndexOf(device));
        }
        var lower = made[^1];
        var connectionString = OtherNodeConnectionString(db);

        await using var otherNode = await OpenOtherNodeAsync(connectionString);
        await using var otherGroup = await otherNode.BeginTransactionAsync();
        // The other node's group logs the lower session out: the operation must leave its end as it is.
        await ExecuteAsync(otherNode, otherGroup, """
            UPDATE "Sessions" SET "RevokedAt" = now(), "RevokedReason" = 'logout' WHERE "NetworkId" = $1 AND "DeviceId" = $2
            """, network.Id, lower);

        var ended = EndAllAsync(operation, network);
        await WaitingForALockAsync(otherNode, otherNode, "Sessions");
        // NOWAIT: fails at once (55P03) if the admin's statement holds the higher session while it waits for the lower.
        await ExecuteAsync(otherNode, otherGroup, """SELECT 1 FROM "Sessions" WHERE "NetworkId" = $1 AND "DeviceId" = $2 FOR NO KEY UPDATE NOWAIT""",
            network.Id, higher);
        await otherGroup.CommitAsync();

        Assert.Equal(made.Count - 1, await ended.WaitAsync(TimeSpan.FromSeconds(30)));
        var reason = operation switch
        {
            "revoke" => "admin_revoked",
            "ban" => RevokeReasons.Banned,
            "secure mode on" => RevokeReasons.SecureModeOn,
            _ => RevokeReasons.AnonymousModeOff,
        };
        var reasons = await db.Sessions.AsNoTracking().Where(s => s.NetworkId == network.Id).ToDictionaryAsync(s => s.DeviceId, s => s.RevokedReason);
        Assert.Equal(made.ToDictionary(d => d, string? (d) => d == lower ? RevokeReasons.Logout : reason), reasons);
    }

    /// <summary>The network's sessions' devices in key order, or in the order of their places in the table.</summary>
    private static Task<List<string>> DevicesAsync(GatehouseDb db, TestNetwork network, bool byPlace) => (byPlace
        ? db.Database.SqlQuery<string>($"""SELECT "DeviceId" AS "Value" FROM "Sessions" WHERE "NetworkId" = {network.Id} ORDER BY ctid""")
        : db.Database.SqlQuery<string>($"""SELECT "DeviceId" AS "Value" FROM "Sessions" WHERE "NetworkId" = {network.Id} ORDER BY "Id" """))
        .ToListAsync();

    /// <summary>The operation, as the admin API or the console runs it; returns how many sessions it ended.</summary>
    private async Task<int> EndAllAsync(string operation, TestNetwork network)
    {
        await using var scope = Server.Services.CreateAsyncScope();
        var networks = scope.ServiceProvider.GetRequiredService<NetworkAdministration>();
        var users = scope.ServiceProvider.GetRequiredService<Users.UserAdministration>();
        var stored = (await networks.FindAsync(network.Id))!;
        switch (operation)
        {
            case "revoke":
                return await users.RevokeSessionsAsync((await users.FindAsync(network.Id, "many", default))!, "admin_revoked", "test", null, default);
            case "ban":
                await users.SetBanAsync((await users.FindAsync(network.Id, "many", default))!, true, "test", null, default);
                return await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Sessions
                    .CountAsync(s => s.NetworkId == network.Id && s.RevokedReason == RevokeReasons.Banned);
            case "secure mode on":
                return (await networks.SetSecureModeAsync(stored, true, "test")).Sessions;
            default:
                return await networks.SetAnonymousModeAsync(stored, Users.UserKind.Visitor, false, "test");
        }
    }

    private static async Task<Guid> SessionOfAsync(GatehouseDb db, string refreshToken) =>
        (await db.RefreshTokens.AsNoTracking().SingleAsync(r => r.Digest == Secrets.Digest(refreshToken))).SessionId;

    private static async Task InsertUserAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string networkId, string userId) =>
        await ExecuteAsync(connection, transaction,
            """
            INSERT INTO "Users" ("Id", "NetworkId", "UserId", "Kind", "IsGlobalBan", "IsDeleted", "CreatedAt", "UpdatedAt")
            VALUES ('other-' || $2, $1, $2, 0, false, false, now(), now())
            """, networkId, userId);
}
