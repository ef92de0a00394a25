using System.Runtime.CompilerServices;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace Gatehouse.Server.Sessions;

/// <summary>
/// A login group's reads on PostgreSQL in one round trip: its devices' bindings, taken with a row lock so two nodes'
/// logins on one device take turns (PostgreSQL's default isolation would otherwise let both see no rival and both stay
/// signed in), its users, and its devices' live sessions, as three statements of one batch. Read through EF they were
/// four round trips (a no-op update took the lock), and the single writer waited out each reply and then its turn on
/// the thread pool behind the requests being served: 4.0–4.6 ms of a 10.5 ms group of 32 logins, of which PostgreSQL
/// ran the statements for 1.4 (docs/benchmarks.md, change 76). Columns come from the model; LoginReadsTests
/// compares every row with what EF's queries read.
/// </summary>
internal static class PostgresLoginReads
{
    private static readonly ConditionalWeakTable<IModel, Statements> ByModel = [];

    /// <summary>In the group's transaction, which must have begun.</summary>
    public static async Task<LoginReads> ReadAsync(GatehouseDb db, string networkId, List<string> deviceIds, List<string> userIds)
    {
        var statements = ByModel.GetValue(db.Model, _ => new Statements(db));
        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        var transaction = (NpgsqlTransaction?)db.Database.CurrentTransaction?.GetDbTransaction()
            ?? throw new InvalidOperationException("A login group's reads lock rows: they must run in the group's transaction.");
        await using var batch = connection.CreateBatch();
        batch.Transaction = transaction;
        Add(batch, statements.Bindings, networkId, deviceIds);
        Add(batch, statements.Users, networkId, userIds);
        Add(batch, statements.Sessions, networkId, deviceIds);

        var read = new LoginReads();
        await using var reader = await batch.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            read.Bindings.Add(new DeviceBinding
            {
                NetworkId = networkId, DeviceId = reader.GetString(0), UserRef = reader.GetString(1), BoundAt = reader.GetFieldValue<DateTimeOffset>(2),
            });
        }
        await reader.NextResultAsync();
        while (await reader.ReadAsync())
        {
            read.Users.Add(new User
            {
                Id = reader.GetString(0),
                NetworkId = networkId,
                UserId = reader.GetString(1),
                DisplayName = reader.IsDBNull(2) ? null : reader.GetString(2),
                Kind = (UserKind)reader.GetInt32(3),
                IsGlobalBan = reader.GetBoolean(4),
                IsDeleted = reader.GetBoolean(5),
                CreatedAt = reader.GetFieldValue<DateTimeOffset>(6),
                UpdatedAt = reader.GetFieldValue<DateTimeOffset>(7),
            });
        }
        await reader.NextResultAsync();
        while (await reader.ReadAsync())
        {
            // Only the columns the login rules read, and the id to end one by (docs/benchmarks.md, change 65).
            read.Sessions.Add(new Session
            {
                Id = reader.GetGuid(0), NetworkId = networkId, UserRef = reader.GetString(1), DeviceId = reader.GetString(2),
                CreatedAt = reader.GetFieldValue<DateTimeOffset>(3), ExpiresAt = reader.GetFieldValue<DateTimeOffset>(4),
            });
        }
        return read;
    }

    /// <summary>Each statement's parameters are its own: the network, then one array of keys (one text whatever their number).</summary>
    private static void Add(NpgsqlBatch batch, string sql, string networkId, List<string> keys)
    {
        var statement = batch.CreateBatchCommand();
        statement.CommandText = sql;
        statement.Parameters.Add(new NpgsqlParameter { Value = networkId });
        statement.Parameters.Add(new NpgsqlParameter { Value = keys.ToArray() });
        batch.BatchCommands.Add(statement);
    }

    private sealed class Statements
    {
        public Statements(GatehouseDb db)
        {
            var sql = db.GetService<ISqlGenerationHelper>();
            (string Table, Func<string, string> Column) Of<T>()
            {
                var entity = db.Model.FindEntityType(typeof(T))!;
                var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
                return (sql.DelimitIdentifier(table.Name, table.Schema),
                    property => sql.DelimitIdentifier(entity.FindProperty(property)!.GetColumnName(table)!));
            }

            var (bindings, binding) = Of<DeviceBinding>();
            // FOR NO KEY UPDATE is the lock an update of the row would take, without writing a new version of it.
            Bindings = $"SELECT {binding(nameof(DeviceBinding.DeviceId))}, {binding(nameof(DeviceBinding.UserRef))}, {binding(nameof(DeviceBinding.BoundAt))} "
                + $"FROM {bindings} WHERE {binding(nameof(DeviceBinding.NetworkId))} = $1 AND {binding(nameof(DeviceBinding.DeviceId))} = ANY($2) FOR NO KEY UPDATE";
            var (users, user) = Of<User>();
            Users = $"SELECT {user(nameof(User.Id))}, {user(nameof(User.UserId))}, {user(nameof(User.DisplayName))}, {user(nameof(User.Kind))}, "
                + $"{user(nameof(User.IsGlobalBan))}, {user(nameof(User.IsDeleted))}, {user(nameof(User.CreatedAt))}, {user(nameof(User.UpdatedAt))} "
                + $"FROM {users} WHERE {user(nameof(User.NetworkId))} = $1 AND {user(nameof(User.UserId))} = ANY($2)";
            var (sessions, session) = Of<Session>();
            // The device index holds only unrevoked sessions: the query names that condition so PostgreSQL can use it.
            Sessions = $"SELECT {session(nameof(Session.Id))}, {session(nameof(Session.UserRef))}, {session(nameof(Session.DeviceId))}, "
                + $"{session(nameof(Session.CreatedAt))}, {session(nameof(Session.ExpiresAt))} FROM {sessions} "
                + $"WHERE {session(nameof(Session.NetworkId))} = $1 AND {session(nameof(Session.DeviceId))} = ANY($2) "
                + $"AND {session(nameof(Session.RevokedAt))} IS NULL ORDER BY {session(nameof(Session.CreatedAt))}";
        }

        public string Bindings { get; }
        public string Users { get; }
        public string Sessions { get; }
    }
}

/// <summary>What a login group reads of one network before the rules run.</summary>
internal sealed class LoginReads
{
    public List<DeviceBinding> Bindings { get; } = [];
    public List<User> Users { get; } = [];

    /// <summary>Partial rows, oldest first: what the rules judge and the id to end one by. They never leave the group.</summary>
    public List<Session> Sessions { get; } = [];
}
