using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Npgsql;
using Xunit.Abstractions;

namespace Gatehouse.Server.Tests;

/// <summary>Two Gatehouse server processes on one PostgreSQL database, as behind a load balancer.</summary>
[Collection(RunsAlone.Name)]
[Trait(Category.Name, Category.Slow)]
[Trait(Category.Name, Category.Postgres)]
public sealed class MultiNodeTests(ITestOutputHelper output) : IAsyncLifetime
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

    /// <summary>
    /// Each kind of revocation is made through node A (its API) or an operator command (the database), while node B
    /// holds the revoked thing in its caches; the delay is from the change's answer to B's first refusal, B asked
    /// back to back. The bound is the issue's: 100 ms at p99 (docs/deployment.md quotes the figures).
    /// </summary>
    [SkippableFact]
    public async Task Every_revocation_made_on_one_node_is_refused_by_the_other_within_100_ms_at_p99()
    {
        var (networkId, apiKey) = await CreateNetworkAsync();
        await OperatorAsync("admin", "create", "ops@example.com");
        // The console grants network roles; no operator command does, so the row is written as the console would.
        await using (var connection = new NpgsqlConnection(_connectionString))
        {
            await connection.OpenAsync();
            await using var grant = new NpgsqlCommand("""
                INSERT INTO "AdminMemberships" ("AdminId", "NetworkId", "Role", "CanAccessSecureMode", "Disabled")
                SELECT "Id", @network, 'Admin', true, false FROM "Admins" WHERE "Email" = 'ops@example.com'
                """, connection);
            grant.Parameters.AddWithValue("network", networkId);
            Assert.Equal(1, await grant.ExecuteNonQueryAsync());
        }
        var adminToken = Line(await OperatorAsync("admin-token", "generate", networkId, "ops@example.com"), "Admin token:");
        Assert.Equal(1, await CachesTrustedAsync(_b));
        var delays = new List<(string Kind, TimeSpan Delay)>();

        // 105 revocations in all: with fewer than 101, the 99th percentile is the maximum, and one stall of the machine
        // (a CI run once saw a single logout at 556 ms, the next one at 4 ms) would fail a bound that is stated as a p99.
        for (var i = 0; i < 40; i++)
        {
            var token = await SignedInAndKnownToBAsync(apiKey, $"leaving-{i}");
            using (var logout = new HttpRequestMessage(HttpMethod.Delete, "/api/v4/sessions"))
            {
                logout.Headers.Authorization = new("Bearer", token);
                using var loggedOut = await _a.Http.SendAsync(logout);
                Assert.Equal(HttpStatusCode.OK, loggedOut.StatusCode);
            }
            delays.Add(("logout", await UntilRefusedAsync(() => MeAsync(_b, token))));
        }

        for (var i = 0; i < 35; i++)
        {
            var token = await SignedInAndKnownToBAsync(apiKey, $"banned-{i}");
            using (var ban = new HttpRequestMessage(HttpMethod.Post, $"/api/v4/admin/users/banned-{i}/ban"))
            {
                ban.Headers.Add("x-admin-token", adminToken);
                using var banned = await _a.Http.SendAsync(ban);
                Assert.Equal(HttpStatusCode.OK, banned.StatusCode);
            }
            delays.Add(("ban", await UntilRefusedAsync(() => MeAsync(_b, token))));
        }

        for (var i = 0; i < 6; i++)
        {
            var oldKey = apiKey;
            Assert.NotNull(await LoginAsync(_b, oldKey, $"rekeyed-{i}", $"device-rekeyed-{i}"));
            apiKey = Line(await OperatorAsync("network", "regenerate-api-key", networkId), "API key:");
            delays.Add(("API key regenerated", await UntilRefusedAsync(async () =>
                await LoginAsync(_b, oldKey, $"rekeyed-{i}", $"device-rekeyed-{i}") is null ? HttpStatusCode.Unauthorized : HttpStatusCode.OK)));
        }

        for (var i = 0; i < 6; i++)
        {
            await OperatorAsync("secure-mode", networkId, "off");
            var token = await SignedInAndKnownToBAsync(apiKey, $"switched-{i}");
            await OperatorAsync("secure-mode", networkId, "on");
            delays.Add(("secure mode on (ends sessions)", await UntilRefusedAsync(() => MeAsync(_b, token))));
            delays.Add(("secure mode on (logins need an auth token)", await UntilRefusedAsync(async () =>
                await LoginAsync(_b, apiKey, $"switched-{i}", $"device-switched-{i}") is null ? HttpStatusCode.Unauthorized : HttpStatusCode.OK)));
        }

        // A network never has more than two valid keys: a new key ends the one already in its grace period at once.
        var keys = new List<string>
        {
            Line(await OperatorAsync("server-key", "generate", networkId), "Server key:"),
            Line(await OperatorAsync("server-key", "generate", networkId), "Server key:"),
        };
        for (var i = 0; i < 6; i++)
        {
            var inGrace = keys[^2];
            Assert.Equal(HttpStatusCode.OK, await MintAsync(_b, inGrace));
            keys.Add(Line(await OperatorAsync("server-key", "generate", networkId), "Server key:"));
            delays.Add(("server key replaced", await UntilRefusedAsync(() => MintAsync(_b, inGrace))));
        }

        // Node B keeps each admin token it has checked; the operator's revocation is a write to the database alone.
        for (var i = 0; i < 6; i++)
        {
            var held = Line(await OperatorAsync("admin-token", "generate", networkId, "ops@example.com"), "Admin token:");
            Assert.Equal(HttpStatusCode.OK, await AdminReadAsync(_b, held));
            Assert.Equal(HttpStatusCode.OK, await AdminReadAsync(_b, held));
            await OperatorAsync("admin-token", "revoke", networkId, "ops@example.com");
            delays.Add(("admin token revoked", await UntilRefusedAsync(() => AdminReadAsync(_b, held))));
        }

        foreach (var kind in delays.GroupBy(d => d.Kind))
        {
            var sorted = kind.Select(d => d.Delay.TotalMilliseconds).Order().ToList();
            output.WriteLine($"{kind.Key}: {sorted.Count} revocations, median {sorted[sorted.Count / 2]:0.0} ms, max {sorted[^1]:0.0} ms");
        }
        var all = delays.Select(d => d.Delay.TotalMilliseconds).Order().ToList();
        var p99 = all[(int)Math.Ceiling(all.Count * 0.99) - 1];
        output.WriteLine($"all: {all.Count} revocations, p99 {p99:0.0} ms");
        Assert.True(p99 < 100, $"p99 {p99:0.0} ms: {string.Join(", ", delays.Where(d => d.Delay.TotalMilliseconds >= 100).Select(d => $"{d.Kind} {d.Delay.TotalMilliseconds:0} ms"))}");
        Assert.Equal(1, await CachesTrustedAsync(_b));
    }

    /// <summary>
    /// The listening connection is ended by the database (as a restart or a network cut would). While node B does not
    /// listen it reads every lookup, so a logout on A is refused by B at once; once it listens again it counts what it
    /// kept as stale, so a session logged out while it was deaf, and kept by B from before, is refused too.
    /// </summary>
    [SkippableFact]
    public async Task A_node_that_stops_hearing_other_nodes_writes_reads_through_and_then_serves_nothing_kept_from_before()
    {
        var (_, apiKey) = await CreateNetworkAsync();
        var askedWhileDeaf = await SignedInAndKnownToBAsync(apiKey, "asked-while-deaf");
        var askedAfterwards = await SignedInAndKnownToBAsync(apiKey, "asked-afterwards");
        Assert.Equal(1, await CachesTrustedAsync(_b));

        // The nodes try to listen again every second; ending their listening connections every 10 ms keeps them
        // deaf for all but a few milliseconds of each second while this part runs.
        using var deafness = new CancellationTokenSource();
        var killer = Task.Run(async () =>
        {
            await using var admin = new NpgsqlConnection(PostgresServer.AdminConnectionString);
            await admin.OpenAsync();
            await using var kill = new NpgsqlCommand(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = @database AND application_name = 'gatehouse-listener'", admin);
            kill.Parameters.AddWithValue("database", _database);
            var ended = 0L;
            while (!deafness.IsCancellationRequested)
            {
                ended += (long)(await kill.ExecuteScalarAsync())!;
                await Task.Delay(10);
            }
            return ended;
        });
        var deafSince = Stopwatch.StartNew();
        while (await CachesTrustedAsync(_b) != 0)
        {
            Assert.True(deafSince.Elapsed < TimeSpan.FromSeconds(2), "node B still trusts its caches after its listening connection was ended");
            await Task.Delay(10);
        }

        await LogoutAsync(_a, askedWhileDeaf);
        await LogoutAsync(_a, askedAfterwards);
        // Refused every time; at least once with B deaf both before and after it answered, so from reading through.
        var readThrough = false;
        for (var attempt = 0; attempt < 5 && !readThrough; attempt++)
        {
            var deafBefore = await CachesTrustedAsync(_b) == 0;
            Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(_b, askedWhileDeaf));
            readThrough = deafBefore && await CachesTrustedAsync(_b) == 0;
        }
        Assert.True(readThrough, "node B was never deaf both before and after answering");
        Assert.Contains("Stopped hearing other nodes' writes", _b.Output, StringComparison.Ordinal);
        await deafness.CancelAsync();
        Assert.True(await killer >= 2, "the listening connections were not ended");

        var listeningAgain = Stopwatch.StartNew();
        while (await CachesTrustedAsync(_b) != 1)
        {
            Assert.True(listeningAgain.Elapsed < TimeSpan.FromSeconds(10), "node B did not listen again");
            await Task.Delay(50);
        }
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(_b, askedAfterwards));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(_b, askedWhileDeaf));
        var kept = await SignedInAndKnownToBAsync(apiKey, "after");
        await LogoutAsync(_a, kept);
        Assert.True(await UntilRefusedAsync(() => MeAsync(_b, kept)) < TimeSpan.FromSeconds(1));
    }

    /// <summary>
    /// Logins, refreshes and logouts wait for their group's commit without holding a pooled connection: the group's
    /// writer needs one, so 64 requests each holding one of 4 would leave it none and time out (503).
    /// </summary>
    [SkippableFact]
    public async Task A_node_with_four_pooled_connections_answers_64_parallel_logins_refreshes_and_logouts()
    {
        var (_, apiKey) = await CreateNetworkAsync();
        await using var small = await ServerNode.StartAsync(_connectionString + ";Maximum Pool Size=4", Path.Combine(_work, "small"));
        small.Http.DefaultRequestHeaders.Add("x-api-key", apiKey);

        var sessions = await Task.WhenAll(Enumerable.Range(0, 64).Select(async i =>
        {
            using var response = await small.Http.PostAsJsonAsync("/api/v5/sessions", new { userId = $"pool-{i}", deviceId = $"pool-device-{i}" });
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"login: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        }));
        var renewed = await Task.WhenAll(sessions.Select(async session =>
        {
            using var response = await small.Http.PostAsJsonAsync("/api/v4/sessions/refresh", new { refreshToken = session["refreshToken"]!.GetValue<string>() });
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"refresh: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["accessToken"]!.GetValue<string>();
        }));
        await Task.WhenAll(renewed.Select(token => LogoutAsync(small, token)));
        Assert.All(await Task.WhenAll(renewed.Select(token => MeAsync(_b, token))), status => Assert.Equal(HttpStatusCode.Unauthorized, status));
    }

    /// <summary>A session opened on A and answered by B twice, so B keeps it.</summary>
    private async Task<string> SignedInAndKnownToBAsync(string apiKey, string userId)
    {
        var session = await LoginAsync(_a, apiKey, userId, "device-" + userId);
        Assert.NotNull(session);
        var token = session!["accessToken"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.OK, await MeAsync(_b, token));
        Assert.Equal(HttpStatusCode.OK, await MeAsync(_b, token));
        return token;
    }

    private static async Task LogoutAsync(ServerProcess node, string accessToken)
    {
        using var logout = new HttpRequestMessage(HttpMethod.Delete, "/api/v4/sessions");
        logout.Headers.Authorization = new("Bearer", accessToken);
        using var loggedOut = await node.Http.SendAsync(logout);
        Assert.Equal(HttpStatusCode.OK, loggedOut.StatusCode);
    }

    private static async Task<HttpStatusCode> MintAsync(ServerProcess node, string serverKey)
    {
        using var mint = new HttpRequestMessage(HttpMethod.Get, "/api/v3/authentication/token?userId=alice");
        mint.Headers.Add("x-server-key", serverKey);
        using var minted = await node.Http.SendAsync(mint);
        return minted.StatusCode;
    }

    private static async Task<HttpStatusCode> AdminReadAsync(ServerProcess node, string adminToken)
    {
        using var read = new HttpRequestMessage(HttpMethod.Get, "/api/v4/admin/users?limit=1");
        read.Headers.Add("x-admin-token", adminToken);
        using var answer = await node.Http.SendAsync(read);
        return answer.StatusCode;
    }

    /// <summary>From now until <paramref name="probe"/> first answers anything but 200 (asked back to back, at most 5 s).</summary>
    private static async Task<TimeSpan> UntilRefusedAsync(Func<Task<HttpStatusCode>> probe)
    {
        var clock = Stopwatch.StartNew();
        while (await probe() == HttpStatusCode.OK)
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), "still accepted 5 s after its revocation");
        return clock.Elapsed;
    }

    /// <summary>The node's <c>gatehouse_caches_trusted</c> gauge as /metrics serves it.</summary>
    private static async Task<int> CachesTrustedAsync(ServerProcess node)
    {
        var metrics = await node.Http.GetStringAsync("/metrics");
        var line = metrics.Split('\n').Single(l => l.StartsWith("gatehouse_caches_trusted", StringComparison.Ordinal));
        // name{labels} value [timestamp]
        var sample = line.Contains('}', StringComparison.Ordinal) ? line[(line.IndexOf('}', StringComparison.Ordinal) + 1)..] : line[line.IndexOf(' ', StringComparison.Ordinal)..];
        return (int)double.Parse(sample.Trim().Split(' ')[0], CultureInfo.InvariantCulture);
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
