using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using SQLitePCL;

namespace Gatehouse.Server.Storage;

/// <summary>
/// New rows written in the context's current transaction without EF's change tracking: in the group commit of logins
/// and in the audit writer that tracking was most of the CPU (docs/benchmarks.md). On SQLite one prepared statement
/// is stepped per row; on PostgreSQL each table's rows go in one statement of array parameters. Table, columns and
/// value conversion come from the EF model, so each provider stores what EF would.
/// Rows must be new and are not tracked afterwards; keys the database generates (an integer identity) are left to it.
/// </summary>
internal static class BulkInsert
{
    public static Task InsertAsync<T>(DbContext db, IReadOnlyList<T> rows, CancellationToken ct = default)
        where T : class =>
        InsertTablesAsync(db, [rows], ct);

    /// <summary>
    /// Many rows of one table where throughput matters more than one round trip (the audit writer's batches): on
    /// PostgreSQL a binary <c>COPY … FROM STDIN</c>, which takes one more round trip than an INSERT but parses, plans
    /// and binds nothing per row: the INSERTs it replaced took this process four times the CPU per audit row
    /// (docs/benchmarks.md, change 43). Elsewhere the same as <see cref="InsertAsync{T}"/>.
    /// </summary>
    public static async Task AppendAsync<T>(DbContext db, IReadOnlyList<T> rows, CancellationToken ct = default)
        where T : class
    {
        if (rows.Count == 0)
            return;
        if (db.Database.GetDbConnection() is not NpgsqlConnection postgres)
        {
            await InsertAsync(db, rows, ct);
            return;
        }

        var table = TableOf(db, rows);
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await using var import = await postgres.BeginBinaryImportAsync($"COPY {table.Name} ({table.ColumnList}) FROM STDIN (FORMAT BINARY)", ct);
            foreach (var row in rows)
            {
                await import.StartRowAsync(ct);
                foreach (var column in table.Columns)
                {
                    // Named by its type without facets (varchar, not varchar(64)): the binary format does not carry them.
                    if (column.ProviderValue(row) is { } value)
                        await import.WriteAsync(value, column.Mapping.StoreTypeNameBase, ct);
                    else
                        await import.WriteNullAsync(ct);
                }
            }
            await import.CompleteAsync(ct);
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    /// <summary>
    /// The rows of several tables, written in the order given (a row after the rows its foreign keys name); on a
    /// server database all in one round trip. Every table is checked before anything is written.
    /// </summary>
    public static async Task InsertTablesAsync(DbContext db, IReadOnlyList<IReadOnlyList<object>> tables, CancellationToken ct = default)
    {
        var batch = new WriteBatch(db);
        batch.Insert(tables);
        await batch.FlushAsync(ct);
    }

    /// <summary>The tables' rows as one write of a <see cref="WriteBatch"/>, every table checked first; null when there are none.</summary>
    internal static BatchedWrite? Prepare(DbContext db, IReadOnlyList<IReadOnlyList<object>> tables)
    {
        // Copied: rows added to a list after it was queued would not be in what was checked.
        var writes = tables.Where(rows => rows.Count > 0).Select(rows => (Table: TableOf(db, rows), Rows: (IReadOnlyList<object>)[.. rows])).ToList();
        if (writes.Count == 0)
            return null;
        return db.Database.IsSqlite()
            ? new BatchedWrite(sqlite => writes.Sum(write => InsertSqlite(sqlite, write.Table, write.Rows)), null)
            : new BatchedWrite(null, batch => AddPostgres(batch, writes));
    }

    /// <summary>
    /// Each entity type's table, columns and statements, worked out once per model (one per provider): worked out for
    /// every call, they were 1.5 % of a new user's login, whose group writes five tables (docs/benchmarks.md, change 71).
    /// </summary>
    private static readonly ConditionalWeakTable<IModel, ConcurrentDictionary<Type, Table>> Tables = new();

    private static Table TableOf(DbContext db, IReadOnlyList<object> rows)
    {
        var table = Tables.GetValue(db.Model, static _ => new())
            .GetOrAdd(rows[0].GetType(), static (type, db) => Describe(db, type), db);
        RefuseMissingGeneratedValues(table, rows);
        return table;
    }

    private static Table Describe(DbContext db, Type type)
    {
        var entity = db.Model.FindEntityType(type) ?? throw new InvalidOperationException($"{type.Name} is not in the model.");
        RefuseUnfaithful(entity);
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        var columns = entity.GetProperties()
            .Where(p => !IsDatabaseIdentity(p))
            .Select(p => new Column(p, p.GetColumnName(table)!, p.GetRelationalTypeMapping()))
            .ToList();
        var generatedOnSave = entity.GetProperties()
            .Where(p => p.ValueGenerated != ValueGenerated.Never && !IsDatabaseIdentity(p))
            .ToList();
        var sql = db.GetService<ISqlGenerationHelper>();
        return new Table(entity, sql.DelimitIdentifier(table.Name, table.Schema), string.Join(", ", columns.Select(c => sql.DelimitIdentifier(c.Name))),
            columns, generatedOnSave);
    }

    private static bool IsDatabaseIdentity(IProperty property) =>
        property.IsPrimaryKey() && property.ValueGenerated == ValueGenerated.OnAdd && (property.ClrType == typeof(long) || property.ClrType == typeof(int));

    /// <summary>
    /// Only plain rows: one table, every column a CLR property of the row. Anything else EF would write more of than
    /// this writer can (a complex or owned value's columns, a shadow or discriminator column, a key EF generates on the
    /// client) would be stored incomplete without an error, so it is refused before anything is written.
    /// </summary>
    internal static void RefuseUnfaithful(IEntityType entity)
    {
        string? why =
            entity.GetTableName() is null ? "it is not mapped to a table"
            : entity.GetComplexProperties().Any() ? $"its complex property {entity.GetComplexProperties().First().Name} has columns of its own"
            : entity.GetNavigations().FirstOrDefault(n => n.TargetEntityType.IsOwned()) is { } owned ? $"its owned {owned.Name} is stored beside it"
            : entity.GetProperties().FirstOrDefault(p => p.IsShadowProperty()) is { } shadow ? $"its column {shadow.Name} has no property on the row"
            : entity.BaseType is not null || entity.GetDirectlyDerivedTypes().Any() ? "it is part of an inheritance hierarchy"
            : entity.GetProperties().FirstOrDefault(p => p.IsConcurrencyToken) is { } token ? $"its {token.Name} is a concurrency token EF sets"
            : null;
        if (why is not null)
            throw Unfaithful(entity, why);
    }

    /// <summary>A key EF would generate when it saves (a Guid left empty) must come with the row: this writer generates nothing.</summary>
    private static void RefuseMissingGeneratedValues(Table table, IReadOnlyList<object> rows)
    {
        foreach (var property in table.GeneratedOnSave)
        {
            var getter = property.GetGetter();
            foreach (var row in rows)
            {
                if (getter.HasSentinelValueUsingContainingEntity(row))
                    throw Unfaithful(table.Entity, $"a row leaves its {property.Name} for EF to generate");
            }
        }
    }

    private static NotSupportedException Unfaithful(IEntityType entity, string why) =>
        new($"BulkInsert cannot write {entity.DisplayName()} faithfully: {why}. Add its rows through SaveChanges.");

    /// <summary>
    /// SQLite runs in process, so its fastest insert is one statement prepared once and stepped once per row, with
    /// each value bound by position. Through Microsoft.Data.Sqlite's command, which looks up every parameter by name
    /// and wraps each step in a reader, the same inserts took twice the CPU (docs/benchmarks.md, change 14).
    /// </summary>
    private static int InsertSqlite(SqliteConnection connection, Table table, IReadOnlyList<object> rows)
    {
        var columns = table.Columns;
        var handle = connection.Handle!;
        SqliteValues.Check(handle, raw.sqlite3_prepare_v2(handle, table.PositionalInsert, out var statement));
        try
        {
            foreach (var row in rows)
            {
                for (var column = 0; column < columns.Count; column++)
                    SqliteValues.Check(handle, SqliteValues.Bind(statement, column + 1, columns[column].ProviderValue(row)));
                SqliteValues.Step(handle, statement);
            }
            return rows.Count;
        }
        finally
        {
            statement.Dispose();
        }
    }

    /// <summary>
    /// On PostgreSQL each table's rows go in one statement whose text does not depend on how many rows there are:
    /// every column is one array parameter (<see cref="PostgresArrays"/>), and <c>unnest</c> turns the arrays back into
    /// rows.
    /// </summary>
    private static void AddPostgres(NpgsqlBatch batch, List<(Table Table, IReadOnlyList<object> Rows)> writes)
    {
        foreach (var (table, rows) in writes)
        {
            var statement = batch.CreateBatchCommand();
            statement.CommandText = table.UnnestInsert;
            foreach (var column in table.Columns)
                statement.Parameters.Add(PostgresArrays.Of(column.Property, column.Mapping, [.. rows.Select(column.ProviderValue)]));
            batch.BatchCommands.Add(statement);
        }
    }

    /// <param name="name">Delimited, with its schema.</param>
    /// <param name="columnList">The columns' delimited names, in <paramref name="columns"/>' order.</param>
    /// <param name="generatedOnSave">Properties EF would give a value on save, which each row must bring.</param>
    private sealed class Table(IEntityType entity, string name, string columnList, List<Column> columns, List<IProperty> generatedOnSave)
    {
        public IEntityType Entity { get; } = entity;
        public string Name { get; } = name;
        public string ColumnList { get; } = columnList;
        public List<Column> Columns { get; } = columns;
        public List<IProperty> GeneratedOnSave { get; } = generatedOnSave;

        /// <summary>One <c>?</c> per column, in <see cref="Columns"/>' order (SQLite).</summary>
        public string PositionalInsert { get; } = $"INSERT INTO {name} ({columnList}) VALUES ({string.Join(", ", columns.Select(_ => "?"))})";

        /// <summary>One positional array parameter per column, in <see cref="Columns"/>' order (PostgreSQL).</summary>
        public string UnnestInsert { get; } = $"INSERT INTO {name} ({columnList}) SELECT * FROM unnest({string.Join(", ", columns.Select((_, i) => $"${i + 1}"))})";
    }

    private sealed record Column(IProperty Property, string Name, RelationalTypeMapping Mapping)
    {
        public object? ClrValue(object row) => Property.GetGetter().GetClrValueUsingContainingEntity(row);

        public object? ProviderValue(object row) => SqliteValues.ToProvider(Mapping, ClrValue(row));
    }
}
