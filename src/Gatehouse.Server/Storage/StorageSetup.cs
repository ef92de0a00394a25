using System.Data.Common;
using Gatehouse.Server.Configuration;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Gatehouse.Server.Storage;

internal static partial class StorageSetup
{
    public const string Sqlite = "Sqlite";
    public const string PostgreSql = "PostgreSQL";

    public static IServiceCollection AddGatehouseStorage(this IServiceCollection services)
    {
        services.AddSingleton<IDbContextFactory<GatehouseDb>, GatehouseDbFactory>();
        services.AddSingleton<CommittedWrites>();
        services.AddScoped(sp => sp.GetRequiredService<IDbContextFactory<GatehouseDb>>().CreateDbContext());
        services.AddScoped<RequestDb>();
        return services;
    }

    public static bool UsesPostgreSql(GatehouseOptions options) => options.Database.Provider == PostgreSql;

    /// <summary>
    /// The operator's connection string with Gatehouse's timeouts, pool size, statement preparation and pooled-connection
    /// reset wherever it sets none. Npgsql's own timeouts (15 s to connect or wait for a pooled connection, 30 s per
    /// command) leave a request on a hung database waiting most of a minute; with these it answers 503 within 5 s. When
    /// a command times out Npgsql also asks the server to cancel it, through a new connection that may wait the connect
    /// timeout twice (once for TLS, once without), so the worst case is Command Timeout + 2 × Timeout: 2 + 2 × 1 = 4 s
    /// (docs/operations.md).
    /// </summary>
    public static string PostgreSqlConnectionString(GatehouseOptions options)
    {
        var builder = new NpgsqlConnectionStringBuilder(options.Database.ConnectionString);
        // Keys holds the settings the string names, by their canonical name, whatever spelling the operator used.
        var named = builder.Keys.Cast<string>().ToHashSet(StringComparer.OrdinalIgnoreCase);
        if (!named.Contains("Timeout"))
            builder.Timeout = PostgreSqlConnectTimeoutSeconds;
        if (!named.Contains("Command Timeout"))
            builder.CommandTimeout = PostgreSqlCommandTimeoutSeconds;
        if (!named.Contains("Maximum Pool Size"))
            builder.MaxPoolSize = PostgreSqlPoolSize;
        if (!named.Contains("Max Auto Prepare"))
            builder.MaxAutoPrepare = PostgreSqlAutoPrepared;
        // Npgsql resets a pooled connection each time it is taken again, and with statements prepared that is seven
        // statements (RESET ALL, CLOSE ALL, UNLISTEN *, pg_advisory_unlock_all() and more) before the next query, for
        // every bearer read and admin read: a logout of a session read from the database measured 1.2–1.4× faster
        // without them (docs/benchmarks.md, change 79). Gatehouse leaves nothing on a pooled connection to reset: its
        // settings are SET LOCAL, an open transaction is still rolled back, it listens on a connection of its own, and
        // the migrations' session lock is released before their connection goes back (MigrateAsync).
        if (!named.Contains("No Reset On Close"))
            builder.NoResetOnClose = true;
        return builder.ConnectionString;
    }

    /// <summary>
    /// Connections a node's pool may open (Npgsql's own default is 100). Measured with the bench at 64 client
    /// connections on PostgreSQL: pools of 4, 16 and 100 served logins and admin-API calls alike, since session
    /// writes go through one writer per node and hot reads are kept in memory (docs/benchmarks.md). 16 leaves room
    /// for reads that miss, and five nodes (with their listening connections) stay under PostgreSQL's default
    /// max_connections of 100.
    /// </summary>
    private const int PostgreSqlPoolSize = 16;

    /// <summary>
    /// Statements each pooled connection keeps prepared once they have been sent five times (Npgsql's automatic
    /// preparation, off by default). Unprepared, PostgreSQL parsed and planned every statement of every group again;
    /// prepared, refreshes measured 30 % faster and returning users' logins 15–25 % (docs/benchmarks.md, change 40).
    /// A pooler in transaction mode cannot keep them, but Gatehouse cannot run behind one anyway (its notifications
    /// need a session of their own, docs/deployment.md); "Max Auto Prepare=0" turns it off.
    /// </summary>
    private const int PostgreSqlAutoPrepared = 64;

    private const int PostgreSqlConnectTimeoutSeconds = 1;
    private const int PostgreSqlCommandTimeoutSeconds = 2;

    /// <summary>
    /// A migration may rewrite a large table, and a node starting beside another waits for its migration: each command
    /// gets at least Npgsql's own 30 s, not the seconds a request does (0, no limit, stays no limit).
    /// </summary>
    private const int MigrationCommandTimeoutSeconds = 30;

    public static string SqliteConnectionString(GatehouseOptions options)
    {
        if (!string.IsNullOrWhiteSpace(options.Database.ConnectionString))
            return options.Database.ConnectionString;
        return new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(Path.GetFullPath(options.DataDirectory), "gatehouse.db"),
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
    }

    /// <summary>
    /// Applies the provider's pending migrations and records this release in <see cref="StorageCompatibility"/>;
    /// refuses (<see cref="StorageTooNewException"/>) a database a newer release has made unreadable for this one.
    /// On SQLite, an existing database is first copied to data/backups, and WAL lets readers run beside the writer.
    /// </summary>
    /// <param name="firstStart">
    /// Runs right after the migrations, still under the lock, so nodes starting together on an empty database make
    /// one bootstrap admin and one signing key between them, not one each.
    /// </param>
    public static async Task MigrateAsync(IServiceProvider services, Func<CancellationToken, Task>? firstStart = null, CancellationToken ct = default)
    {
        var options = services.GetRequiredService<IOptions<GatehouseOptions>>().Value;
        var clock = services.GetRequiredService<TimeProvider>();
        var log = services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(StorageSetup));
        Directory.CreateDirectory(options.DataDirectory);
        await using var db = await services.GetRequiredService<IDbContextFactory<GatehouseDb>>().CreateDbContextAsync(ct);
        if (db.Database.IsNpgsql())
        {
            var commandTimeout = ((NpgsqlConnection)db.Database.GetDbConnection()).CommandTimeout;
            db.Database.SetCommandTimeout(commandTimeout == 0 ? 0 : Math.Max(commandTimeout, MigrationCommandTimeoutSeconds));
            // Nodes starting together take turns: the session-level lock lives on the connection EF migrates on.
            await db.Database.OpenConnectionAsync(ct);
            try
            {
                // In the try: a wait cancelled just as the lock was granted must still release it (releasing a lock
                // not held only returns false).
                await db.Database.ExecuteSqlRawAsync("SELECT pg_advisory_lock(4711001)", ct);
                await MigrateUnderLockAsync(db, services, options, clock, log, ct);
                SealKeyRing(services, log);
                if (firstStart is not null)
                    await firstStart(ct);
            }
            finally
            {
                await UnlockMigrationsAsync(db);
            }
            return;
        }
        OwnerOnly(db.Database.GetDbConnection().DataSource);
        await MigrateUnderLockAsync(db, services, options, clock, log, ct);
        await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", ct);
        OwnerOnly(db.Database.GetDbConnection().DataSource);
        SealKeyRing(services, log);
        if (firstStart is not null)
            await firstStart(ct);
    }

    private static async Task UnlockMigrationsAsync(GatehouseDb db)
    {
        try
        {
            await db.Database.ExecuteSqlRawAsync("SELECT pg_advisory_unlock(4711001)", CancellationToken.None);
        }
        catch
        {
            // Pooled connections are not reset (PostgreSqlConnectionString): one still holding the lock must not be
            // taken again, or every node's next start would wait for it.
            NpgsqlConnection.ClearPool((NpgsqlConnection)db.Database.GetDbConnection());
            throw;
        }
    }

    /// <summary>Before anything reads the key ring (KeyRingSealing): under the lock, so nodes starting together seal once.</summary>
    private static void SealKeyRing(IServiceProvider services, ILogger log)
    {
        var sealedKeys = KeysAtRest.KeyRingSealing.SealClearKeys(services);
        if (sealedKeys > 0)
            LogSealed(log, sealedKeys);
    }

    /// <summary>
    /// The database holds password hashes, digests and the audit log: readable by its owner alone. A missing file is
    /// created empty with that mode before SQLite opens it, and SQLite gives its -wal and -shm files the mode of the
    /// database file; files a release before 0.2.0 created (0644) are narrowed here.
    /// </summary>
    private static void OwnerOnly(string databasePath)
    {
        if (string.IsNullOrEmpty(databasePath) || databasePath == ":memory:")
            return;
        if (!File.Exists(databasePath))
            PrivateFiles.Create(databasePath, FileMode.CreateNew).Dispose();
        PrivateFiles.OwnerOnly(databasePath);
        PrivateFiles.OwnerOnly(databasePath + "-wal");
        PrivateFiles.OwnerOnly(databasePath + "-shm");
    }

    private static async Task MigrateUnderLockAsync(GatehouseDb db, IServiceProvider services, GatehouseOptions options, TimeProvider clock, ILogger log, CancellationToken ct)
    {
        var applied = (await db.Database.GetAppliedMigrationsAsync(ct)).ToList();
        var pending = (await db.Database.GetPendingMigrationsAsync(ct)).ToList();
        var stored = applied.Any(IsStorageCompatibilityMigration)
            ? await db.StorageCompatibility.AsNoTracking().FirstOrDefaultAsync(r => r.Id == StorageCompatibility.SingletonId, ct)
            : null;
        if (stored is not null && stored.OldestServingLevel > StorageCompatibility.CurrentLevel)
            throw new StorageTooNewException(stored);
        // A node given the wrong key-encryption key must change nothing, not even the schema, before it refuses.
        if (applied.Count > 0)
            KeysAtRest.KeyRingSealing.CheckKey(services);

        if (applied.Count > 0 && pending.Count > 0 && db.Database.IsSqlite())
            await BackUpSqliteAsync(db, options, pending[0], clock, log, ct);
        if (pending.Count > 0)
            LogApplying(log, pending.Count, pending);
        await db.Database.MigrateAsync(ct);

        var row = await db.StorageCompatibility.FirstOrDefaultAsync(r => r.Id == StorageCompatibility.SingletonId, ct);
        if (row is null)
        {
            db.StorageCompatibility.Add(new StorageCompatibility
            {
                Level = StorageCompatibility.CurrentLevel,
                OldestServingLevel = StorageCompatibility.CurrentOldestServingLevel,
                UpgradedBy = StorageCompatibility.ReleaseVersion,
                UpgradedAt = clock.GetUtcNow(),
            });
        }
        else if (row.Level < StorageCompatibility.CurrentLevel)
        {
            row.Level = StorageCompatibility.CurrentLevel;
            row.OldestServingLevel = Math.Max(row.OldestServingLevel, StorageCompatibility.CurrentOldestServingLevel);
            row.UpgradedBy = StorageCompatibility.ReleaseVersion;
            row.UpgradedAt = clock.GetUtcNow();
        }
        await db.SaveChangesAsync(ct);
    }

    /// <summary>
    /// The SQL <see cref="MigrateAsync"/> would run on this database now, for an operator to review before an
    /// upgrade; touches nothing (a missing database is read as empty, not created).
    /// </summary>
    public static async Task<string> PendingMigrationScriptAsync(IServiceProvider services, CancellationToken ct = default)
    {
        await using var db = await services.GetRequiredService<IDbContextFactory<GatehouseDb>>().CreateDbContextAsync(ct);
        var exists = await db.GetService<IRelationalDatabaseCreator>().ExistsAsync(ct);
        var applied = exists ? (await db.Database.GetAppliedMigrationsAsync(ct)).ToList() : [];
        var pending = db.Database.GetMigrations().Except(applied).ToList();
        if (pending.Count == 0)
            return $"-- The database is up to date: no migration to apply ({applied.Count} applied).{Environment.NewLine}";
        var script = db.GetService<IMigrator>().GenerateScript(
            fromMigration: applied.Count > 0 ? applied[^1] : Migration.InitialDatabase, toMigration: null);
        return $"-- Gatehouse {StorageCompatibility.ReleaseVersion} would apply {pending.Count} migration(s): {string.Join(", ", pending)}{Environment.NewLine}{script}";
    }

    private static bool IsStorageCompatibilityMigration(string migrationId) =>
        migrationId.EndsWith("_" + nameof(StorageCompatibility), StringComparison.Ordinal);

    /// <summary>The database as the previous release left it, so an upgrade on SQLite can always be undone by putting the file back.</summary>
    private static async Task BackUpSqliteAsync(GatehouseDb db, GatehouseOptions options, string firstPending, TimeProvider clock, ILogger log, CancellationToken ct)
    {
        var folder = PrivateFiles.Folder(Path.Combine(Path.GetFullPath(options.DataDirectory), "backups"));
        var path = Path.Combine(folder.FullName, $"gatehouse-{clock.GetUtcNow():yyyyMMdd'T'HHmmss'Z'}-before-{firstPending}.db");
        await PrivateFiles.CopySqliteAsync(db, path, ct);
        LogBackedUp(log, path);
    }

    [LoggerMessage(EventId = 2000, Level = LogLevel.Information, Message = "Applying {Count} database migration(s): {Migrations}")]
    private static partial void LogApplying(ILogger log, int count, IEnumerable<string> migrations);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "Sealed {Count} Data Protection master key(s) stored in clear with the key-encryption key; the clear copies are deleted")]
    private static partial void LogSealed(ILogger log, int count);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Upgrading the database: the previous one was copied to {Backup} first")]
    private static partial void LogBackedUp(ILogger log, string backup);

    // A list of keys (a group's devices, say) is one parameter, a JSON array on SQLite and an array on PostgreSQL,
    // rather than EF 10's one parameter per key: the SQL stays the same whatever the list's length, so EF does not
    // write it anew for every group of logins (docs/benchmarks.md).
    internal static DbContextOptionsBuilder<SqliteGatehouseDb> ForSqlite(string connectionString) =>
        new DbContextOptionsBuilder<SqliteGatehouseDb>()
            .UseSqlite(connectionString, sqlite => sqlite.UseParameterizedCollectionMode(ParameterTranslationMode.Parameter))
            .AddInterceptors(DurableSqlite.Instance);

    internal static DbContextOptionsBuilder<PostgresGatehouseDb> ForPostgreSql(string connectionString) =>
        new DbContextOptionsBuilder<PostgresGatehouseDb>()
            .UseNpgsql(connectionString, npgsql => npgsql.UseParameterizedCollectionMode(ParameterTranslationMode.Parameter));

    /// <summary>
    /// EF Core logs every failed connection, command, query, save and transaction at Error with the whole exception,
    /// before the exception reaches the code that handles it. That code logs it once: the exception handler (one
    /// warning line for a database outage, the error with its stack trace for anything else), the audit writer, the
    /// retention service. EF Core's own copies go to Debug, so an outage costs one line per request, not three stack
    /// traces, and a conflict the session writer retries alone costs none.
    /// </summary>
    private static DbContextOptionsBuilder<T> LoggingTo<T>(this DbContextOptionsBuilder<T> builder, ILoggerFactory logs) where T : DbContext =>
        builder.UseLoggerFactory(logs).ConfigureWarnings(events => events.Log(
            (RelationalEventId.ConnectionError, LogLevel.Debug),
            (RelationalEventId.CommandError, LogLevel.Debug),
            (RelationalEventId.TransactionError, LogLevel.Debug),
            (CoreEventId.QueryIterationFailed, LogLevel.Debug),
            (CoreEventId.SaveChangesFailed, LogLevel.Debug)));

    /// <summary>
    /// Contexts of the configured provider, pooled. Chosen at first use rather than at registration, so the
    /// provider comes from the same validated options as everything else.
    /// </summary>
    private sealed class GatehouseDbFactory(IOptions<GatehouseOptions> options, CommittedWrites writes, ILoggerFactory logs)
        : IDbContextFactory<GatehouseDb>
    {
        private readonly Lazy<Func<GatehouseDb>> _create = new(() =>
        {
            var settings = options.Value;
            if (UsesPostgreSql(settings))
            {
                var pool = new PooledDbContextFactory<PostgresGatehouseDb>(ForPostgreSql(PostgreSqlConnectionString(settings))
                    .AddInterceptors(new CommittedWrites.Watcher(writes)).LoggingTo(logs).Options);
                return pool.CreateDbContext;
            }
            var sqlite = new PooledDbContextFactory<SqliteGatehouseDb>(ForSqlite(SqliteConnectionString(settings))
                .AddInterceptors(new CommittedWrites.Watcher(writes)).LoggingTo(logs).Options);
            return sqlite.CreateDbContext;
        });

        public GatehouseDb CreateDbContext() => _create.Value();
    }

    /// <summary>
    /// synchronous=FULL makes every acknowledged commit survive power loss in WAL mode (NORMAL would not);
    /// foreign keys are off by default in SQLite. busy_timeout lets SQLite wait for the single writer lock in
    /// steps of a few milliseconds; without it Microsoft.Data.Sqlite sleeps a fixed 150 ms and retries, which
    /// showed as a 150 ms p99 on every write path even at one connection (docs/benchmarks.md).
    /// </summary>
    private sealed class DurableSqlite : DbConnectionInterceptor
    {
        public static readonly DurableSqlite Instance = new();

        public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Apply(connection);

        public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            Apply(connection);
            return Task.CompletedTask;
        }

        /// <summary>
        /// The physical connections already set up. The settings last as long as the SQLite handle, which the pool
        /// reuses across opens; running them on every open cost about 4 % of a request (docs/benchmarks.md).
        /// </summary>
        private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, object> Prepared = [];

        private static void Apply(DbConnection connection)
        {
            var handle = (connection as Microsoft.Data.Sqlite.SqliteConnection)?.Handle;
            if (handle is not null && !Prepared.TryAdd(handle, handle))
                return;
            try
            {
                using var command = connection.CreateCommand();
                command.CommandText = "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;";
                command.ExecuteNonQuery();
            }
            catch
            {
                // Not set up after all: the next open of this handle must try again.
                if (handle is not null)
                    Prepared.Remove(handle);
                throw;
            }
        }
    }
}

/// <summary>What `dotnet ef migrations add --context SqliteGatehouseDb` builds the model with.</summary>
internal sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<SqliteGatehouseDb>
{
    public SqliteGatehouseDb CreateDbContext(string[] args) => new(StorageSetup.ForSqlite("Data Source=design-time.db").Options);
}

/// <summary>What `dotnet ef migrations add --context PostgresGatehouseDb` builds the model with (no connection made).</summary>
internal sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresGatehouseDb>
{
    public PostgresGatehouseDb CreateDbContext(string[] args) => new(StorageSetup.ForPostgreSql("Host=127.0.0.1;Database=gatehouse").Options);
}
