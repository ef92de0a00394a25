using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore.Storage;
using SQLitePCL;

namespace Gatehouse.Server.Storage;

/// <summary>
/// Binds a provider value to a raw SQLite statement the way Microsoft.Data.Sqlite binds the same value as a command
/// parameter, so a row written by <see cref="BulkInsert"/> reads and compares exactly like one EF wrote
/// (BulkInsertTests compares them column by column).
/// </summary>
internal static class SqliteValues
{
    /// <summary>The value as the provider stores it: the CLR value through the mapping's converter, if it has one.</summary>
    public static object? ToProvider(RelationalTypeMapping mapping, object? value) =>
        value is null || mapping.Converter is null ? value : mapping.Converter.ConvertToProvider(value);

    public static int Bind(sqlite3_stmt statement, int position, object? value) => value switch
    {
        null => raw.sqlite3_bind_null(statement, position),
        string text => raw.sqlite3_bind_text(statement, position, text),
        bool flag => raw.sqlite3_bind_int64(statement, position, flag ? 1 : 0),
        int number => raw.sqlite3_bind_int64(statement, position, number),
        long number => raw.sqlite3_bind_int64(statement, position, number),
        double number => raw.sqlite3_bind_double(statement, position, number),
        byte[] bytes => raw.sqlite3_bind_blob(statement, position, bytes),
        Guid id => BindGuid(statement, position, id),
        DateTimeOffset time => BindTime(statement, position, time),
        _ => throw new NotSupportedException($"BulkInsert does not bind {value.GetType().Name} values on SQLite yet."),
    };

    // A Guid and a time are formatted into a stack span, not into strings: they are in every row of every group
    // commit and audit batch, and those strings were all that binding a row allocated (SQLitePCL binds a string's
    // text without allocating). The span overload binds with SQLITE_TRANSIENT, so SQLite has copied the bytes before
    // the call returns (docs/benchmarks.md, change 68).

    /// <summary>Upper case, as Microsoft.Data.Sqlite stores a Guid parameter (lookups compare the text).</summary>
    private static int BindGuid(sqlite3_stmt statement, int position, Guid id)
    {
        Span<byte> utf8 = stackalloc byte[36];
        id.TryFormat(utf8, out _, "D");
        foreach (ref var character in utf8)
        {
            if (character is >= (byte)'a' and <= (byte)'f')
                character -= 'a' - 'A';
        }
        return raw.sqlite3_bind_text(statement, position, utf8);
    }

    /// <summary>The layout Microsoft.Data.Sqlite writes a DateTimeOffset parameter in, so times order and compare alike.</summary>
    private static int BindTime(sqlite3_stmt statement, int position, DateTimeOffset time)
    {
        Span<byte> utf8 = stackalloc byte[64];
        if (!time.TryFormat(utf8, out var written, TimeLayout, CultureInfo.InvariantCulture))
            throw new InvalidOperationException($"A time did not fit its layout's {utf8.Length} bytes.");
        return raw.sqlite3_bind_text(statement, position, utf8[..written]);
    }

    /// <summary>How Microsoft.Data.Sqlite writes a DateTimeOffset as text.</summary>
    internal const string TimeLayout = @"yyyy\-MM\-dd HH\:mm\:ss.FFFFFFFzzz";

    /// <summary>Runs a bound statement once and readies it for the next values; returns the rows it changed.</summary>
    public static int Step(sqlite3 handle, sqlite3_stmt statement)
    {
        var stepped = raw.sqlite3_step(statement);
        if (stepped != raw.SQLITE_DONE)
            Check(handle, stepped);
        var changed = raw.sqlite3_changes(handle);
        Check(handle, raw.sqlite3_reset(statement));
        return changed;
    }

    public static void Check(sqlite3 handle, int result)
    {
        if (result is not (raw.SQLITE_OK or raw.SQLITE_DONE or raw.SQLITE_ROW))
            throw new SqliteException(raw.sqlite3_errmsg(handle).utf8_to_string(), result, raw.sqlite3_extended_errcode(handle));
    }
}
