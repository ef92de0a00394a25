using Npgsql;

namespace Gatehouse.Server.Tests;

/// <summary>The integration suite on the embedded default: a SQLite file in a fresh folder.</summary>
public sealed class SqliteServer : GatehouseServer;

/// <summary>
/// The same suite on PostgreSQL: a database of its own, created on the server ./test.sh starts (127.0.0.1, its
/// address in GATEHOUSE_TEST_POSTGRES) and dropped afterwards.
/// </summary>
public class PostgresServer : GatehouseServer
{
    private string? _database;

    public override bool UsesSqlite => false;

    /// <summary>
    /// The key-encryption key every PostgreSQL node of the suite is given (a deployment gives each node its own
    /// deployment's key; docs/deployment.md).
    /// </summary>
    public const string KeyEncryptionKey = "e7ma+ViD4a27kn5ZM/pxwvCSVF6AVMFY4BdnjY6jJko=";

    public static string AdminConnectionString =>
        Environment.GetEnvironmentVariable("GATEHOUSE_TEST_POSTGRES")
        ?? throw new InvalidOperationException("GATEHOUSE_TEST_POSTGRES is not set: run the tests with ./test.sh, which starts PostgreSQL.");

    public override async Task InitializeAsync()
    {
        _database = "gatehouse_test_" + Guid.NewGuid().ToString("n");
        await ExecuteAsync($"CREATE DATABASE {_database}");
        Settings["Gatehouse:Database:Provider"] = "PostgreSQL";
        // Sized as docs/deployment.md asks of a deployment: the servers' pools together stay under PostgreSQL's
        // max_connections (100), so a burst waits for a pooled connection instead of being refused by the database.
        Settings["Gatehouse:Database:ConnectionString"] =
            new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = _database, MaxPoolSize = 20 }.ToString();
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        if (_database is not null)
            await ExecuteAsync($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)");
    }

    /// <summary>A PostgreSQL client tool of the newest installed version (pg_dump, psql), which must succeed.</summary>
    public static async Task RunToolAsync(string tool, params string[] args)
    {
        var bin = Directory.GetDirectories("/usr/lib/postgresql").OrderBy(d => Version.Parse(Path.GetFileName(d) + ".0")).Last();
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(Path.Combine(bin, "bin", tool), args)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        await output;
        Assert.True(process.ExitCode == 0, $"{tool}: {error}");
    }

    public static async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
