using System.Data.Common;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace Gatehouse.Server.Storage;

/// <summary>
/// New rows written as multi-row INSERTs, in the context's current transaction, without EF's change tracking: in
/// the group commit of logins and in the audit writer that tracking was most of the CPU (docs/benchmarks.md).
/// Table, columns and parameter conversion come from the EF model, so each provider gets what EF would send.
/// Rows must be new and are not tracked afterwards; keys the database generates (an integer identity) are left to it.
/// </summary>
public static class BulkInsert
{
    /// <summary>
    /// Rows per statement. Microsoft.Data.Sqlite finds each parameter by a linear search of the statement's names, so
    /// binding costs the square of their number: 200 audit rows (2,200 parameters) made every write slower than EF's
    /// own statements, and 25 rows still spent a fifth of the CPU there (docs/benchmarks.md).
    /// </summary>
    private const int RowsPerStatement = 8;

    public static async Task InsertAsync<T>(GatehouseDb db, IReadOnlyList<T> rows, CancellationToken ct = default)
        where T : class
    {
        if (rows.Count == 0)
            return;
        var entity = db.Model.FindEntityType(typeof(T)) ?? throw new InvalidOperationException($"{typeof(T).Name} is not in the model.");
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        var columns = entity.GetProperties()
            .Where(p => !(p.IsPrimaryKey() && p.ValueGenerated == ValueGenerated.OnAdd && (p.ClrType == typeof(long) || p.ClrType == typeof(int))))
            .Select(p => (Property: p, Name: p.GetColumnName(table)!, Mapping: (RelationalTypeMapping)p.GetRelationalTypeMapping()))
            .ToList();
        var sql = db.GetService<ISqlGenerationHelper>();
        var head = $"INSERT INTO {sql.DelimitIdentifier(table.Name, table.Schema)} ({string.Join(", ", columns.Select(c => sql.DelimitIdentifier(c.Name)))}) VALUES ";

        // SQLite runs in process: one prepared single-row statement, stepped once per row, is its fastest insert
        // (no parsing per row, and binding by name stays cheap). A server database gets several rows per round trip.
        var rowsPerStatement = db.Database.IsSqlite() ? 1 : RowsPerStatement;
        var connection = db.Database.GetDbConnection();
        await db.Database.OpenConnectionAsync(ct);
        DbCommand? command = null;
        var commandRows = 0;
        try
        {
            for (var start = 0; start < rows.Count; start += rowsPerStatement)
            {
                var end = Math.Min(rows.Count, start + rowsPerStatement);
                if (command is null || commandRows != end - start)
                {
                    // A new text only when the row count changes: the provider keeps the statement it prepared.
                    if (command is not null)
                        await command.DisposeAsync();
                    command = connection.CreateCommand();
                    command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
                    command.CommandText = Text(head, columns.Count, end - start, sql);
                    commandRows = end - start;
                }
                command.Parameters.Clear();
                for (var row = start; row < end; row++)
                {
                    for (var column = 0; column < columns.Count; column++)
                    {
                        var (property, _, mapping) = columns[column];
                        // Named as it is written in the SQL, so the provider finds it at the first try.
                        command.Parameters.Add(mapping.CreateParameter(command, sql.GenerateParameterName(ParameterName(row - start, column, columns.Count)),
                            property.GetGetter().GetClrValueUsingContainingEntity(rows[row]), property.IsNullable));
                    }
                }
                await command.ExecuteNonQueryAsync(ct);
            }
        }
        finally
        {
            if (command is not null)
                await command.DisposeAsync();
            await db.Database.CloseConnectionAsync();
        }
    }

    private static string ParameterName(int row, int column, int columns) => $"p{row * columns + column}";

    private static string Text(string head, int columns, int rows, ISqlGenerationHelper sql)
    {
        var text = new StringBuilder(head);
        for (var row = 0; row < rows; row++)
        {
            text.Append(row == 0 ? "(" : ", (");
            for (var column = 0; column < columns; column++)
                text.Append(column == 0 ? "" : ", ").Append(sql.GenerateParameterNamePlaceholder(ParameterName(row, column, columns)));
            text.Append(')');
        }
        return text.ToString();
    }
}
