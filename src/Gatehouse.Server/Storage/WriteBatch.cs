using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace Gatehouse.Server.Storage;

/// <summary>
/// Writes of one transaction queued, then sent together by <see cref="FlushAsync"/> in the order queued: on
/// PostgreSQL as one <see cref="NpgsqlBatch"/>, one round trip where each statement had its own (a refresh group wrote
/// in four, docs/benchmarks.md, change 78); on SQLite, in process, where a round trip costs nothing, one after the
/// other. A read of rows a queued write changes must come after a flush, and so must a statement that depends on
/// one (a foreign key to a row queued). A claim queued with a conflict fails the flush when it claimed fewer rows than
/// it listed (another node got there first); on PostgreSQL the writes queued after it have run too, so the transaction
/// must then be rolled back, as the session writer's group is. Several writes belong in a transaction: without one,
/// each commits alone.
/// </summary>
internal sealed class WriteBatch(DbContext db)
{
    private readonly List<Queued> _queued = [];

    /// <summary>New rows of several tables (<see cref="BulkInsert"/>), a table after those its foreign keys name.</summary>
    public void Insert(params IReadOnlyList<IReadOnlyList<object>> tables)
    {
        if (BulkInsert.Prepare(db, tables) is { } write)
            _queued.Add(new Queued(write, null));
    }

    /// <summary>
    /// <see cref="BulkUpdate.ClaimAsync{T}"/>, queued. With <paramref name="conflict"/>, a flush that claims fewer rows
    /// than keys listed fails with that message.
    /// </summary>
    public void Claim<T>(string keyProperty, IReadOnlyCollection<object> keys, string guardProperty, IReadOnlyList<(string Property, object? Value)> values,
        string? conflict = null)
        where T : class
    {
        // A key listed twice is claimed once: counted twice, it would read as another node's claim.
        object[] distinct = [.. keys.Distinct()];
        if (BulkUpdate.PrepareClaim<T>(db, keyProperty, distinct, guardProperty, values) is { } write)
            _queued.Add(new Queued(write, conflict is null ? null : new Expected(distinct.Length, conflict)));
    }

    /// <summary>
    /// The update locks of the listed rows, taken in key order by one statement (<see cref="BulkUpdate.PrepareLock{T}"/>):
    /// queued before the writes that change them.
    /// </summary>
    public void Lock<T>(string keyProperty, IReadOnlyCollection<object> keys)
        where T : class
    {
        if (BulkUpdate.PrepareLock<T>(db, keyProperty, keys) is { } write)
            _queued.Add(new Queued(write, null));
    }

    /// <summary><see cref="BulkUpdate.UpdateAsync{T}"/>, queued: the rows' values are those they hold when flushed.</summary>
    public void Update<T>(IReadOnlyCollection<T> rows, string keyProperty, IReadOnlyList<string> properties)
        where T : class
    {
        if (BulkUpdate.PrepareUpdate(db, rows, keyProperty, properties) is { } write)
            _queued.Add(new Queued(write, null));
    }

    /// <summary>
    /// Runs what was queued, in the context's current transaction; returns how many rows each write changed, in the
    /// order queued (for a lock, what the database reports for its read: not a change). Nothing queued: no round trip.
    /// </summary>
    public async Task<int[]> FlushAsync(CancellationToken ct = default)
    {
        if (_queued.Count == 0)
            return [];
        Queued[] queued = [.. _queued];
        _queued.Clear();
        var changed = new int[queued.Length];
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            if (db.Database.GetDbConnection() is SqliteConnection sqlite)
            {
                // Each write is told to the caches as it runs, and a conflict stops the writes after it.
                for (var i = 0; i < queued.Length; i++)
                {
                    changed[i] = queued[i].Write.RunOnSqlite!(sqlite);
                    queued[i].Write.Wrote?.Invoke();
                    Check(queued[i], changed[i]);
                }
                return changed;
            }
            else
            {
                await using var batch = ((NpgsqlConnection)db.Database.GetDbConnection()).CreateBatch();
                batch.Transaction = (NpgsqlTransaction?)db.Database.CurrentTransaction?.GetDbTransaction();
                var firstStatement = new int[queued.Length + 1];
                for (var i = 0; i < queued.Length; i++)
                {
                    firstStatement[i] = batch.BatchCommands.Count;
                    queued[i].Write.AddToPostgres!(batch);
                }
                firstStatement[^1] = batch.BatchCommands.Count;
                await batch.ExecuteNonQueryAsync(ct);
                for (var i = 0; i < queued.Length; i++)
                {
                    for (var statement = firstStatement[i]; statement < firstStatement[i + 1]; statement++)
                        changed[i] += batch.BatchCommands[statement].RecordsAffected;
                    queued[i].Write.Wrote?.Invoke();
                }
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
        for (var i = 0; i < queued.Length; i++)
            Check(queued[i], changed[i]);
        return changed;
    }

    private static void Check(Queued write, int changed)
    {
        if (write.Expected is { } expected && changed != expected.Rows)
            throw new DbUpdateConcurrencyException(expected.Conflict);
    }

    private sealed record Queued(BatchedWrite Write, Expected? Expected);

    private sealed record Expected(int Rows, string Conflict);
}

/// <summary>
/// One write, ready for the provider of the context it was prepared for: run at once on SQLite's connection
/// (returning the rows it changed), or added to a PostgreSQL batch as one or more statements; then what it wrote is
/// told to <see cref="CommittedWrites"/>.
/// </summary>
internal sealed record BatchedWrite(Func<SqliteConnection, int>? RunOnSqlite, Action<NpgsqlBatch>? AddToPostgres, Action? Wrote = null);
