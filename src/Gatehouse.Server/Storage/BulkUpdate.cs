using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using SQLitePCL;

namespace Gatehouse.Server.Storage;

/// <summary>
/// Changes to rows the session writer read, written in the context's current transaction without EF: a claim by key
/// (<see cref="ClaimAsync{T}"/>, what <c>Where(keys.Contains(key) &amp;&amp; guard == null).ExecuteUpdate(...)</c> did;
/// EF funcletized and looked that statement up again for every group, most of its cost in the single writer,
/// docs/benchmarks.md, change 36) and each row's own values of named columns (<see cref="UpdateAsync{T}"/>, what
/// SaveChanges did for tracked rows, change 37). Table, columns and value conversion come from the EF model, as in
/// <see cref="BulkInsert"/>, and the table (or, written by primary key, its rows) counts as written for the caches
/// (<see cref="CommittedWrites"/>) when the transaction commits, as an EF statement's would. Either can be queued in a
/// <see cref="WriteBatch"/> with other writes of the transaction, and so can the lock of rows in key order that comes
/// before changes to them made in several statements (<see cref="PrepareLock{T}"/>).
/// </summary>
internal static class BulkUpdate
{
    /// <summary>
    /// Keys per statement on a server database: one round trip for a typical group, and fewer sessions than the 200 a
    /// PostgreSQL notification names before it makes the whole table stale (the KeyedSessionNotifications migration).
    /// </summary>
    private const int KeysPerStatement = 64;

    /// <summary>Sets the same values on each listed row whose guard column is still null; returns how many rows it changed.</summary>
    public static async Task<int> ClaimAsync<T>(DbContext db, string keyProperty, IReadOnlyCollection<object> keys, string guardProperty,
        IReadOnlyList<(string Property, object? Value)> values, CancellationToken ct = default)
        where T : class
    {
        var batch = new WriteBatch(db);
        batch.Claim<T>(keyProperty, keys, guardProperty, values);
        return (await batch.FlushAsync(ct)) is [var changed] ? changed : 0;
    }

    /// <summary>
    /// Writes each row's current values of <paramref name="properties"/> to the row with its key, as SaveChanges would
    /// for rows it tracked with those properties modified, without tracking them (docs/benchmarks.md, change 37).
    /// Returns how many rows it found; a key listed twice is written once, with its last row's values.
    /// </summary>
    public static async Task<int> UpdateAsync<T>(DbContext db, IReadOnlyCollection<T> rows, string keyProperty, IReadOnlyList<string> properties,
        CancellationToken ct = default)
        where T : class
    {
        var batch = new WriteBatch(db);
        batch.Update(rows, keyProperty, properties);
        return (await batch.FlushAsync(ct)) is [var changed] ? changed : 0;
    }

    /// <summary><see cref="ClaimAsync{T}"/> as one write of a <see cref="WriteBatch"/>; null when no key is listed.</summary>
    internal static BatchedWrite? PrepareClaim<T>(DbContext db, string keyProperty, IReadOnlyCollection<object> keys, string guardProperty,
        IReadOnlyList<(string Property, object? Value)> values)
        where T : class
    {
        if (keys.Count == 0)
            return null;
        var entity = db.Model.FindEntityType(typeof(T)) ?? throw new InvalidOperationException($"{typeof(T).Name} is not in the model.");
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        var key = Column.Of(entity, table, keyProperty);
        var guard = Column.Of(entity, table, guardProperty);
        var set = values.Select(v => (Column: Column.Of(entity, table, v.Property), v.Value)).ToList();
        var sql = db.GetService<ISqlGenerationHelper>();
        // Numbered placeholders (?1 on SQLite, $1 on PostgreSQL): the set values first, then the key, one per step on
        // SQLite and an array on PostgreSQL.
        string Text(char mark, string keyTest) => $"UPDATE {sql.DelimitIdentifier(table.Name, table.Schema)} SET "
            + string.Join(", ", set.Select((s, i) => $"{sql.DelimitIdentifier(s.Column.Name)} = {mark}{i + 1}"))
            + $" WHERE {sql.DelimitIdentifier(guard.Name)} IS NULL AND {sql.DelimitIdentifier(key.Name)} {keyTest}";

        void Wrote() => CommittedWrites.Watcher.Wrote(db, table.Name, key.IsPrimaryKey ? keys : null);
        if (db.Database.IsSqlite())
        {
            var text = Text('?', $"= ?{set.Count + 1}");
            return new BatchedWrite(sqlite => ClaimSqlite(sqlite, text, key, keys, set), null, Wrote);
        }
        var postgresText = Text('$', $"= ANY(${set.Count + 1})");
        return new BatchedWrite(null, batch => AddClaimPostgres(batch, postgresText, key, keys, set), Wrote);
    }

    /// <summary>
    /// One statement that takes the update lock of each listed row, in key order, on a server database: a transaction
    /// that then changes them in several statements cannot wait for one row while it holds another that a transaction
    /// doing the same holds in the other order. One statement whatever the number of keys (a lock taken per chunk would
    /// be in order within each chunk only). Null, nothing to run, for fewer than two keys (one row has no order to get
    /// wrong, and the write that follows locks it) and on SQLite, whose transaction already holds the only write lock.
    /// </summary>
    internal static BatchedWrite? PrepareLock<T>(DbContext db, string keyProperty, IReadOnlyCollection<object> keys)
        where T : class
    {
        if (keys.Count < 2 || db.Database.IsSqlite())
            return null;
        var entity = db.Model.FindEntityType(typeof(T)) ?? throw new InvalidOperationException($"{typeof(T).Name} is not in the model.");
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        var key = Column.Of(entity, table, keyProperty);
        var sql = db.GetService<ISqlGenerationHelper>();
        var column = sql.DelimitIdentifier(key.Name);
        // FOR NO KEY UPDATE is the lock the updates that follow take: it does not hold back a foreign key's check
        // (another transaction inserting a row that references one of these).
        var text = $"SELECT NULL FROM {sql.DelimitIdentifier(table.Name, table.Schema)} WHERE {column} = ANY($1) ORDER BY {column} FOR NO KEY UPDATE";
        return new BatchedWrite(null, batch =>
        {
            var statement = batch.CreateBatchCommand();
            statement.CommandText = text;
            statement.Parameters.Add(PostgresArrays.Of(key.Property, key.Mapping, [.. keys.Select(key.ToProvider)]));
            batch.BatchCommands.Add(statement);
        });
    }

    /// <summary><see cref="UpdateAsync{T}"/> as one write of a <see cref="WriteBatch"/>; null when there are no rows.</summary>
    internal static BatchedWrite? PrepareUpdate<T>(DbContext db, IReadOnlyCollection<T> rows, string keyProperty, IReadOnlyList<string> properties)
        where T : class
    {
        if (rows.Count == 0)
            return null;
        var entity = db.Model.FindEntityType(typeof(T)) ?? throw new InvalidOperationException($"{typeof(T).Name} is not in the model.");
        // SaveChanges would check such a token and fail on a changed row; this writer would overwrite it.
        if (entity.GetProperties().FirstOrDefault(p => p.IsConcurrencyToken) is { } token)
            throw new NotSupportedException($"BulkUpdate cannot write {entity.DisplayName()} faithfully: its {token.Name} is a concurrency token EF checks.");
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        var key = Column.Of(entity, table, keyProperty);
        var set = properties.Select(p => Column.Of(entity, table, p)).ToList();
        var sql = db.GetService<ISqlGenerationHelper>();
        // A key listed twice is written once, with its last row's values, as a statement per row would leave it; one
        // UPDATE … FROM (VALUES …) would pick either row.
        rows = [.. rows.GroupBy(key.ValueOf).Select(same => same.Last())];

        void Wrote() => CommittedWrites.Watcher.Wrote(db, table.Name, key.IsPrimaryKey ? rows.Select(row => key.ValueOf(row)!) : null);
        if (db.Database.IsSqlite())
        {
            var text = $"UPDATE {sql.DelimitIdentifier(table.Name, table.Schema)} SET {string.Join(", ", set.Select(c => $"{sql.DelimitIdentifier(c.Name)} = ?"))} "
                + $"WHERE {sql.DelimitIdentifier(key.Name)} = ?";
            return new BatchedWrite(sqlite => UpdateSqlite(sqlite, text, [.. set, key], rows), null, Wrote);
        }
        return new BatchedWrite(null, batch => AddUpdatePostgres(batch, table, key, set, rows, sql), Wrote);
    }

    private static int UpdateSqlite<T>(SqliteConnection connection, string text, List<Column> columns, IEnumerable<T> rows)
        where T : class
    {
        var handle = connection.Handle!;
        SqliteValues.Check(handle, raw.sqlite3_prepare_v2(handle, text, out var statement));
        try
        {
            var changed = 0;
            foreach (var row in rows)
            {
                for (var i = 0; i < columns.Count; i++)
                    SqliteValues.Check(handle, SqliteValues.Bind(statement, i + 1, columns[i].ToProvider(columns[i].ValueOf(row))));
                changed += SqliteValues.Step(handle, statement);
            }
            return changed;
        }
        finally
        {
            statement.Dispose();
        }
    }

    /// <summary>
    /// One <c>UPDATE … FROM unnest(…)</c> per <see cref="KeysPerStatement"/> rows on a server database, each column an
    /// array (<see cref="PostgresArrays"/>): a text prepared once, and one statement, so PostgreSQL's trigger sends one
    /// notification naming them all instead of one per row (docs/benchmarks.md, change 46).
    /// </summary>
    private static void AddUpdatePostgres<T>(NpgsqlBatch batch, StoreObjectIdentifier table, Column key, List<Column> set, IReadOnlyCollection<T> rows,
        ISqlGenerationHelper sql)
        where T : class
    {
        List<Column> columns = [key, .. set];
        var text = $"UPDATE {sql.DelimitIdentifier(table.Name, table.Schema)} AS t SET "
            + string.Join(", ", set.Select((c, i) => $"{sql.DelimitIdentifier(c.Name)} = v.{sql.DelimitIdentifier($"c{i + 1}")}"))
            + $" FROM unnest({string.Join(", ", columns.Select((_, i) => $"${i + 1}"))}) AS v({string.Join(", ", columns.Select((_, i) => sql.DelimitIdentifier($"c{i}")))})"
            + $" WHERE t.{sql.DelimitIdentifier(key.Name)} = v.{sql.DelimitIdentifier("c0")}";
        foreach (var chunk in rows.Chunk(KeysPerStatement))
        {
            var statement = batch.CreateBatchCommand();
            statement.CommandText = text;
            foreach (var column in columns)
                statement.Parameters.Add(PostgresArrays.Of(column.Property, column.Mapping, [.. chunk.Select(row => column.ToProvider(column.ValueOf(row)))]));
            batch.BatchCommands.Add(statement);
        }
    }

    /// <summary>One statement prepared once and stepped per key, as <see cref="BulkInsert"/> does on SQLite.</summary>
    private static int ClaimSqlite(SqliteConnection connection, string text, Column key, IEnumerable<object> keys,
        List<(Column Column, object? Value)> set)
    {
        var handle = connection.Handle!;
        SqliteValues.Check(handle, raw.sqlite3_prepare_v2(handle, text, out var statement));
        try
        {
            for (var i = 0; i < set.Count; i++)
                SqliteValues.Check(handle, SqliteValues.Bind(statement, i + 1, set[i].Column.ToProvider(set[i].Value)));
            var changed = 0;
            foreach (var value in keys)
            {
                SqliteValues.Check(handle, SqliteValues.Bind(statement, set.Count + 1, key.ToProvider(value)));
                changed += SqliteValues.Step(handle, statement);
            }
            return changed;
        }
        finally
        {
            statement.Dispose();
        }
    }

    /// <summary>
    /// A server database gets the keys as arrays of <see cref="KeysPerStatement"/>, one statement each: its text is
    /// the same for every group, so it is prepared once (<see cref="PostgresArrays"/>).
    /// </summary>
    private static void AddClaimPostgres(NpgsqlBatch batch, string text, Column key, IReadOnlyCollection<object> keys,
        List<(Column Column, object? Value)> set)
    {
        foreach (var chunk in keys.Chunk(KeysPerStatement))
        {
            var statement = batch.CreateBatchCommand();
            statement.CommandText = text;
            foreach (var (column, value) in set)
                statement.Parameters.Add(column.Parameter(value));
            statement.Parameters.Add(PostgresArrays.Of(key.Property, key.Mapping, [.. chunk.Select(key.ToProvider)]));
            batch.BatchCommands.Add(statement);
        }
    }

    private sealed record Column(IProperty Property, string Name, RelationalTypeMapping Mapping)
    {
        public static Column Of(IEntityType entity, StoreObjectIdentifier table, string propertyName)
        {
            var property = entity.FindProperty(propertyName)
                ?? throw new InvalidOperationException($"{entity.DisplayName()} has no property {propertyName}.");
            return new Column(property, property.GetColumnName(table)!, property.GetRelationalTypeMapping());
        }

        /// <summary>Whether this column alone is the table's primary key: then its values name the rows written (<see cref="CommittedWrites"/>).</summary>
        public bool IsPrimaryKey => Property.FindContainingPrimaryKey() is { Properties: [var only] } && only == Property;

        public object? ToProvider(object? value) => SqliteValues.ToProvider(Mapping, value);

        public object? ValueOf(object row) => Property.GetGetter().GetClrValueUsingContainingEntity(row);

        /// <summary>Positional, configured by the column's mapping as EF would (a batch's statements make no parameters of their own).</summary>
        public DbParameter Parameter(object? value) => Mapping.CreateParameter(ParameterFactory, "", value, Property.IsNullable);
    }

    /// <summary>Only ever asked for new parameters, which it neither keeps nor changes: one serves every thread.</summary>
    private static readonly NpgsqlCommand ParameterFactory = new();
}
