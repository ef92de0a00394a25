using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.Sockets;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using Xunit.Abstractions;

namespace Gatehouse.Server.Tests;

/// <summary>
/// A node outlives its database (#19): started while PostgreSQL is down it listens, says it lives but is not ready, and
/// serves once the database starts, without a restart; a database that hangs (every PostgreSQL process stopped with
/// SIGSTOP, which closes no connection) costs a request and the readiness probe a 503 within 5 s, not a minute, and the
/// log one line per failed request instead of three stack traces, even when the operator's connect timeout is longer
/// for the probe. Before, the node exited at start, and a frozen database held a request for most of a minute. Each
/// test stops or freezes a PostgreSQL cluster of its own, so the shared one keeps serving the tests running beside
/// them; the last two pin what those rest on: the timeouts Gatehouse adds and what counts as an outage.
/// </summary>
[Collection(RunsAlone.Name)]
[Trait(Category.Name, Category.Slow)]
[Trait(Category.Name, Category.Postgres)]
public sealed class DatabaseOutageTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    [SkippableFact]
    public async Task A_node_started_before_its_database_listens_answers_503_and_serves_once_the_database_starts()
    {
        await using var cluster = await PostgresCluster.CreateAsync();
        // Started once to take a port of its own, then down: the database the node is told of does not answer.
        await cluster.StartAsync();
        await cluster.StopAsync();
        var work = Directory.CreateTempSubdirectory("gatehouse-outage").FullName;
        try
        {
            await using var node = await ServerNode.StartAsync(cluster.ConnectionString, work, waitReady: false);
            await WaitUntilAsync(async () => (await TryGetAsync(node.Http, "/healthz")) == HttpStatusCode.OK, "the node never answered /healthz", node);

            using (var ready = await node.Http.GetAsync("/readyz"))
                Assert.StartsWith("Gatehouse is starting", await Envelope.AssertErrorAsync(ready, HttpStatusCode.ServiceUnavailable, 500000), StringComparison.Ordinal);
            using (var login = await node.Http.PostAsJsonAsync("/api/v5/sessions", new { userId = "alice", deviceId = "device-a" }))
            {
                Assert.StartsWith("Gatehouse is starting", await Envelope.AssertErrorAsync(login, HttpStatusCode.ServiceUnavailable, 500000), StringComparison.Ordinal);
                Assert.Equal("1", login.Headers.GetValues("Retry-After").Single());
            }
            // It keeps trying, and keeps running, until the database comes.
            await WaitUntilAsync(() => Task.FromResult(Occurrences(node.Output, "the database does not answer yet") >= 2),
                "the node did not say twice that it waits for the database", node);
            Assert.False(node.HasExited, node.Output);

            await cluster.StartAsync();
            await node.WaitReadyAsync();

            // The first start ran once the database came: its API key opens a session. The process's output is a
            // pipe, not a terminal, so the secrets went to the private file and the output only says where.
            Assert.DoesNotContain("API key:", node.Output, StringComparison.Ordinal);
            var secrets = await File.ReadAllTextAsync(Path.Combine(work, Operations.Bootstrap.DefaultSecretsFileName));
            var apiKey = secrets.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("API key:", StringComparison.Ordinal))["API key:".Length..].Trim();
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v5/sessions") { Content = JsonContent.Create(new { userId = "alice", deviceId = "device-a" }) };
            request.Headers.Add("x-api-key", apiKey);
            using var session = await node.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, session.StatusCode);
            Assert.DoesNotContain("   at ", node.Output, StringComparison.Ordinal);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            GatehouseServer.DeleteDataDirectory(work);
        }
    }

    [SkippableFact]
    public async Task A_frozen_database_costs_a_request_and_readiness_a_503_within_5_s_and_one_log_line_and_the_node_serves_when_it_thaws()
    {
        await using var cluster = await PostgresCluster.CreateAsync();
        await cluster.StartAsync();
        var log = new ConcurrentQueue<LogLine>();
        var server = new GatehouseServer { Configure = builder => builder.Logging.AddProvider(new LogRecorder(log)) };
        server.Settings["Gatehouse:Database:Provider"] = "PostgreSQL";
        server.Settings["Gatehouse:Database:ConnectionString"] = cluster.ConnectionString;
        await server.InitializeAsync();
        try
        {
            var network = await server.CreateNetworkAsync();
            var accessToken = (await server.LoginAsync(network, "alice", "device-a"))["accessToken"]!.GetValue<string>();
            var neverAsked = (await server.LoginAsync(network, "carol", "device-c"))["accessToken"]!.GetValue<string>();
            // The node keeps a session only while it hears other nodes' writes; its listening connection opens in the
            // background, after the node answers (under a busy machine, seconds after): until then every lookup reads.
            var writes = server.Services.GetRequiredService<CommittedWrites>();
            await WaitUntilAsync(() => Task.FromResult(writes.HearsOtherWriters), "the node never started listening for other nodes' writes");
            using (var me = await server.GetWithBearerAsync("/api/v3/users/me", accessToken))
                Assert.Equal(HttpStatusCode.OK, me.StatusCode);
            await server.FlushAuditAsync();
            log.Clear();
            Assert.True(writes.HearsOtherWriters, "the node stopped hearing other nodes' writes before the database froze");

            await cluster.FreezeAsync();
            try
            {
                // A frozen database commits nothing, so the sessions this node keeps are still true: served at once
                // (until the listening connection's heartbeat times out, seconds later, and every lookup reads).
                using (var kept = await server.GetWithBearerAsync("/api/v3/users/me", accessToken))
                    Assert.Equal(HttpStatusCode.OK, kept.StatusCode);
                // A session this node never read must be read; a login writes.
                using var me = await TimedAsync(() => server.GetWithBearerAsync("/api/v3/users/me", neverAsked));
                using var login = await TimedAsync(() => server.CreateSessionAsync(network, "bob", "device-b"));
                using var ready = await TimedAsync(() => server.Http.GetAsync("/readyz"));
                output.WriteLine($"frozen: bearer request {me.Took}, login {login.Took}, /readyz {ready.Took}");

                foreach (var answer in new[] { me, login })
                {
                    Assert.Equal("The database does not answer; try again shortly.",
                        await Envelope.AssertErrorAsync(answer.Response, HttpStatusCode.ServiceUnavailable, 500000));
                    Assert.Equal("1", answer.Response.Headers.GetValues("Retry-After").Single());
                    Assert.True(answer.Took < Bound, $"{answer.Response.RequestMessage!.RequestUri} took {answer.Took} to fail");
                }
                await Envelope.AssertErrorAsync(ready.Response, HttpStatusCode.ServiceUnavailable, 500000);
                Assert.True(ready.Took < Bound, $"/readyz took {ready.Took} to fail");

                // The node also says, once, that it stopped hearing other nodes' writes: that line is not a request's.
                var lines = log.Where(line => line.Category != typeof(WriteNotifications).FullName).ToList();
                foreach (var line in lines)
                    output.WriteLine(line.ToString());
                Assert.True(lines.Count == 2, $"{lines.Count} log lines for 2 failed requests:\n{string.Join('\n', lines)}");
                Assert.All(lines, line =>
                {
                    Assert.Equal(LogLevel.Warning, line.Level);
                    Assert.Null(line.Exception);
                    Assert.Contains("The database does not answer", line.Message, StringComparison.Ordinal);
                });
            }
            finally
            {
                await cluster.ThawAsync();
            }

            await WaitUntilAsync(async () => (await TryGetAsync(server.Http, "/readyz")) == HttpStatusCode.OK, "the node never became ready again");
            using (var me = await server.GetWithBearerAsync("/api/v3/users/me", accessToken))
                Assert.Equal(HttpStatusCode.OK, me.StatusCode);
            await server.LoginAsync(network, "bob", "device-b");
        }
        finally
        {
            await server.DisposeAsync();
            NpgsqlConnection.ClearAllPools();
        }
    }

    [SkippableFact]
    public async Task Readiness_answers_within_2_s_on_a_frozen_database_even_when_the_operator_set_a_longer_connect_timeout()
    {
        await using var cluster = await PostgresCluster.CreateAsync();
        await cluster.StartAsync();
        var server = new GatehouseServer();
        server.Settings["Gatehouse:Database:Provider"] = "PostgreSQL";
        server.Settings["Gatehouse:Database:ConnectionString"] = cluster.ConnectionString + ";Timeout=15;Command Timeout=30";
        await server.InitializeAsync();
        try
        {
            using (var ready = await server.Http.GetAsync("/readyz"))
                Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            await cluster.FreezeAsync();
            try
            {
                using var frozen = await TimedAsync(() => server.Http.GetAsync("/readyz"));
                await Envelope.AssertErrorAsync(frozen.Response, HttpStatusCode.ServiceUnavailable, 500000);
                output.WriteLine($"frozen: /readyz {frozen.Took}");
                Assert.True(frozen.Took < TimeSpan.FromSeconds(3), $"/readyz took {frozen.Took} to fail");
            }
            finally
            {
                await cluster.ThawAsync();
            }
        }
        finally
        {
            await server.DisposeAsync();
            NpgsqlConnection.ClearAllPools();
        }
    }

    [SkippableFact]
    public void Gatehouse_sets_the_timeouts_pool_size_preparation_and_reset_the_operator_s_connection_string_leaves_out_and_keeps_the_ones_it_names()
    {
        static NpgsqlConnectionStringBuilder Applied(string connectionString) => new(StorageSetup.PostgreSqlConnectionString(new GatehouseOptions
        {
            Database = new DatabaseOptions { Provider = StorageSetup.PostgreSql, ConnectionString = connectionString },
        }));

        var defaults = Applied("Host=db;Database=gatehouse;Username=gatehouse;Password=hunter2");
        var named = Applied("Host=db;Password=hunter2;timeout=10;CommandTimeout=0;maximum pool size=40;MaxAutoPrepare=0;noresetonclose=false");

        Assert.Equal((1, 2, 16, 64, true, "hunter2"),
            (defaults.Timeout, defaults.CommandTimeout, defaults.MaxPoolSize, defaults.MaxAutoPrepare, defaults.NoResetOnClose, defaults.Password));
        Assert.Equal((10, 0, 40, 0, false, "hunter2"),
            (named.Timeout, named.CommandTimeout, named.MaxPoolSize, named.MaxAutoPrepare, named.NoResetOnClose, named.Password));
    }

    [SkippableFact]
    public void A_database_that_does_not_answer_is_told_from_a_query_that_failed()
    {
        static PostgresException Postgres(string sqlState) => new("message", "FATAL", "FATAL", sqlState);
        var refused = new NpgsqlException("Failed to connect to 127.0.0.1:5432", new SocketException((int)SocketError.ConnectionRefused));

        Assert.All(new Exception[]
        {
            Postgres("57P01"), Postgres("57P03"), Postgres("08006"), Postgres("53300"), refused,
            // As EF Core's execution strategy and SaveChanges wrap them.
            new InvalidOperationException("An exception has been raised that is likely due to a transient failure.", refused),
            new DbUpdateException("An error occurred while saving the entity changes.", Postgres("57P01")),
            new NpgsqlException("Exception while reading from stream", new TimeoutException("Timeout during reading attempt")),
            new SqliteException("database is locked", 5), new SqliteException("unable to open database file", 14),
        }, failure => Assert.True(DatabaseOutage.Is(failure), failure.ToString()));
        Assert.All(new Exception[]
        {
            Postgres("23505"), Postgres("40001"), Postgres("40P01"), Postgres("42P01"), Postgres("28P01"),
            new DbUpdateException("An error occurred while saving the entity changes.", Postgres("23505")),
            new SqliteException("constraint failed", 19), new InvalidOperationException("Sequence contains no elements"),
        }, failure => Assert.False(DatabaseOutage.Is(failure), failure.ToString()));
        Assert.Equal("NpgsqlException: Failed to connect to 127.0.0.1:5432 (SocketException: Connection refused)",
            DatabaseOutage.Describe(new InvalidOperationException("transient", refused)));
    }

    private sealed record Timed(HttpResponseMessage Response, TimeSpan Took) : IDisposable
    {
        public void Dispose() => Response.Dispose();
    }

    /// <summary>The whole answer, body included, and how long it took.</summary>
    private static async Task<Timed> TimedAsync(Func<Task<HttpResponseMessage>> send)
    {
        var clock = Stopwatch.StartNew();
        var response = await send();
        await response.Content.LoadIntoBufferAsync();
        return new Timed(response, clock.Elapsed);
    }

    private static async Task<HttpStatusCode?> TryGetAsync(HttpClient http, string path)
    {
        try
        {
            using var response = await http.GetAsync(path);
            return response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string failure, ServerProcess? node = null)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(30) || node?.HasExited == true)
                Assert.Fail($"{failure}{(node is null ? "" : $"; it said:\n{node.Output}")}");
            await Task.Delay(100);
        }
    }

    private static int Occurrences(string text, string part) =>
        text.Split(part, StringSplitOptions.None).Length - 1;
}
