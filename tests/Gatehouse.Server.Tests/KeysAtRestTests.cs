using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.KeysAtRest;
using Gatehouse.Server.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.Tokens;
using Npgsql;

namespace Gatehouse.Server.Tests;

/// <summary>
/// What a stolen copy of the storage opens: the database alone (a <c>pg_dump</c>; the SQLite file with the key-ring
/// folder beside it) without the key-encryption key. An attacker runs Data Protection on the stolen key ring exactly
/// as the server does; the same procedure given the key-encryption key (the control) recovers the auth-token MAC key
/// and forges a token the live server accepts, so the refusal without it is the key's doing, not a broken attack.
/// </summary>
public abstract class KeysAtRestTests : IAsyncLifetime
{
    private readonly ConcurrentQueue<LogLine> _logs = new();
    private readonly GatehouseServer _server;

    protected KeysAtRestTests(bool onPostgres)
    {
        Action<WebApplicationBuilder> capture = builder => builder.Logging.AddProvider(new LogRecorder(_logs));
        _server = onPostgres ? new PostgresServer { Configure = capture } : new GatehouseServer { Configure = capture };
    }

    protected GatehouseServer Server => _server;

    public Task InitializeAsync() => _server.InitializeAsync();

    public Task DisposeAsync() => _server.DisposeAsync();

    /// <summary>The stolen copy: the key ring's elements and each signing key's id, protected private key and protected MAC key.</summary>
    protected abstract Task<Stolen> StealDatabaseAsync();

    /// <summary>The key this deployment's key ring is sealed with, as an operator holds it.</summary>
    protected abstract KeyEncryptionKey DeploymentKey();

    [SkippableFact]
    public async Task The_database_alone_yields_no_key_and_no_token_can_be_forged_with_what_it_holds()
    {
        var network = await _server.CreateNetworkAsync(secureMode: true);
        var serverKey = await _server.GenerateServerKeyAsync(network);
        var genuine = await _server.MintAsync(serverKey, "alice");

        var stolen = await StealDatabaseAsync();

        Assert.NotEmpty(stolen.KeyRing);
        Assert.All(stolen.KeyRing, key => Assert.DoesNotContain("masterKey", key.ToString(), StringComparison.Ordinal));
        Assert.All(stolen.KeyRing, key => Assert.Contains("encryptedSecret", key.ToString(), StringComparison.Ordinal));
        foreach (var key in stolen.Keys)
        {
            Assert.Throws<CryptographicException>(() => Open(stolen, kek: null).CreateProtector("Gatehouse.AuthTokenKeys.v1").Unprotect(key.ProtectedMacKey));
            Assert.Throws<CryptographicException>(() => Open(stolen, kek: null).CreateProtector("Gatehouse.SigningKeys.v1").Unprotect(key.ProtectedPrivateKey));
            Assert.Throws<CryptographicException>(() => Open(stolen, AnotherKey()).CreateProtector("Gatehouse.AuthTokenKeys.v1").Unprotect(key.ProtectedMacKey));
        }

        // The control: the same procedure with the deployment's key forges a token the server takes.
        var signingKey = stolen.Keys.Single();
        var macKey = Convert.FromBase64String(Open(stolen, DeploymentKey()).CreateProtector("Gatehouse.AuthTokenKeys.v1").Unprotect(signingKey.ProtectedMacKey));
        var forged = Forge(genuine, "mallory", macKey);
        var session = await _server.CreateSessionAsync(network, "mallory", "device-mallory", forged);
        Assert.Equal(HttpStatusCode.OK, session.StatusCode);
    }

    [SkippableFact]
    public void No_start_warns_that_a_key_is_stored_unencrypted()
    {
        Assert.DoesNotContain(_logs, line => line.Message.Contains("unencrypted", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(_logs, line => line.Message.Contains("No XML encryptor", StringComparison.Ordinal));
    }

    /// <summary>Data Protection as the server configures it, on nothing but the stolen key ring (and a key-encryption key, if the attacker has one).</summary>
    private static IDataProtectionProvider Open(Stolen stolen, KeyEncryptionKey? kek)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        if (kek is not null)
            services.AddSingleton(kek);
        services.AddDataProtection().SetApplicationName("Gatehouse").DisableAutomaticKeyGeneration();
        services.Configure<KeyManagementOptions>(options => options.XmlRepository = new StolenKeyRing(stolen.KeyRing));
        return services.BuildServiceProvider().GetRequiredService<IDataProtectionProvider>();
    }

    private static KeyEncryptionKey AnotherKey() =>
        KeyEncryptionKey.Load(new GatehouseOptions { KeyEncryption = { Key = KeyEncryptionKey.NewKeyText() } });

    /// <summary>A genuine auth token with another subject and id, signed again with <paramref name="macKey"/>.</summary>
    private static string Forge(string genuine, string subject, byte[] macKey)
    {
        var parts = genuine.Split('.');
        var payload = JsonNode.Parse(Base64UrlEncoder.Decode(parts[1]))!;
        payload["sub"] = subject;
        payload["jti"] = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var signed = $"{parts[0]}.{Base64UrlEncoder.Encode(payload.ToJsonString())}";
        return $"{signed}.{Base64UrlEncoder.Encode(HMACSHA256.HashData(macKey, Encoding.ASCII.GetBytes(signed)))}";
    }

    protected sealed record StolenKey(string Id, string ProtectedPrivateKey, string ProtectedMacKey);

    protected sealed record Stolen(IReadOnlyList<XElement> KeyRing, IReadOnlyList<StolenKey> Keys);

    private sealed class StolenKeyRing(IReadOnlyList<XElement> elements) : IXmlRepository
    {
        public IReadOnlyCollection<XElement> GetAllElements() => elements;

        public void StoreElement(XElement element, string friendlyName) => throw new InvalidOperationException("The attack only reads.");
    }
}

[Trait(Category.Name, Category.Slow)]
public sealed class KeysAtRestTestsOnSqlite() : KeysAtRestTests(onPostgres: false)
{
    protected override KeyEncryptionKey DeploymentKey() =>
        KeyEncryptionKey.Load(new GatehouseOptions { DataDirectory = Server.DataDirectory });

    /// <summary>The database file and the key-ring folder, as a copy of the data folder without the key file would hold them.</summary>
    protected override async Task<Stolen> StealDatabaseAsync()
    {
        var copy = Path.Combine(Server.DataDirectory, "stolen.db");
        await using (var scope = Server.Services.CreateAsyncScope())
            await PrivateFiles.CopySqliteAsync(scope.ServiceProvider.GetRequiredService<GatehouseDb>(), copy, CancellationToken.None);
        var keyRing = Directory.GetFiles(Path.Combine(Server.DataDirectory, "keys"), "*.xml").Select(XElement.Load).ToList();
        await using var db = new SqliteGatehouseDb(StorageSetup.ForSqlite($"Data Source={copy};Pooling=false").Options);
        var keys = await db.SigningKeys.AsNoTracking().Select(k => new StolenKey(k.Id, k.ProtectedPrivateKey, k.ProtectedMacKey!)).ToListAsync();
        return new Stolen(keyRing, keys);
    }

    [SkippableFact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_key_file_that_is_a_folder_is_one_line_and_an_existing_folder_keeps_its_mode()
    {
        var shared = Directory.CreateDirectory(Path.Combine(Server.DataDirectory, "shared")).FullName;
        const UnixFileMode sharedMode = (UnixFileMode)0b1_111_111_111; // 1777, like /tmp
        File.SetUnixFileMode(shared, sharedMode);
        var (folderExit, _, error) = await OperatorRun.RunAsync(
            new Dictionary<string, string?> { ["Gatehouse:DataDirectory"] = Path.Combine(Server.DataDirectory, "other"), ["Gatehouse:KeyEncryption:KeyFile"] = shared },
            "network", "list");
        var made = KeyEncryptionKey.Load(new GatehouseOptions { KeyEncryption = { KeyFile = Path.Combine(shared, "gatehouse.key") } });

        Assert.Equal(2, folderExit);
        Assert.Equal($"Gatehouse:KeyEncryption:KeyFile '{shared}' is a folder; name a file.", error.Trim());
        Assert.NotNull(made.CreatedFile);
        Assert.Equal(sharedMode, File.GetUnixFileMode(shared));
    }

    [SkippableFact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void The_first_start_made_the_key_file_private_and_a_configured_folder_keeps_it_out_of_the_data_folder()
    {
        var keyFile = Path.Combine(Server.DataDirectory, KeyEncryptionKey.DefaultFileName);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
        Assert.Contains($"made the key-encryption key {keyFile}", Server.ConsoleOutput, StringComparison.Ordinal);

        var elsewhere = Path.Combine(Server.DataDirectory, "elsewhere", "kek");
        var data = Path.Combine(Server.DataDirectory, "other-data");
        var made = KeyEncryptionKey.Load(new GatehouseOptions { DataDirectory = data, KeyEncryption = { KeyFile = elsewhere } });
        var again = KeyEncryptionKey.Load(new GatehouseOptions { DataDirectory = data, KeyEncryption = { KeyFile = elsewhere } });

        Assert.Equal(elsewhere, made.CreatedFile);
        Assert.Null(again.CreatedFile);
        Assert.Equal(made.Id, again.Id);
        Assert.False(File.Exists(Path.Combine(data, KeyEncryptionKey.DefaultFileName)));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(elsewhere));
    }
}

[Trait(Category.Name, Category.Postgres)]
public sealed class KeysAtRestTestsOnPostgres() : KeysAtRestTests(onPostgres: true)
{
    protected override KeyEncryptionKey DeploymentKey() =>
        KeyEncryptionKey.Load(new GatehouseOptions { KeyEncryption = { Key = PostgresServer.KeyEncryptionKey } });

    /// <summary>A plain <c>pg_dump</c> of the server's database, restored into a database of the attacker's.</summary>
    protected override async Task<Stolen> StealDatabaseAsync()
    {
        var source = new NpgsqlConnectionStringBuilder(Server.Settings["Gatehouse:Database:ConnectionString"]);
        var dump = Path.Combine(Server.DataDirectory, "stolen.sql");
        await PostgresServer.RunToolAsync("pg_dump", "-h", source.Host!, "-p", source.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", source.Username!, "-f", dump, source.Database!);
        var restored = "gatehouse_stolen_" + Guid.NewGuid().ToString("n");
        await PostgresServer.ExecuteAsync($"CREATE DATABASE {restored}");
        try
        {
            await PostgresServer.RunToolAsync("psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", source.Host!, "-p", source.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", source.Username!, "-d", restored, "-f", dump);
            var connection = new NpgsqlConnectionStringBuilder(source.ConnectionString) { Database = restored, Pooling = false }.ToString();
            await using var db = new PostgresGatehouseDb(StorageSetup.ForPostgreSql(connection).Options);
            var keyRing = (await db.DataProtectionKeys.AsNoTracking().Select(k => k.Xml!).ToListAsync()).Select(XElement.Parse).ToList();
            var keys = await db.SigningKeys.AsNoTracking().Select(k => new StolenKey(k.Id, k.ProtectedPrivateKey, k.ProtectedMacKey!)).ToListAsync();
            return new Stolen(keyRing, keys);
        }
        finally
        {
            await PostgresServer.ExecuteAsync($"DROP DATABASE IF EXISTS {restored} WITH (FORCE)");
        }
    }

    [SkippableFact]
    public async Task A_node_given_another_key_or_none_refuses_to_start_with_one_line_and_writes_nothing()
    {
        var connection = Server.Settings["Gatehouse:Database:ConnectionString"]!;
        var ringBefore = await KeyRingRowsAsync();
        var (wrongExit, wrongError) = await OperatorAsync(connection, KeyEncryptionKey.NewKeyText());
        var (noneExit, noneError) = await OperatorAsync(connection, null);
        var (rightExit, _) = await OperatorAsync(connection, PostgresServer.KeyEncryptionKey);

        // Nothing sealed with the wrong key reached the shared key ring, so the right nodes still start.
        Assert.Equal(ringBefore, await KeyRingRowsAsync());
        Assert.Equal(0, rightExit);

        Assert.Equal(2, wrongExit);
        Assert.Single(wrongError.Trim().Split('\n'));
        Assert.Contains("The Data Protection key ring was sealed with key-encryption key", wrongError, StringComparison.Ordinal);
        Assert.Contains("give every node the key this deployment was started with", wrongError, StringComparison.Ordinal);
        Assert.Equal(2, noneExit);
        Assert.Single(noneError.Trim().Split('\n'));
        Assert.Contains("Gatehouse:KeyEncryption:Key or Gatehouse:KeyEncryption:KeyFile is required with PostgreSQL", noneError, StringComparison.Ordinal);
        Assert.Contains("key-encryption-key new", noneError, StringComparison.Ordinal);
    }

    private async Task<List<string>> KeyRingRowsAsync()
    {
        await using var scope = Server.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<GatehouseDb>().DataProtectionKeys.AsNoTracking().OrderBy(k => k.Id).Select(k => k.Xml!).ToListAsync();
    }

    private async Task<(int Exit, string Error)> OperatorAsync(string connection, string? key)
    {
        var settings = OperatorRun.OnPostgres(connection, Path.Combine(Server.DataDirectory, "operator"));
        settings["Gatehouse:KeyEncryption:Key"] = key;
        var (exit, _, error) = await OperatorRun.RunAsync(settings, "network", "list");
        return (exit, error);
    }
}
