using Npgsql;

namespace Gatehouse.Server.Tests;

/// <summary>The integration suite on the embedded default: a SQLite file in a fresh folder.</summary>
public sealed class SqliteServer : GatehouseServer;

/// <summary>
/// The same suite on PostgreSQL: a database of its own, created on the shared server (<see cref="SharedPostgres"/>) and
/// dropped afterwards.
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

    public static string AdminConnectionString => SharedPostgres.AdminConnectionString;

    /// <summary>Seconds a statement of the server gets, where a fixture needs other than Gatehouse's default (StorageSetup).</summary>
    protected int? CommandTimeoutSeconds { get; init; }

    public override async Task InitializeAsync()
    {
        var database = "gatehouse_test_" + Guid.NewGuid().ToString("n");
        await ExecuteAsync($"CREATE DATABASE {database}");
        // Only once it exists: a fixture whose PostgreSQL is missing (the test is skipped) has nothing to drop.
        _database = database;
        Settings["Gatehouse:Database:Provider"] = "PostgreSQL";
        // Sized as docs/deployment.md asks of a deployment: the servers' pools together stay under PostgreSQL's
        // max_connections (100), so a burst waits for a pooled connection instead of being refused by the database.
        var connection = new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = _database, MaxPoolSize = 20 };
        if (CommandTimeoutSeconds is { } seconds)
            connection.CommandTimeout = seconds;
        Settings["Gatehouse:Database:ConnectionString"] = connection.ToString();
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
        var bin = PostgresCluster.Binaries ?? throw new SkipException(PostgresCluster.NotInstalled);
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(Path.Combine(bin, tool), args)
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
