using System.Collections.Concurrent;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Users;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using SQLitePCL;

namespace Gatehouse.Server.Sessions;

/// <summary>
/// The bearer check's read of a session with its user, on SQLite, without EF: on connections of its own, each keeping
/// the statement prepared. Through EF each read took a pooled context, opened a pooled connection (which registers
/// EF's functions again), had Microsoft.Data.Sqlite prepare the join again and materialized the row, for every bearer
/// check the session cache cannot answer: without it a logout costs a quarter to a third less CPU (docs/benchmarks.md,
/// change 45). The statement and the values are taken from the model, converters included, so what it reads is what
/// EF would (SessionReadsTests compares the two).
/// </summary>
internal sealed class SqliteSessionReads : IDisposable
{
    /// <summary>Connections kept between reads; a burst beyond them opens more and closes them after.</summary>
    private const int KeptConnections = 8;

    private readonly string _connectionString;
    private readonly string _sql;
    private readonly Func<long, DateTimeOffset> _time;
    private readonly ConcurrentBag<Connection> _kept = [];
    private int _keptCount;
    private volatile bool _disposed;

    public SqliteSessionReads(GatehouseDb db)
    {
        _connectionString = new SqliteConnectionStringBuilder(db.Database.GetConnectionString()) { Pooling = false }.ToString();
        var sessions = db.Model.FindEntityType(typeof(Session))!;
        var users = db.Model.FindEntityType(typeof(User))!;
        var sql = db.GetService<ISqlGenerationHelper>();
        string Column(string alias, IEntityType entity, string property) =>
            alias + "." + sql.DelimitIdentifier(entity.FindProperty(property)!.GetColumnName());
        string[] columns =
        [
            Column("s", sessions, nameof(Session.NetworkId)), Column("s", sessions, nameof(Session.RevokedAt)),
            Column("s", sessions, nameof(Session.CreatedAt)),
            .. UserColumns.Select(p => Column("u", users, p)),
        ];
        _sql = $"SELECT {string.Join(", ", columns)} FROM {sql.DelimitIdentifier(sessions.GetTableName()!)} AS s "
            + $"INNER JOIN {sql.DelimitIdentifier(users.GetTableName()!)} AS u "
            + $"ON {Column("s", sessions, nameof(Session.UserRef))} = {Column("u", users, nameof(User.Id))} "
            + $"WHERE {Column("s", sessions, nameof(Session.Id))} = ?1 LIMIT 1";
        // Every time column has the same converter (GatehouseDb.ConfigureConventions); it is asked for by one of them.
        var converter = sessions.FindProperty(nameof(Session.CreatedAt))!.GetTypeMapping().Converter
            ?? throw new InvalidOperationException("SQLite stores times through a converter; the model has none.");
        _time = stored => (DateTimeOffset)converter.ConvertFromProvider(stored)!;
        // A column added to User and not read here would be left at its default on SQLite alone: a flag the check
        // judges would then read false. Refused at the first read instead.
        var unread = users.GetProperties().Select(p => p.Name).Except(UserColumns, StringComparer.Ordinal).ToList();
        if (unread.Count > 0)
            throw new InvalidOperationException($"SqliteSessionReads does not read User's {string.Join(", ", unread)}.");
    }

    /// <summary>The columns of <see cref="User"/> in the order <see cref="Connection.Read"/> takes them.</summary>
    private static readonly string[] UserColumns =
    [
        nameof(User.Id), nameof(User.NetworkId), nameof(User.UserId), nameof(User.DisplayName), nameof(User.Kind),
        nameof(User.IsGlobalBan), nameof(User.IsDeleted), nameof(User.CreatedAt), nameof(User.UpdatedAt),
    ];

    public SessionState? Read(Guid sessionId)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Connection connection;
        if (_kept.TryTake(out var kept))
        {
            Interlocked.Decrement(ref _keptCount);
            connection = kept;
        }
        else
        {
            connection = new Connection(this);
        }
        var reusable = false;
        try
        {
            var state = connection.Read(sessionId);
            reusable = true;
            return state;
        }
        finally
        {
            // A connection whose read failed is not trusted again; one beyond the kept number is closed.
            if (reusable && Interlocked.Increment(ref _keptCount) <= KeptConnections)
            {
                _kept.Add(connection);
                if (_disposed)
                    CloseKept();
            }
            else
            {
                if (reusable)
                    Interlocked.Decrement(ref _keptCount);
                connection.Dispose();
            }
        }
    }

    public void Dispose()
    {
        _disposed = true;
        CloseKept();
    }

    private void CloseKept()
    {
        while (_kept.TryTake(out var connection))
            connection.Dispose();
    }

    private sealed class Connection : IDisposable
    {
        private readonly SqliteSessionReads _reads;
        private readonly SqliteConnection _connection;
        private readonly sqlite3 _handle;
        private readonly sqlite3_stmt _statement;

        public Connection(SqliteSessionReads reads)
        {
            _reads = reads;
            _connection = new SqliteConnection(reads._connectionString);
            try
            {
                _connection.Open();
                _handle = _connection.Handle!;
                // As EF's connections wait (StorageSetup): a checkpoint may hold the database for a moment.
                SqliteValues.Check(_handle, raw.sqlite3_busy_timeout(_handle, 30_000));
                SqliteValues.Check(_handle, raw.sqlite3_prepare_v2(_handle, reads._sql, out _statement));
            }
            catch
            {
                _connection.Dispose();
                throw;
            }
        }

        public SessionState? Read(Guid sessionId)
        {
            SqliteValues.Check(_handle, SqliteValues.Bind(_statement, 1, sessionId));
            try
            {
                var stepped = raw.sqlite3_step(_statement);
                if (stepped == raw.SQLITE_DONE)
                    return null;
                SqliteValues.Check(_handle, stepped);
                var time = _reads._time;
                var user = new User
                {
                    Id = Text(3)!,
                    NetworkId = Text(4)!,
                    UserId = Text(5)!,
                    DisplayName = Text(6),
                    Kind = (UserKind)Integer(7),
                    IsGlobalBan = Integer(8) != 0,
                    IsDeleted = Integer(9) != 0,
                    CreatedAt = time(Integer(10)),
                    UpdatedAt = time(Integer(11)),
                };
                var revokedAt = raw.sqlite3_column_type(_statement, 1) == raw.SQLITE_NULL ? (DateTimeOffset?)null : time(Integer(1));
                return new SessionState(Text(0)!, revokedAt, time(Integer(2)), user);
            }
            finally
            {
                // Ends the read, so this connection holds no snapshot of the database between requests.
                raw.sqlite3_reset(_statement);
            }
        }

        /// <summary>A NULL where the schema has none (a hand-edited file) is refused, not read as 0: not banned, not deleted.</summary>
        private long Integer(int column) =>
            raw.sqlite3_column_type(_statement, column) == raw.SQLITE_INTEGER
                ? raw.sqlite3_column_int64(_statement, column)
                : throw new InvalidDataException($"Column {column} of the session read is not an integer.");

        private string? Text(int column) =>
            raw.sqlite3_column_type(_statement, column) == raw.SQLITE_NULL ? null : raw.sqlite3_column_text(_statement, column).utf8_to_string();

        public void Dispose()
        {
            _statement.Dispose();
            _connection.Dispose();
        }
    }
}
