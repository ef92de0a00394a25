using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Npgsql;

namespace Gatehouse.Server.Tests;

/// <summary>Two Gatehouse server processes on one PostgreSQL database, as behind a load balancer.</summary>
[Collection(RunsAlone.Name)]
[Trait(Category.Name, Category.Slow)]
[Trait(Category.Name, Category.Postgres)]
public sealed class MultiNodeTests : IAsyncLifetime
{
    private readonly string _database = "gatehouse_nodes_" + Guid.NewGuid().ToString("n");
    private readonly string _work = Directory.CreateTempSubdirectory("gatehouse-nodes").FullName;
    private string _connectionString = "";
    private ServerProcess _a = null!;
    private ServerProcess _b = null!;

    public async Task InitializeAsync()
    {
        await PostgresServer.ExecuteAsync($"CREATE DATABASE {_database}");
        _connectionString = new NpgsqlConnectionStringBuilder(PostgresServer.AdminConnectionString) { Database = _database }.ToString();
        _a = await ServerNode.StartAsync(_connectionString, Path.Combine(_work, "a"));
        _b = await ServerNode.StartAsync(_connectionString, Path.Combine(_work, "b"));
    }

    public async Task DisposeAsync()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await PostgresServer.ExecuteAsync($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)");
        GatehouseServer.DeleteDataDirectory(_work);
    }

    [SkippableFact]
    public async Task A_token_minted_on_one_node_works_on_the_other_and_a_revocation_on_one_is_refused_by_the_other_at_once()
    {
        var (networkId, apiKey) = await CreateNetworkAsync();
        await OperatorAsync("secure-mode", networkId, "on");
        var serverKey = Line(await OperatorAsync("server-key", "generate", networkId), "Server key:");

        using var mint = new HttpRequestMessage(HttpMethod.Get, "/api/v3/authentication/token?userId=alice");
        mint.Headers.Add("x-server-key", serverKey);
        using var minted = await _a.Http.SendAsync(mint);
        var authToken = (await minted.Content.ReadFromJsonAsync<string>())!;
        var session = await LoginAsync(_b, apiKey, "alice", "device-a", authToken);
        Assert.NotNull(session);
        var accessToken = session!["accessToken"]!.GetValue<string>();

        Assert.Equal(HttpStatusCode.OK, await MeAsync(_a, accessToken));
        using (var logout = new HttpRequestMessage(HttpMethod.Delete, "/api/v4/sessions"))
        {
            logout.Headers.Authorization = new("Bearer", accessToken);
            using var loggedOut = await _a.Http.SendAsync(logout);
            Assert.Equal(HttpStatusCode.OK, loggedOut.StatusCode);
        }
        var clock = Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(_b, accessToken));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"node B took {clock.Elapsed} to refuse the revoked session");
    }

    [SkippableFact]
    public async Task Restarting_postgres_under_load_loses_no_acknowledged_session_and_the_nodes_recover_by_themselves()
    {
        var (_, apiKey) = await CreateNetworkAsync();
        var acknowledged = new System.Collections.Concurrent.ConcurrentBag<(ServerProcess Node, string Token)>();
        var unexpected = new System.Collections.Concurrent.ConcurrentBag<string>();
        var restarted = false;
        var acknowledgedAfterRestart = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(40));

        async Task LoadAsync(ServerProcess node, string prefix)
        {
            for (var i = 0; i < 3000 && !stop.IsCancellationRequested; i++)
            {
                try
                {
                    using var response = await node.Http.PostAsJsonAsync("/api/v5/sessions", new { userId = $"{prefix}-{i}", deviceId = $"{prefix}-device-{i}" },
                        CancellationToken.None);
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
                        acknowledged.Add((node, body["accessToken"]!.GetValue<string>()));
                        if (Volatile.Read(ref restarted))
                            Interlocked.Increment(ref acknowledgedAfterRestart);
                    }
                    else if (response.StatusCode != HttpStatusCode.ServiceUnavailable)
                    {
                        unexpected.Add($"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                    }
                }
                catch (HttpRequestException e)
                {
                    unexpected.Add(e.Message);
                }
                if (Volatile.Read(ref restarted) && Volatile.Read(ref acknowledgedAfterRestart) >= 50)
                    return;
            }
        }

        foreach (var node in new[] { _a, _b })
            node.Http.DefaultRequestHeaders.Add("x-api-key", apiKey);
        var load = Task.WhenAll(LoadAsync(_a, "a"), LoadAsync(_b, "b"));
        while (acknowledged.Count < 100 && !stop.IsCancellationRequested)
            await Task.Delay(20);
        await SharedPostgres.RestartAsync();
        Volatile.Write(ref restarted, true);
        await load;

        Assert.Empty(unexpected);
        Assert.True(acknowledgedAfterRestart >= 50, $"only {acknowledgedAfterRestart} sessions were acknowledged after the restart");
        await _a.WaitReadyAsync();
        await _b.WaitReadyAsync();
        var lost = 0;
        foreach (var (node, token) in acknowledged)
        {
            var other = node == _a ? _b : _a;
            if (await MeAsync(other, token) != HttpStatusCode.OK)
                lost++;
        }
        Assert.Equal(0, lost);
    }

    private async Task<(string NetworkId, string ApiKey)> CreateNetworkAsync()
    {
        var output = await OperatorAsync("network", "create", "Nodes");
        return (output.Split(' ')[1], Line(output, "API key:"));
    }

    private async Task<string> OperatorAsync(params string[] args)
    {
        var (exit, output, error) = await OperatorRun.RunAsync(OperatorRun.OnPostgres(_connectionString, Path.Combine(_work, "operator")), args);
        Assert.True(exit == 0, error);
        return output;
    }

    private static async Task<JsonNode?> LoginAsync(ServerProcess node, string apiKey, string userId, string deviceId, string? authToken = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v5/sessions") { Content = JsonContent.Create(new { userId, deviceId, authToken }) };
        request.Headers.Add("x-api-key", apiKey);
        using var response = await node.Http.SendAsync(request);
        return response.StatusCode == HttpStatusCode.OK ? JsonNode.Parse(await response.Content.ReadAsStringAsync()) : null;
    }

    private static async Task<HttpStatusCode> MeAsync(ServerProcess node, string accessToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v3/users/me");
        request.Headers.Authorization = new("Bearer", accessToken);
        using var response = await node.Http.SendAsync(request);
        return response.StatusCode;
    }

    private static string Line(string text, string label) =>
        text.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith(label, StringComparison.Ordinal))[label.Length..].Trim();
}
