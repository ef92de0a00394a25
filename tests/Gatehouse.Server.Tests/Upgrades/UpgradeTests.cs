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
/// database. 0.1.0 kept the Data Protection master keys in clear; the first start of this build seals them with the
/// key-encryption key and deletes the clear copies, which is why 0.1.0 cannot serve beside it (a "Not rolling" upgrade).
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

    [SkippableFact]
    public async Task A_database_of_release_0_1_0_upgrades_in_place_and_everything_it_held_still_works()
    {
        var before = await release.FillAsync(_dataDirectory, PostgresConnectionString);
        var clearBefore = await KeyRingAsync();
        var server = NewServer();
        await server.InitializeAsync();
        try
        {
            await AssertEverythingStillWorksAsync(server, before);

            // Every master key 0.1.0 left in clear is there once, sealed; no clear copy is left.
            var after = await KeyRingAsync();
            Assert.NotEmpty(clearBefore);
            Assert.All(clearBefore, key => Assert.Contains("<value>", key.Xml, StringComparison.Ordinal));
            Assert.Equal(clearBefore.Select(k => k.Id).Order(), after.Select(k => k.Id).Order());
            Assert.All(after, key => Assert.DoesNotContain("masterKey", key.Xml, StringComparison.Ordinal));
            Assert.All(after, key => Assert.Contains("encryptedSecret", key.Xml, StringComparison.Ordinal));
        }
        finally
        {
            await server.StopAsync();
        }
    }

    [SkippableFact]
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

    [SkippableFact]
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
            Assert.Equal((2, 2, "0.2.0"), (compatibility.Level, compatibility.OldestServingLevel, compatibility.UpgradedBy));

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

    /// <summary>The master keys of the Data Protection key ring as stored (files on SQLite, rows on PostgreSQL), by key id.</summary>
    protected async Task<List<(string Id, string Xml)>> KeyRingAsync()
    {
        List<string> stored;
        if (PostgresConnectionString is null)
        {
            stored = [.. Directory.GetFiles(Path.Combine(_dataDirectory, "keys"), "*.xml").Select(File.ReadAllText)];
        }
        else
        {
            await using var db = new PostgresGatehouseDb(StorageSetup.ForPostgreSql(PostgresConnectionString).Options);
            stored = await db.DataProtectionKeys.AsNoTracking().Select(k => k.Xml!).ToListAsync();
        }
        return [.. stored.Select(xml => ((string)System.Xml.Linq.XElement.Parse(xml).Attribute("id")!, xml))];
    }

    /// <summary>A server as an operator starts it (this build, or another release's): its exit code and what it said on standard error.</summary>
    protected Task<(int Exit, string Error)> RunServerUntilExitAsync(string? serverAssembly = null, string? dataDirectory = null) =>
        ServerNode.RunUntilExitAsync(PostgresConnectionString, dataDirectory ?? _dataDirectory, serverAssembly);
}

[Trait(Category.Name, Category.Slow)]
public sealed class UpgradeTestsOnSqlite(ReleaseBuild release) : UpgradeTests(release)
{
    protected override bool OnPostgreSql => false;

    /// <summary>
    /// docs/deployment.md's SQLite upgrade from 0.1.0: the data folder copied first, the database also copied by the
    /// upgrade itself; 0.1.0 cannot start on the upgraded folder (its key ring is sealed), and the folder copy rolls back.
    /// </summary>
    [SkippableFact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task The_upgrade_copies_the_database_first_and_a_copy_of_the_data_folder_rolls_back_to_the_old_release()
    {
        var before = await Release.FillAsync(DataDirectory, null);
        Assert.True(File.GetUnixFileMode(Path.Combine(DataDirectory, "gatehouse.db")).HasFlag(UnixFileMode.OtherRead), "0.1.0 left its database readable by all");
        var folderCopy = GatehouseServer.NewDataDirectory();
        CopyFolder(DataDirectory, folderCopy);
        try
        {
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

            // 0.1.0 on the upgraded folder: it cannot open the sealed key ring and stops.
            var (oldExit, _) = await RunServerUntilExitAsync(Release.ServerAssembly);
            Assert.NotEqual(0, oldExit);

            // Rolling back: the folder copy put back, 0.1.0 serves what it held.
            GatehouseServer.DeleteDataDirectory(DataDirectory);
            CopyFolder(folderCopy, DataDirectory);
            await using var oldRelease = await ServerNode.StartAsync(null, DataDirectory, Release.ServerAssembly);
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v3/users/me");
            request.Headers.Authorization = new("Bearer", before["open"]!["alice"]!["accessToken"]!.GetValue<string>());
            using var me = await oldRelease.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        }
        finally
        {
            GatehouseServer.DeleteDataDirectory(folderCopy);
        }
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var folder in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(folder.Replace(from, to, StringComparison.Ordinal));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, file.Replace(from, to, StringComparison.Ordinal));
    }
}

[Trait(Category.Name, Category.Slow)]
[Trait(Category.Name, Category.Postgres)]
public sealed class UpgradeTestsOnPostgres(ReleaseBuild release) : UpgradeTests(release)
{
    protected override bool OnPostgreSql => true;

    /// <summary>
    /// docs/deployment.md's PostgreSQL upgrade from 0.1.0, which is not rolling: a <c>pg_dump</c> first, every 0.1.0
    /// node stopped, then this build. A 0.1.0 node started afterwards cannot open the sealed key ring and stops; the
    /// dump restored rolls back, and 0.1.0 serves what it held.
    /// </summary>
    [SkippableFact]
    public async Task The_upgrade_from_0_1_0_stops_old_nodes_and_the_dump_taken_before_rolls_back()
    {
        var before = await Release.FillAsync(DataDirectory, PostgresConnectionString);
        var open = before["open"]!;
        var openNetwork = new TestNetwork(open["networkId"]!.GetValue<string>(), open["apiKey"]!.GetValue<string>());
        var dump = Path.Combine(DataDirectory, "before-upgrade.sql");
        var source = new NpgsqlConnectionStringBuilder(PostgresConnectionString);
        await PostgresServer.RunToolAsync("pg_dump", "-h", source.Host!, "-p", $"{source.Port}", "-U", source.Username!, "-f", dump, source.Database!);

        var newNode = NewServer();
        await newNode.InitializeAsync();
        newNode.Clock.SetUtcNow(DateTimeOffset.UtcNow);
        await AssertSignedInAsAsync(newNode, open["alice"]!["accessToken"]!.GetValue<string>(), "alice");
        await newNode.StopAsync();

        var oldData = Directory.CreateDirectory(GatehouseServer.NewDataDirectory()).FullName;
        var rolledBack = "gatehouse_rollback_" + Guid.NewGuid().ToString("n");
        try
        {
            var (oldExit, _) = await RunServerUntilExitAsync(Release.ServerAssembly, oldData);
            Assert.NotEqual(0, oldExit);

            await PostgresServer.ExecuteAsync($"CREATE DATABASE {rolledBack}");
            await PostgresServer.RunToolAsync("psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", source.Host!, "-p", $"{source.Port}", "-U", source.Username!, "-d", rolledBack, "-f", dump);
            var rolledBackConnection = new NpgsqlConnectionStringBuilder(PostgresConnectionString) { Database = rolledBack }.ToString();
            await using var oldNode = await ServerNode.StartAsync(rolledBackConnection, oldData, Release.ServerAssembly);
            await AssertMeAsync(oldNode.Http, open["alice"]!["accessToken"]!.GetValue<string>(), "alice");
            await LoginAsync(oldNode.Http, openNetwork, "rollo");
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await PostgresServer.ExecuteAsync($"DROP DATABASE IF EXISTS {rolledBack} WITH (FORCE)");
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
