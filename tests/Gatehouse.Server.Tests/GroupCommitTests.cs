using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// Logins that arrive together share one durable commit (SessionService). Whatever the grouping, each answer must
/// be what one transaction per login would give, in some order.
/// </summary>
public abstract class GroupCommitTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    [SkippableFact]
    public async Task Logins_arriving_together_share_commits_and_each_gets_a_working_session()
    {
        var network = await server.CreateNetworkAsync();
        using var loginsPerCommit = new InstrumentRecording<int>(server.Services, "gatehouse.sessions.changes_per_commit");

        var tokens = await Task.WhenAll(Enumerable.Range(0, 150).Select(async i =>
            (await server.LoginAsync(network, $"crowd-{i}", $"crowd-device-{i}"))["accessToken"]!.GetValue<string>()));

        foreach (var token in tokens)
        {
            using var me = await server.GetWithBearerAsync("/api/v3/users/me", token);
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        }
        var commits = loginsPerCommit.Values;
        Assert.Equal(150, commits.Sum());
        Assert.True(commits.Length < 150, $"150 concurrent logins took {commits.Length} commits");
    }

    [SkippableFact]
    public async Task Concurrent_logins_of_one_user_on_one_device_leave_exactly_the_cap_live()
    {
        var network = await server.CreateNetworkAsync();

        var tokens = await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
            (await server.LoginAsync(network, "eager", "device-eager"))["accessToken"]!.GetValue<string>()));

        Assert.Equal(5, await CountLiveAsync(tokens));
    }

    [SkippableFact]
    public async Task Many_users_logging_in_on_one_device_at_once_leave_exactly_one_signed_in()
    {
        var network = await server.CreateNetworkAsync();

        var tokens = await Task.WhenAll(Enumerable.Range(0, 20).Select(async i =>
            (await server.LoginAsync(network, $"shared-{i}", "device-shared"))["accessToken"]!.GetValue<string>()));

        Assert.Equal(1, await CountLiveAsync(tokens));
    }

    [SkippableFact]
    public async Task A_banned_users_login_among_others_is_refused_and_only_it()
    {
        var network = await server.CreateNetworkAsync();
        await server.LoginAsync(network, "outcast", "device-outcast");
        await using (var scope = server.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Users
                .Where(u => u.NetworkId == network.Id && u.UserId == "outcast")
                .ExecuteUpdateAsync(s => s.SetProperty(u => u.IsGlobalBan, true));
        }

        var answers = await Task.WhenAll(Enumerable.Range(0, 30).Select(async i =>
        {
            var userId = i == 15 ? "outcast" : $"neighbour-{i}";
            using var response = await server.CreateSessionAsync(network, userId, $"device-n-{i}");
            return (userId, response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }));

        Assert.All(answers.Where(a => a.userId != "outcast"), a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));
        var refused = Assert.Single(answers, a => a.userId == "outcast");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("400312", refused.Body, StringComparison.Ordinal);
    }

    private async Task<int> CountLiveAsync(IEnumerable<string> accessTokens)
    {
        var live = 0;
        foreach (var token in accessTokens)
        {
            using var me = await server.GetWithBearerAsync("/api/v3/users/me", token);
            if (me.StatusCode == HttpStatusCode.OK)
                live++;
        }
        return live;
    }
}

[Trait(Category.Name, Category.Fast)]
public sealed class GroupCommitTestsOnSqlite(SqliteServer server) : GroupCommitTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class GroupCommitTestsOnPostgres(PostgresServer server) : GroupCommitTests<PostgresServer>(server);
