using System.Text.Json.Nodes;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// On SQLite the bearer check keeps sessions it has read in memory (LiveSessionCache). Whatever changes a session
/// or its user, through the API or straight in the database, the next request must see it; a write not yet
/// committed must not be seen.
/// </summary>
public abstract class LiveSessionCacheTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    [SkippableFact]
    public async Task A_session_already_read_shows_a_changed_display_name_at_the_next_request()
    {
        var network = await server.CreateNetworkAsync();
        var token = await LoginAndReadAsync(network, "renamed", "device-renamed");

        await ChangeAsync(db => db.Users.Where(u => u.NetworkId == network.Id && u.UserId == "renamed")
            .ExecuteUpdateAsync(s => s.SetProperty(u => u.DisplayName, "New name")));

        using var me = await server.GetWithBearerAsync("/api/v3/users/me", token);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        Assert.Equal("New name", JsonNode.Parse(await me.Content.ReadAsStringAsync())!["users"]![0]!["displayName"]!.GetValue<string>());
    }

    [SkippableFact]
    public async Task A_session_already_read_is_refused_at_the_next_request_after_logout_ban_or_revocation()
    {
        var network = await server.CreateNetworkAsync();

        var loggedOut = await LoginAndReadAsync(network, "leaver", "device-leaver");
        using (var logout = new HttpRequestMessage(HttpMethod.Delete, "/api/v4/sessions"))
        {
            logout.Headers.Authorization = new("Bearer", loggedOut);
            using var answer = await server.Http.SendAsync(logout);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        }
        using (var me = await server.GetWithBearerAsync("/api/v3/users/me", loggedOut))
            await Envelope.AssertUnauthorizedAsync(me);

        var banned = await LoginAndReadAsync(network, "villain", "device-villain");
        await ChangeAsync(db => db.Users.Where(u => u.NetworkId == network.Id && u.UserId == "villain")
            .ExecuteUpdateAsync(s => s.SetProperty(u => u.IsGlobalBan, true)));
        using (var me = await server.GetWithBearerAsync("/api/v3/users/me", banned))
            await Envelope.AssertErrorAsync(me, HttpStatusCode.Forbidden, 400312);

        var revoked = await LoginAndReadAsync(network, "revoked", "device-revoked");
        await ChangeAsync(db => db.Sessions.Where(s => s.NetworkId == network.Id && s.DeviceId == "device-revoked")
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.RevokedAt, DateTimeOffset.UtcNow)));
        using (var me = await server.GetWithBearerAsync("/api/v3/users/me", revoked))
            await Envelope.AssertUnauthorizedAsync(me);
    }

    [SkippableFact]
    public async Task A_revocation_inside_a_transaction_is_seen_when_it_commits_not_before()
    {
        var network = await server.CreateNetworkAsync();
        var token = await LoginAndReadAsync(network, "patient", "device-patient");

        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        await using (var tx = await db.Database.BeginTransactionAsync())
        {
            var session = await db.Sessions.SingleAsync(s => s.NetworkId == network.Id && s.DeviceId == "device-patient");
            session.RevokedAt = DateTimeOffset.UtcNow;
            await db.SaveChangesAsync();

            using (var before = await server.GetWithBearerAsync("/api/v3/users/me", token))
                Assert.Equal(HttpStatusCode.OK, before.StatusCode);
            await tx.CommitAsync();
        }

        using var after = await server.GetWithBearerAsync("/api/v3/users/me", token);
        await Envelope.AssertUnauthorizedAsync(after);
    }

    /// <summary>Logs in and reads the session once through the bearer check, so it is in the cache if there is one.</summary>
    private async Task<string> LoginAndReadAsync(TestNetwork network, string userId, string deviceId)
    {
        var token = (await server.LoginAsync(network, userId, deviceId))["accessToken"]!.GetValue<string>();
        using var me = await server.GetWithBearerAsync("/api/v3/users/me", token);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        return token;
    }

    private async Task ChangeAsync(Func<GatehouseDb, Task<int>> change)
    {
        await using var scope = server.Services.CreateAsyncScope();
        Assert.Equal(1, await change(scope.ServiceProvider.GetRequiredService<GatehouseDb>()));
    }
}

[Trait(Category.Name, Category.Fast)]
public sealed class LiveSessionCacheTestsOnSqlite(SqliteServer server) : LiveSessionCacheTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class LiveSessionCacheTestsOnPostgres(PostgresServer server) : LiveSessionCacheTests<PostgresServer>(server);
