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
        var writes = tables.Where(rows => rows.Count > 0).Select(rows => (Table: TableOf(db, rows), Rows: rows)).ToList();
        if (writes.Count == 0)
            return;

        await db.Database.OpenConnectionAsync(ct);
        try
        {
            if (db.Database.GetDbConnection() is SqliteConnection sqlite)
            {
                foreach (var (table, rows) in writes)
                    InsertSqlite(sqlite, table, rows);
            }
            else
            {
                await InsertBatchedAsync(db, writes, ct);
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private static Table TableOf(DbContext db, IReadOnlyList<object> rows)
    {
        var type = rows[0].GetType();
        var entity = db.Model.FindEntityType(type) ?? throw new InvalidOperationException($"{type.Name} is not in the model.");
        RefuseUnfaithful(entity);
        RefuseMissingGeneratedValues(entity, rows);
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        var columns = entity.GetProperties()
            .Where(p => !IsDatabaseIdentity(p))
            .Select(p => new Column(p, p.GetColumnName(table)!, p.GetRelationalTypeMapping()))
            .ToList();
        var sql = db.GetService<ISqlGenerationHelper>();
        return new Table(sql.DelimitIdentifier(table.Name, table.Schema), string.Join(", ", columns.Select(c => sql.DelimitIdentifier(c.Name))), columns);
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
    private static void RefuseMissingGeneratedValues(IEntityType entity, IReadOnlyList<object> rows)
    {
        foreach (var property in entity.GetProperties())
        {
            if (property.ValueGenerated == ValueGenerated.Never || IsDatabaseIdentity(property))
                continue;
            var getter = property.GetGetter();
            foreach (var row in rows)
            {
                if (getter.HasSentinelValueUsingContainingEntity(row))
                    throw Unfaithful(entity, $"a row leaves its {property.Name} for EF to generate");
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
    private static void InsertSqlite(SqliteConnection connection, Table table, IReadOnlyList<object> rows)
    {
        var columns = table.Columns;
        var handle = connection.Handle!;
        var text = table.InsertHead + "(" + string.Join(", ", columns.Select(_ => "?")) + ")";
        SqliteValues.Check(handle, raw.sqlite3_prepare_v2(handle, text, out var statement));
        try
        {
            foreach (var row in rows)
            {
                for (var column = 0; column < columns.Count; column++)
                    SqliteValues.Check(handle, SqliteValues.Bind(statement, column + 1, columns[column].ProviderValue(row)));
                SqliteValues.Step(handle, statement);
            }
        }
        finally
        {
            statement.Dispose();
        }
    }

    /// <summary>
    /// On PostgreSQL each table's rows go in one statement whose text does not depend on how many rows there are:
    /// every column is one array parameter (<see cref="PostgresArrays"/>), and <c>unnest</c> turns the arrays back into
    /// rows. All the tables in one round trip.
    /// </summary>
    private static async Task InsertBatchedAsync(DbContext db, List<(Table Table, IReadOnlyList<object> Rows)> writes, CancellationToken ct)
    {
        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        await using var batch = connection.CreateBatch();
        batch.Transaction = (NpgsqlTransaction?)db.Database.CurrentTransaction?.GetDbTransaction();
        foreach (var (table, rows) in writes)
        {
            var statement = batch.CreateBatchCommand();
            statement.CommandText = table.UnnestInsert;
            foreach (var column in table.Columns)
                statement.Parameters.Add(PostgresArrays.Of(column.Property, column.Mapping, [.. rows.Select(column.ProviderValue)]));
            batch.BatchCommands.Add(statement);
        }
        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <param name="Name">Delimited, with its schema.</param>
    /// <param name="ColumnList">The columns' delimited names, in <paramref name="Columns"/>' order.</param>
    private sealed record Table(string Name, string ColumnList, List<Column> Columns)
    {
        public string InsertHead => $"INSERT INTO {Name} ({ColumnList}) VALUES ";

        /// <summary>One positional array parameter per column, in <see cref="Columns"/>' order.</summary>
        public string UnnestInsert => $"INSERT INTO {Name} ({ColumnList}) SELECT * FROM unnest({string.Join(", ", Columns.Select((_, i) => $"${i + 1}"))})";
    }

    private sealed record Column(IProperty Property, string Name, RelationalTypeMapping Mapping)
    {
        public object? ClrValue(object row) => Property.GetGetter().GetClrValueUsingContainingEntity(row);

        public object? ProviderValue(object row) => SqliteValues.ToProvider(Mapping, ClrValue(row));
    }
}
