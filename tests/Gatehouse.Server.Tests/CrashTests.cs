using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Npgsql;
using Xunit.Abstractions;

namespace Gatehouse.Server.Tests;

/// <summary>
/// SIGKILL in the middle of a session-creation load, five times, then a restart: every session whose 200 reached
/// the client must still work. Figures: acknowledged sessions, lost (must be 0), and the database's integrity.
/// </summary>
[Collection(RunsAlone.Name)]
[Trait(Category.Name, Category.Slow)]
[Trait(Category.Name, Category.Postgres)]
public sealed class CrashTests(ITestOutputHelper output) : IDisposable
{
    private const int Rounds = 5;
    private const int Workers = 8;
    private readonly string _work = Directory.CreateTempSubdirectory("gatehouse-crash").FullName;

    public void Dispose() => GatehouseServer.DeleteDataDirectory(_work);

    [SkippableFact]
    public async Task Killed_five_times_under_load_on_sqlite_no_acknowledged_session_is_lost()
    {
        var data = Path.Combine(_work, "data");
        await CrashAndCheckAsync(postgres: null, data);

        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(data, "gatehouse.db") }.ToString());
        await connection.OpenAsync();
        await using var check = connection.CreateCommand();
        check.CommandText = "PRAGMA integrity_check";
        Assert.Equal("ok", (string?)await check.ExecuteScalarAsync());
    }

    [SkippableFact]
    public async Task Killed_five_times_under_load_on_postgresql_no_acknowledged_session_is_lost()
    {
        var database = "gatehouse_crash_" + Guid.NewGuid().ToString("n");
        await PostgresServer.ExecuteAsync($"CREATE DATABASE {database}");
        try
        {
            var connectionString = new NpgsqlConnectionStringBuilder(PostgresServer.AdminConnectionString) { Database = database }.ToString();
            await CrashAndCheckAsync(connectionString, Path.Combine(_work, "data"));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await PostgresServer.ExecuteAsync($"DROP DATABASE IF EXISTS {database} WITH (FORCE)");
        }
    }

    private async Task CrashAndCheckAsync(string? postgres, string data)
    {
        var acknowledged = new ConcurrentBag<string>();
        string? apiKey = null;
        for (var round = 0; round < Rounds; round++)
        {
            await using var server = await ServerNode.StartAsync(postgres, data);
            apiKey ??= await CreateNetworkAsync(postgres, data);
            server.Http.DefaultRequestHeaders.Add("x-api-key", apiKey);
            using var stop = new CancellationTokenSource();
            var load = Enumerable.Range(0, Workers).Select(worker => Task.Run(async () =>
            {
                for (var i = 0; i < 100_000 && !stop.IsCancellationRequested; i++)
                {
                    try
                    {
                        using var response = await server.Http.PostAsJsonAsync("/api/v5/sessions",
                            new { userId = $"r{round}-w{worker}-{i}", deviceId = $"r{round}-w{worker}-{i}" }, CancellationToken.None);
                        if (response.StatusCode == HttpStatusCode.OK)
                            acknowledged.Add(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["accessToken"]!.GetValue<string>());
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                    {
                        return; // the server is gone: whatever was not answered was not acknowledged
                    }
                }
            })).ToArray();
            await Task.Delay(TimeSpan.FromMilliseconds(1500));
            await server.KillAsync();
            await stop.CancelAsync();
            await Task.WhenAll(load);
        }

        await using var survivor = await ServerNode.StartAsync(postgres, data);
        var lost = 0;
        foreach (var token in acknowledged)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v3/users/me");
            request.Headers.Authorization = new("Bearer", token);
            using var response = await survivor.Http.SendAsync(request);
            if (response.StatusCode != HttpStatusCode.OK)
                lost++;
        }
        // Each acknowledged session's creation is in the audit log too: it is committed with the session.
        var audited = await AuditedUsersAsync(postgres, data);
        var unaudited = acknowledged.Count(token => !audited.Contains(UserId(token)));
        output.WriteLine($"{(postgres is null ? "SQLite" : "PostgreSQL")}: {Rounds} kills, {acknowledged.Count} acknowledged sessions, " +
            $"{lost} lost, {unaudited} without their session.created event");
        Assert.True(acknowledged.Count >= Rounds * 10, $"only {acknowledged.Count} sessions were acknowledged");
        Assert.Equal(0, lost);
        Assert.Equal(0, unaudited);
    }

    /// <summary>Every login of this test is a user of its own, so a session.created event names its session by its user.</summary>
    private static string UserId(string accessToken) =>
        JsonNode.Parse(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(accessToken.Split('.')[1]))!["sub"]!.GetValue<string>();

    /// <summary>The users of the stored session.created events, read straight from the database.</summary>
    private static async Task<HashSet<string>> AuditedUsersAsync(string? postgres, string data)
    {
        await using System.Data.Common.DbConnection connection = postgres is null
            ? new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(data, "gatehouse.db") }.ToString())
            : new NpgsqlConnection(postgres);
        await connection.OpenAsync();
        await using var query = connection.CreateCommand();
        query.CommandText = """SELECT "UserId" FROM "AuditEvents" WHERE "Kind" = 'session.created'""";
        var users = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await query.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            users.Add(reader.GetString(0));
        return users;
    }

    /// <summary>A network made by the operator command, on the same database the server uses.</summary>
    private static async Task<string> CreateNetworkAsync(string? postgres, string data)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var settings = new Dictionary<string, string?> { ["Gatehouse:DataDirectory"] = data };
        if (postgres is not null)
        {
            settings["Gatehouse:Database:Provider"] = "PostgreSQL";
            settings["Gatehouse:Database:ConnectionString"] = postgres;
            settings["Gatehouse:KeyEncryption:Key"] = PostgresServer.KeyEncryptionKey;
        }
        var exit = await Operations.OperatorCommands.RunAsync(["network", "create", "crash"], output, error,
            builder => builder.Configuration.AddInMemoryCollection(settings));
        Assert.True(exit == 0, error.ToString());
        return output.ToString().Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("API key:", StringComparison.Ordinal))["API key:".Length..].Trim();
    }
}
