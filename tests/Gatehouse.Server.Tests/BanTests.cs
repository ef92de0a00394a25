using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>The ban itself is set by the admin API (its own issue); here it is set in the database directly.</summary>
public abstract class BanTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    [SkippableFact]
    public async Task A_globally_banned_user_cannot_log_in_use_its_token_or_refresh()
    {
        var network = await server.CreateNetworkAsync();
        var session = await server.LoginAsync(network, "troll", "device-t");

        await using (var scope = server.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Users
                .Where(u => u.NetworkId == network.Id && u.UserId == "troll")
                .ExecuteUpdateAsync(s => s.SetProperty(u => u.IsGlobalBan, true));
        }

        using var login = await server.CreateSessionAsync(network, "troll", "device-t");
        using var me = await server.GetWithBearerAsync("/api/v3/users/me", session["accessToken"]!.GetValue<string>());
        using var refresh = await server.RefreshAsync(network, session["refreshToken"]!.GetValue<string>());

        await Envelope.AssertErrorAsync(login, HttpStatusCode.Forbidden, 400312);
        await Envelope.AssertErrorAsync(me, HttpStatusCode.Forbidden, 400312);
        await Envelope.AssertErrorAsync(refresh, HttpStatusCode.Forbidden, 400312);
    }
}

[Trait(Category.Name, Category.Fast)]
public sealed class BanTestsOnSqlite(SqliteServer server) : BanTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class BanTestsOnPostgres(PostgresServer server) : BanTests<PostgresServer>(server);
