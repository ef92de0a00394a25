using System.Buffers.Text;
using System.Runtime.CompilerServices;
using Gatehouse.Server.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using SQLitePCL;

namespace Gatehouse.Server.Sessions;

/// <summary>
/// A login group's read of its devices' live sessions on SQLite, without EF: one prepared statement on the group's own
/// connection and transaction, stepped once per device. A returning user's login reads every session its device still
/// has open (the cap ends the oldest), and through EF that read was most of what made it dearer than a new user's: the
/// key list serialized to JSON, the query's enumerator and a materializer per row (docs/benchmarks.md, change 66).
/// Columns and time conversion come from the model, so it reads what EF's query would; GroupReadsTests compares the two.
/// </summary>
internal static class SqliteDeviceSessions
{
    private static readonly ConditionalWeakTable<IModel, Shape> Shapes = [];

    /// <summary>
    /// The partial rows the login rules judge (id, user, device, creation, expiry), oldest first on each device; they
    /// never leave the group.
    /// </summary>
    public static async Task<List<Session>> UnrevokedOnAsync(GatehouseDb db, string networkId, IReadOnlyList<string> deviceIds)
    {
        var connection = (SqliteConnection)db.Database.GetDbConnection();
        var shape = Shapes.GetValue(db.Model, _ => new Shape(db));
        var found = new List<Session>(deviceIds.Count);
        await db.Database.OpenConnectionAsync();
        try
        {
            var handle = connection.Handle!;
            SqliteValues.Check(handle, raw.sqlite3_prepare_v2(handle, shape.Sql, out var statement));
            using (statement)
            {
                SqliteValues.Check(handle, SqliteValues.Bind(statement, 1, networkId));
                foreach (var deviceId in deviceIds)
                {
                    SqliteValues.Check(handle, SqliteValues.Bind(statement, 2, deviceId));
                    try
                    {
                        int stepped;
                        while ((stepped = raw.sqlite3_step(statement)) == raw.SQLITE_ROW)
                            found.Add(shape.Read(statement, networkId, deviceId));
                        SqliteValues.Check(handle, stepped);
                    }
                    finally
                    {
                        raw.sqlite3_reset(statement);
                    }
                }
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
        return found;
    }

    private sealed class Shape
    {
        private readonly Func<long, DateTimeOffset> _time;

        public Shape(GatehouseDb db)
        {
            var sessions = db.Model.FindEntityType(typeof(Session))!;
            var sql = db.GetService<ISqlGenerationHelper>();
            string Column(string property) => sql.DelimitIdentifier(sessions.FindProperty(property)!.GetColumnName());
            // The device index holds only unrevoked sessions: the query names that condition so SQLite can use it.
            Sql = $"SELECT {Column(nameof(Session.Id))}, {Column(nameof(Session.UserRef))}, {Column(nameof(Session.CreatedAt))}, "
                + $"{Column(nameof(Session.ExpiresAt))} FROM {sql.DelimitIdentifier(sessions.GetTableName()!)} "
                + $"WHERE {Column(nameof(Session.NetworkId))} = ?1 AND {Column(nameof(Session.DeviceId))} = ?2 "
                + $"AND {Column(nameof(Session.RevokedAt))} IS NULL ORDER BY {Column(nameof(Session.CreatedAt))}";
            var converter = sessions.FindProperty(nameof(Session.CreatedAt))!.GetTypeMapping().Converter
                ?? throw new InvalidOperationException("SQLite stores times through a converter; the model has none.");
            _time = stored => (DateTimeOffset)converter.ConvertFromProvider(stored)!;
        }

        public string Sql { get; }

        /// <summary>
        /// The device's id is the one asked for: SQLite compares text byte for byte, so the stored one is the same.
        /// </summary>
        public Session Read(sqlite3_stmt statement, string networkId, string deviceId) => new()
        {
            Id = Utf8Parser.TryParse(raw.sqlite3_column_blob(statement, 0), out Guid id, out var length) && length == 36
                ? id
                : throw new InvalidDataException("A session's id is not a GUID."),
            NetworkId = networkId,
            UserRef = raw.sqlite3_column_text(statement, 1).utf8_to_string()
                ?? throw new InvalidDataException("A session names no user."),
            DeviceId = deviceId,
            CreatedAt = _time(Integer(statement, 2)),
            ExpiresAt = _time(Integer(statement, 3)),
        };

        /// <summary>A NULL where the schema has none (a hand-edited file) is refused, not read as 0.</summary>
        private static long Integer(sqlite3_stmt statement, int column) =>
            raw.sqlite3_column_type(statement, column) == raw.SQLITE_INTEGER
                ? raw.sqlite3_column_int64(statement, column)
                : throw new InvalidDataException($"Column {column} of a device's sessions is not an integer.");
    }
}
