using System.Data.Common;
using Gatehouse.Server.Configuration;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Storage;

public static class StorageSetup
{
    public static IServiceCollection AddGatehouseStorage(this IServiceCollection services)
    {
        services.AddPooledDbContextFactory<GatehouseDb>((sp, db) =>
        {
            var options = sp.GetRequiredService<IOptions<GatehouseOptions>>().Value;
            db.UseSqlite(SqliteConnectionString(options)).AddInterceptors(DurableSqlite.Instance);
        });
        services.AddScoped(sp => sp.GetRequiredService<IDbContextFactory<GatehouseDb>>().CreateDbContext());
        return services;
    }

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

    /// <summary>Applies pending migrations; WAL lets readers run beside the single writer.</summary>
    public static async Task MigrateAsync(IServiceProvider services, CancellationToken ct = default)
    {
        var options = services.GetRequiredService<IOptions<GatehouseOptions>>().Value;
        Directory.CreateDirectory(options.DataDirectory);
        await using var db = await services.GetRequiredService<IDbContextFactory<GatehouseDb>>().CreateDbContextAsync(ct);
        await db.Database.MigrateAsync(ct);
        if (db.Database.IsSqlite())
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", ct);
    }

    /// <summary>
    /// synchronous=FULL makes every acknowledged commit survive power loss in WAL mode (NORMAL would not);
    /// foreign keys are off by default in SQLite.
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

        private static void Apply(DbConnection connection)
        {
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;";
            command.ExecuteNonQuery();
        }
    }
}
