using System.Diagnostics;
using System.Net.Http.Json;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Gatehouse.Server.Certificates;
using Gatehouse.Server.Operations;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Gatehouse.Server.Tests.Upgrades;

/// <summary>
/// A database that release 0.1.0 made and used, upgraded in place by this build: nothing a client or an admin
/// held stops working, and nothing stored is lost. Each test gets a fresh data folder and, on PostgreSQL, a fresh
/// database. No secret has moved to new storage in this release yet, so there is nothing to re-protect; the
/// release that moves one adds that check here.
/// </summary>
[Collection(nameof(ReleaseBuild))]
public abstract class UpgradeTests(ReleaseBuild release) : IAsyncLifetime
{
    private readonly string _dataDirectory = GatehouseServer.NewDataDirectory();
    private string? _database;

    protected abstract bool OnPostgreSql { get; }

    protected ReleaseBuild Release => release;

    protected string DataDirectory => _dataDirectory;

    protected string? PostgresConnectionString { get; private set; }

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dataDirectory);
        if (!OnPostgreSql)
            return;
        _database = "gatehouse_upgrade_" + Guid.NewGuid().ToString("n");
        await PostgresServer.ExecuteAsync($"CREATE DATABASE {_database}");
        PostgresConnectionString = new NpgsqlConnectionStringBuilder(PostgresServer.AdminConnectionString) { Database = _database, MaxPoolSize = 20 }.ToString();
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_database is not null)
            await PostgresServer.ExecuteAsync($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)");
        GatehouseServer.DeleteDataDirectory(_dataDirectory);
    }

    /// <summary>This build, in this process, on the test's data folder (and database).</summary>
    protected GatehouseServer NewServer(string? dataDirectory = null)
    {
        var server = new GatehouseServer { DataDirectory = dataDirectory ?? _dataDirectory };
        if (PostgresConnectionString is not null)
        {
            server.Settings["Gatehouse:Database:Provider"] = "PostgreSQL";
            server.Settings["Gatehouse:Database:ConnectionString"] = PostgresConnectionString;
        }
        return server;
    }

    [Fact]
    public async Task A_database_of_release_0_1_0_upgrades_in_place_and_everything_it_held_still_works()
    {
        var before = await release.FillAsync(_dataDirectory, PostgresConnectionString);
        var server = NewServer();
        await server.InitializeAsync();
        try
        {
            await AssertEverythingStillWorksAsync(server, before);
        }
        finally
        {
            await server.StopAsync();
        }
    }

    [Fact]
    public async Task Migrate_script_prints_the_upgrade_sql_without_applying_it()
    {
        await release.FillAsync(_dataDirectory, PostgresConnectionString);

        var (exit, script, _) = await OperatorAsync("migrate", "--script");
        var appliedAfterScript = await AppliedMigrationsAsync();
        var (migrated, _, _) = await OperatorAsync("migrate");
        var (_, again, _) = await OperatorAsync("migrate", "--dry-run");

        var sinceRelease = MigrationsOfThisBuild().Skip(1).ToList();
        Assert.Equal(0, exit);
        Assert.Contains($"would apply {sinceRelease.Count} migration(s)", script, StringComparison.Ordinal);
        Assert.Contains("CREATE TABLE \"StorageCompatibility\"", script, StringComparison.Ordinal);
        Assert.Contains("OpenedWithAuthToken", script, StringComparison.Ordinal);
        Assert.DoesNotContain("Initial", script.Split('\n')[0], StringComparison.Ordinal);
        Assert.Equal(["Initial"], appliedAfterScript);
        Assert.Equal(0, migrated);
        Assert.Equal(["Initial", .. sinceRelease], await AppliedMigrationsAsync());
        Assert.StartsWith("-- The database is up to date", again, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_node_refuses_to_start_on_a_database_a_newer_release_made_unreadable_for_it()
    {
        var server = NewServer();
        await server.InitializeAsync();
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
            var row = await db.StorageCompatibility.SingleAsync();
            Assert.Equal((StorageCompatibility.CurrentLevel, StorageCompatibility.CurrentOldestServingLevel, "0.2.0"), (row.Level, row.OldestServingLevel, row.UpgradedBy));
            row.Level = 7;
            row.OldestServingLevel = 7;
            row.UpgradedBy = "9.1.0";
            await db.SaveChangesAsync();
        }
        await server.StopAsync();

        var (exit, _, error) = await OperatorAsync("network", "list");
        var (serverExit, serverError) = await RunServerUntilExitAsync();

        Assert.Equal(3, exit);
        Assert.Contains("Gatehouse 9.1.0 upgraded it", error, StringComparison.Ordinal);
        Assert.Contains("nodes below level 7", error, StringComparison.Ordinal);
        Assert.Equal(3, serverExit);
        Assert.Contains("Gatehouse cannot start: Gatehouse 0.2.0 (storage level 2) must not serve this database", serverError, StringComparison.Ordinal);
        Assert.Contains("docs/deployment.md", serverError, StringComparison.Ordinal);
    }

    /// <summary>What release 0.1.0 left, checked against this build after the upgrade.</summary>
    protected static async Task AssertEverythingStillWorksAsync(GatehouseServer server, JsonNode before)
    {
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
            var compatibility = await db.StorageCompatibility.SingleAsync();
            Assert.Equal((2, 1, "0.2.0"), (compatibility.Level, compatibility.OldestServingLevel, compatibility.UpgradedBy));

            // The audit log: every event 0.1.0 wrote, unchanged.
            var stored = await db.AuditEvents.AsNoTracking().ToDictionaryAsync(e => e.Id, e => $"{e.Kind} {e.Outcome}");
            var written = before["audit"]!.AsArray();
            Assert.True(written.Count >= 20, $"the fixture wrote only {written.Count} audit events");
            foreach (var e in written)
                Assert.Equal($"{e!["kind"]} {e["outcome"]}", stored.GetValueOrDefault(e["id"]!.GetValue<long>()));
        }

        // Signing keys, the client CA and the HTTPS certificate customers pin: the same as before.
        Assert.Equal(before["jwks"]!.ToJsonString(), JsonNode.Parse(await server.Http.GetStringAsync("/.well-known/jwks.json"))!.ToJsonString());
        Assert.Equal(before["certificateAuthorityPem"]!.GetValue<string>(), await server.Http.GetStringAsync("/.well-known/gatehouse-client-ca.pem"));
        Assert.Equal(before["serverCertificateThumbprint"]!.GetValue<string>(), server.Services.GetRequiredService<ServerCertificate>().Certificate.Thumbprint);

        // Open network: access tokens validate, refresh tokens rotate, a spent one is still refused, the API key logs in.
        var open = before["open"]!;
        var openNetwork = new TestNetwork(open["networkId"]!.GetValue<string>(), open["apiKey"]!.GetValue<string>());
        await AssertSignedInAsAsync(server, open["alice"]!["accessToken"]!.GetValue<string>(), "alice");
        using (var refreshed = await server.RefreshAsync(openNetwork, open["carol"]!["refreshToken"]!.GetValue<string>()))
        {
            Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
            var body = (await refreshed.Content.ReadFromJsonAsync<JsonNode>())!;
            await AssertSignedInAsAsync(server, body["accessToken"]!.GetValue<string>(), "carol");
        }
        using (var spent = await server.RefreshAsync(openNetwork, open["carolSpentRefreshToken"]!.GetValue<string>()))
            await Envelope.AssertErrorAsync(spent, HttpStatusCode.Unauthorized, 400100);
        await server.LoginAsync(openNetwork, "frank", "device-frank");

        // Secure network: both server keys (one in its grace period) mint, sessions and admin token work, the ban holds.
        var secure = before["secure"]!;
        var secureNetwork = new TestNetwork(secure["networkId"]!.GetValue<string>(), secure["apiKey"]!.GetValue<string>());
        await AssertSignedInAsAsync(server, secure["bob"]!["accessToken"]!.GetValue<string>(), "bob");
        using (var refreshed = await server.RefreshAsync(secureNetwork, secure["dave"]!["refreshToken"]!.GetValue<string>()))
            Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        await server.LoginAsync(secureNetwork, "grace", "device-grace", await server.MintAsync(secure["serverKey"]!.GetValue<string>(), "grace"));
        await server.LoginAsync(secureNetwork, "heidi", "device-heidi", await server.MintAsync(secure["serverKeyInGrace"]!.GetValue<string>(), "heidi"));
        using (var banned = await server.CreateSessionAsync(secureNetwork, "mallory", "device-mallory", await server.MintAsync(secure["serverKey"]!.GetValue<string>(), "mallory")))
            await Envelope.AssertErrorAsync(banned, (HttpStatusCode)before["bannedLoginStatus"]!.GetValue<int>(), before["bannedLoginCode"]!.GetValue<int>());
        using (var user = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users/mallory", secure["adminToken"]!.GetValue<string>()))
            Assert.Equal(HttpStatusCode.OK, user.StatusCode);

        // mTLS network: the certificate 0.1.0 issued still opens the mint and the admin API; nothing opens them without it.
        var mtls = before["mtls"]!;
        var mtlsNetwork = new TestNetwork(mtls["networkId"]!.GetValue<string>(), mtls["apiKey"]!.GetValue<string>());
        using var certificate = X509Certificate2.CreateFromPem(mtls["certificateChainPem"]!.GetValue<string>(), mtls["privateKeyPem"]!.GetValue<string>());
        using var withCertificate = server.HttpsClient(certificate);
        using var withoutCertificate = server.HttpsClient();
        var serverKey = mtls["serverKey"]!.GetValue<string>();
        var adminToken = mtls["adminToken"]!.GetValue<string>();
        using (var minted = await SendAsync(withCertificate, "/api/v3/authentication/token?userId=ivan", ("x-server-key", serverKey)))
        {
            Assert.Equal(HttpStatusCode.OK, minted.StatusCode);
            await server.LoginAsync(mtlsNetwork, "ivan", "device-ivan", (await minted.Content.ReadFromJsonAsync<string>())!);
        }
        using (var refused = await SendAsync(withoutCertificate, "/api/v3/authentication/token?userId=ivan", ("x-server-key", serverKey)))
            await Envelope.AssertUnauthorizedAsync(refused);
        using (var users = await SendAsync(withCertificate, "/api/v4/admin/users", ("x-admin-token", adminToken)))
            Assert.Equal(HttpStatusCode.OK, users.StatusCode);
        using (var refused = await SendAsync(withoutCertificate, "/api/v4/admin/users", ("x-admin-token", adminToken)))
            await Envelope.AssertUnauthorizedAsync(refused);
        await AssertSignedInAsAsync(server, mtls["erin"]!["accessToken"]!.GetValue<string>(), "erin");
    }

    protected static async Task AssertSignedInAsAsync(GatehouseServer server, string accessToken, string userId)
    {
        using var me = await server.GetWithBearerAsync("/api/v3/users/me", accessToken);
        var body = await me.Content.ReadAsStringAsync();
        Assert.True(me.StatusCode == HttpStatusCode.OK, $"{userId}'s access token: {(int)me.StatusCode} {body}");
        Assert.Equal(userId, JsonNode.Parse(body)!["users"]![0]!["userId"]!.GetValue<string>());
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, string path, (string Name, string Value) header)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add(header.Name, header.Value);
        return await client.SendAsync(request);
    }

    private async Task<(int Exit, string Output, string Error)> OperatorAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var settings = new Dictionary<string, string?> { ["Gatehouse:DataDirectory"] = _dataDirectory };
        if (PostgresConnectionString is not null)
        {
            settings["Gatehouse:Database:Provider"] = "PostgreSQL";
            settings["Gatehouse:Database:ConnectionString"] = PostgresConnectionString;
            settings["Gatehouse:KeyEncryption:Key"] = PostgresServer.KeyEncryptionKey;
        }
        var exit = await OperatorCommands.RunAsync(args, output, error, builder => builder.Configuration.AddInMemoryCollection(settings));
        return (exit, output.ToString(), error.ToString());
    }

    private List<string> MigrationsOfThisBuild()
    {
        using GatehouseDb db = PostgresConnectionString is null
            ? new SqliteDesignTimeFactory().CreateDbContext([])
            : new PostgresDesignTimeFactory().CreateDbContext([]);
        return [.. db.Database.GetMigrations().Select(id => id[(id.IndexOf('_', StringComparison.Ordinal) + 1)..])];
    }

    /// <summary>The migrations the database records as applied, by name.</summary>
    private async Task<List<string>> AppliedMigrationsAsync()
    {
        await using GatehouseDb db = PostgresConnectionString is null
            ? new SqliteGatehouseDb(StorageSetup.ForSqlite($"Data Source={Path.Combine(_dataDirectory, "gatehouse.db")};Pooling=false").Options)
            : new PostgresGatehouseDb(StorageSetup.ForPostgreSql(PostgresConnectionString).Options);
        return [.. (await db.Database.GetAppliedMigrationsAsync()).Select(id => id[(id.IndexOf('_', StringComparison.Ordinal) + 1)..])];
    }

    /// <summary>This build's server as an operator starts it: its exit code and what it said on standard error.</summary>
    private async Task<(int Exit, string Error)> RunServerUntilExitAsync()
    {
        var start = new ProcessStartInfo("dotnet", [typeof(GatehouseApp).Assembly.Location])
        {
            WorkingDirectory = _dataDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["Urls"] = "http://127.0.0.1:0";
        start.Environment["Gatehouse__DataDirectory"] = _dataDirectory;
        if (PostgresConnectionString is not null)
        {
            start.Environment["Gatehouse__Database__Provider"] = "PostgreSQL";
            start.Environment["Gatehouse__Database__ConnectionString"] = PostgresConnectionString;
            start.Environment["Gatehouse__KeyEncryption__Key"] = PostgresServer.KeyEncryptionKey;
        }
        using var process = Process.Start(start)!;
        _ = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("The server started on a database it must refuse.");
        }
        return (process.ExitCode, await error);
    }
}

public sealed class UpgradeTestsOnSqlite(ReleaseBuild release) : UpgradeTests(release)
{
    protected override bool OnPostgreSql => false;

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task The_sqlite_database_is_copied_before_the_upgrade_and_the_old_release_still_serves_the_upgraded_file()
    {
        var before = await Release.FillAsync(DataDirectory, null);
        Assert.True(File.GetUnixFileMode(Path.Combine(DataDirectory, "gatehouse.db")).HasFlag(UnixFileMode.OtherRead), "0.1.0 left its database readable by all");
        var server = NewServer();
        await server.InitializeAsync();
        await server.StopAsync();

        var database = Path.Combine(DataDirectory, "gatehouse.db");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(database));
        var backup = Assert.Single(Directory.GetFiles(Path.Combine(DataDirectory, "backups")));
        Assert.Matches(@"gatehouse-\d{8}T\d{6}Z-before-\d{14}_StorageCompatibility\.db$", backup);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(backup));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(backup)!));
        await using (var copy = new SqliteGatehouseDb(StorageSetup.ForSqlite($"Data Source={backup};Pooling=false").Options))
        {
            Assert.Equal(["20261124071210_Initial"], await copy.Database.GetAppliedMigrationsAsync());
            Assert.Equal(3 + 1, await copy.Networks.CountAsync());
        }

        // Rolling back without the copy: 0.1.0 started again on the upgraded file serves what it held.
        await using var oldRelease = await ServerProcess.StartAsync(null, DataDirectory, Release.ServerAssembly);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v3/users/me");
        request.Headers.Authorization = new("Bearer", before["open"]!["alice"]!["accessToken"]!.GetValue<string>());
        using var me = await oldRelease.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
    }
}

public sealed class UpgradeTestsOnPostgres(ReleaseBuild release) : UpgradeTests(release)
{
    protected override bool OnPostgreSql => true;

    /// <summary>
    /// docs/deployment.md's rolling upgrade: a 0.1.0 node keeps serving while a node of this build migrates the shared
    /// database and serves beside it, each accepting what the other issued; after a rollback (the new node gone, the
    /// old one restarted on the migrated schema) the old node still serves everything.
    /// </summary>
    [Fact]
    public async Task Old_and_new_nodes_serve_side_by_side_during_a_rolling_upgrade_and_after_a_rollback()
    {
        var before = await Release.FillAsync(DataDirectory, PostgresConnectionString);
        var open = before["open"]!;
        var openNetwork = new TestNetwork(open["networkId"]!.GetValue<string>(), open["apiKey"]!.GetValue<string>());
        var secure = before["secure"]!;
        var secureNetwork = new TestNetwork(secure["networkId"]!.GetValue<string>(), secure["apiKey"]!.GetValue<string>());
        var oldData = GatehouseServer.NewDataDirectory();
        var oldNode = await ServerProcess.StartAsync(PostgresConnectionString, oldData, Release.ServerAssembly);
        var newNode = NewServer();
        try
        {
            await newNode.InitializeAsync();
            newNode.Clock.SetUtcNow(DateTimeOffset.UtcNow);

            // A session opened on the old node works on the new one, and the reverse; each refreshes the other's.
            var onOld = await LoginAsync(oldNode.Http, openNetwork, "olga");
            var onNew = await newNode.LoginAsync(openNetwork, "nina", "device-nina");
            newNode.Clock.SetUtcNow(DateTimeOffset.UtcNow);
            await AssertSignedInAsAsync(newNode, onOld["accessToken"]!.GetValue<string>(), "olga");
            await AssertMeAsync(oldNode.Http, onNew["accessToken"]!.GetValue<string>(), "nina");
            using (var refreshedOnNew = await newNode.RefreshAsync(openNetwork, onOld["refreshToken"]!.GetValue<string>()))
                Assert.Equal(HttpStatusCode.OK, refreshedOnNew.StatusCode);
            using (var refreshedOnOld = await PostAsync(oldNode.Http, "/api/v4/sessions/refresh", new { refreshToken = onNew["refreshToken"]!.GetValue<string>() }, openNetwork.ApiKey))
                Assert.Equal(HttpStatusCode.OK, refreshedOnOld.StatusCode);

            // An auth token minted by one node opens a session on the other.
            var mintedOnOld = await MintAsync(oldNode.Http, secure["serverKey"]!.GetValue<string>(), "oscar");
            newNode.Clock.SetUtcNow(DateTimeOffset.UtcNow);
            await newNode.LoginAsync(secureNetwork, "oscar", "device-oscar", mintedOnOld);
            var mintedOnNew = await newNode.MintAsync(secure["serverKey"]!.GetValue<string>(), "nora");
            using (var login = await PostAsync(oldNode.Http, "/api/v5/sessions", SessionBody("nora", mintedOnNew), secureNetwork.ApiKey))
                Assert.Equal(HttpStatusCode.OK, login.StatusCode);

            // Everything 0.1.0 left still works on the new node while the old one runs.
            await AssertEverythingStillWorksAsync(newNode, before);

            // Rollback: the new node goes, the old release starts again on the migrated schema and serves.
            await newNode.StopAsync();
            await oldNode.DisposeAsync();
            oldNode = await ServerProcess.StartAsync(PostgresConnectionString, oldData, Release.ServerAssembly);
            await AssertMeAsync(oldNode.Http, onNew["accessToken"]!.GetValue<string>(), "nina");
            await LoginAsync(oldNode.Http, openNetwork, "rollo");
        }
        finally
        {
            await newNode.StopAsync();
            await oldNode.DisposeAsync();
            GatehouseServer.DeleteDataDirectory(oldData);
        }
    }

    private static object SessionBody(string userId, string? authToken) =>
        new { userId, deviceId = $"device-{userId}", authToken, deviceInfo = new { kind = "web", model = "upgrade", sdkVersion = "6.35.3" } };

    private static async Task<HttpResponseMessage> PostAsync(HttpClient http, string path, object body, string apiKey)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        request.Headers.Add("x-api-key", apiKey);
        return await http.SendAsync(request);
    }

    private static async Task<JsonNode> LoginAsync(HttpClient http, TestNetwork network, string userId)
    {
        using var response = await PostAsync(http, "/api/v5/sessions", SessionBody(userId, null), network.ApiKey);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonNode.Parse(body)!;
    }

    private static async Task<string> MintAsync(HttpClient http, string serverKey, string userId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v3/authentication/token?userId={userId}");
        request.Headers.Add("x-server-key", serverKey);
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<string>())!;
    }

    private static async Task AssertMeAsync(HttpClient http, string accessToken, string userId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v3/users/me");
        request.Headers.Authorization = new("Bearer", accessToken);
        using var me = await http.SendAsync(request);
        var body = await me.Content.ReadAsStringAsync();
        Assert.True(me.StatusCode == HttpStatusCode.OK, $"{userId}'s access token on the old node: {(int)me.StatusCode} {body}");
        Assert.Equal(userId, JsonNode.Parse(body)!["users"]![0]!["userId"]!.GetValue<string>());
    }
}
