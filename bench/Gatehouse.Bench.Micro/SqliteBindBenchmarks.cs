using System.Globalization;
using BenchmarkDotNet.Attributes;
using Gatehouse.Server.Storage;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Gatehouse.Bench.Micro;

/// <summary>
/// Binding one row's values to a prepared SQLite statement, as the group commit and the audit writer do for every row
/// (change 68): the values as strings through SQLitePCL (the baseline, how <see cref="SqliteValues"/> bound them
/// before) against <see cref="SqliteValues.Bind"/>, which formats and encodes them into spans. The row is a
/// session's: a Guid key, six texts, two times and a null.
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class SqliteBindBenchmarks
{
    private readonly object?[] _row =
    [
        Guid.CreateVersion7(), "0196f3c2-network", "0196f3c2-user-ref", "device-7f3a9c", "ios", "iPhone15,2", "6.35.3",
        DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(30), null,
    ];

    private SqliteConnection _connection = null!;
    private sqlite3_stmt _statement = null!;

    [GlobalSetup]
    public void SetUp()
    {
        _connection = new SqliteConnection("Data Source=:memory:");
        _connection.Open();
        var parameters = string.Join(", ", _row.Select(_ => "?"));
        SqliteValues.Check(_connection.Handle!, raw.sqlite3_prepare_v2(_connection.Handle!, $"SELECT {parameters}", out _statement));
    }

    [GlobalCleanup]
    public void CleanUp()
    {
        _statement.Dispose();
        _connection.Dispose();
    }

    [Benchmark(Baseline = true, Description = "bind a session row, values as strings")]
    public int BindAsStrings()
    {
        var result = 0;
        for (var i = 0; i < _row.Length; i++)
        {
            result |= _row[i] switch
            {
                null => raw.sqlite3_bind_null(_statement, i + 1),
                string text => raw.sqlite3_bind_text(_statement, i + 1, text),
                Guid id => raw.sqlite3_bind_text(_statement, i + 1, id.ToString().ToUpperInvariant()),
                DateTimeOffset time => raw.sqlite3_bind_text(_statement, i + 1, time.ToString(SqliteValues.TimeLayout, CultureInfo.InvariantCulture)),
                _ => throw new InvalidOperationException(),
            };
        }
        return result;
    }

    [Benchmark(Description = "bind a session row, SqliteValues.Bind")]
    public int BindAsSpans()
    {
        var result = 0;
        for (var i = 0; i < _row.Length; i++)
            result |= SqliteValues.Bind(_statement, i + 1, _row[i]);
        return result;
    }
}
