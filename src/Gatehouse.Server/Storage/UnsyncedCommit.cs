using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using SQLitePCL;

namespace Gatehouse.Server.Storage;

/// <summary>
/// One transaction whose commit returns before it reaches the disk: the audit writer's, whose events are already
/// lost if the process dies while they wait in its queue, so making the request wait for a flush was never promised.
/// Waiting cost every mint a share of a WAL fsync and its I/O (docs/benchmarks.md, change 64). Nothing is lost but the
/// last moment's events on power loss: the next durable commit (a login, a refresh) flushes the log these went into,
/// and the database stays consistent either way. Durable writers are untouched: on SQLite the setting belongs to the
/// connection and is put back before it returns to the pool, on PostgreSQL it lasts until this transaction ends.
/// </summary>
internal static class UnsyncedCommit
{
    public static async Task RunAsync(DbContext db, Func<DbContext, Task> write)
    {
        await db.Database.OpenConnectionAsync();
        try
        {
            if (db.Database.GetDbConnection() is SqliteConnection sqlite)
            {
                // WAL mode with synchronous=NORMAL: the commit is written to the log and synced at the next checkpoint.
                Execute(sqlite, "PRAGMA synchronous=NORMAL");
                try
                {
                    await InTransactionAsync(db, write, null);
                }
                finally
                {
                    RestoreDurability(sqlite);
                }
            }
            else
            {
                await InTransactionAsync(db, write, "SET LOCAL synchronous_commit TO OFF");
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private static async Task InTransactionAsync(DbContext db, Func<DbContext, Task> write, string? setting)
    {
        await using var transaction = await db.Database.BeginTransactionAsync();
        if (setting is not null)
        {
            // On the connection itself, not through EF: EF's statements outside SaveChanges count as writes to every
            // table (CommittedWrites), and each batch would make every node's cached rows stale.
            await using var command = db.Database.GetDbConnection().CreateCommand();
            command.Transaction = transaction.GetDbTransaction();
            command.CommandText = setting;
            await command.ExecuteNonQueryAsync();
        }
        await write(db);
        await transaction.CommitAsync();
    }

    /// <summary>
    /// The pooled connection goes on to carry logins, which must wait for the disk. Should it refuse the setting back,
    /// the pool is emptied, so that it is closed rather than reused; each new connection is set up durable.
    /// </summary>
    private static void RestoreDurability(SqliteConnection sqlite)
    {
        try
        {
            Execute(sqlite, "PRAGMA synchronous=FULL");
        }
        catch
        {
            SqliteConnection.ClearPool(sqlite);
            throw;
        }
    }

    private static void Execute(SqliteConnection sqlite, string pragma)
    {
        var handle = sqlite.Handle!;
        SqliteValues.Check(handle, raw.sqlite3_exec(handle, pragma));
    }
}
