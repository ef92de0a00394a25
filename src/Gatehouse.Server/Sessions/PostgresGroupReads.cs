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
/// The statements that read sessions on PostgreSQL without EF: the bearer check's (<see cref="PostgresSessionReads"/>),
/// and what a group of the session writer reads, in one round trip: each read is a statement of one
/// <see cref="NpgsqlBatch"/>, its reply read as it arrives. Read through EF, a login group's reads were four round
/// trips (a no-op update took the bindings' lock) and a refresh group's three, and the single writer waited out each
/// reply and then its turn on the thread pool behind the requests being served: for logins 4.0–4.6 ms of a 10.5 ms
/// group of 32, of which PostgreSQL ran the statements for 1.4 (docs/benchmarks.md, changes 76 and 77). The column
/// names come from the model, their order and types are written here; GroupReadsTests compares every row with what
/// EF's queries read.
/// </summary>
internal static class PostgresGroupReads
{
    private static readonly ConditionalWeakTable<IModel, Statements> ByModel = [];

    /// <summary>
    /// A login group's devices' bindings, taken with a row lock so two nodes' logins on one device take turns
    /// (PostgreSQL's default isolation would otherwise let both see no rival and both stay signed in), its users by
    /// name, and its devices' live sessions. In the group's transaction, which must have begun.
    /// </summary>
    public static async Task<LoginReads> LoginAsync(GatehouseDb db, string networkId, List<string> deviceIds, List<string> userIds)
    {
        var statements = ByModel.GetValue(db.Model, _ => new Statements(db));
        await using var batch = Batch(db);
        var devices = deviceIds.ToArray();
        Add(batch, statements.Bindings, [networkId, devices]);
        Add(batch, statements.UsersNamed, [networkId, userIds.ToArray()]);
        Add(batch, statements.LiveSessionsOnDevices, [networkId, devices]);

        var read = new LoginReads();
        await using var reader = await batch.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            read.Bindings.Add(new DeviceBinding
            {
                NetworkId = networkId,
                DeviceId = reader.GetString(0),
                UserRef = reader.GetString(1),
                BoundAt = reader.GetFieldValue<DateTimeOffset>(2),
            });
        }
        await NextAsync(reader);
        while (await reader.ReadAsync())
            read.Users.Add(ReadUser(reader, first: 0));
        await NextAsync(reader);
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

    /// <summary>
    /// A refresh group's refresh tokens by digest, then their sessions each with its user (one statement, so a session
    /// read always comes with its user). The second statement reads as of its own start: a token claimed by another
    /// node in between is caught by the guarded claim, and a session removed in between (retention) reads as an
    /// unknown token.
    /// </summary>
    public static async Task<RefreshReads> RefreshAsync(GatehouseDb db, List<string> digests)
    {
        var statements = ByModel.GetValue(db.Model, _ => new Statements(db));
        await using var batch = Batch(db);
        var keys = digests.ToArray();
        Add(batch, statements.RefreshTokens, [keys]);
        Add(batch, statements.SessionsOfRefreshTokens, [keys]);

        var read = new RefreshReads();
        await using var reader = await batch.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            read.RefreshTokens.Add(new RefreshToken
            {
                Digest = reader.GetString(0),
                SessionId = reader.GetGuid(1),
                IssuedAt = reader.GetFieldValue<DateTimeOffset>(2),
                ExpiresAt = reader.GetFieldValue<DateTimeOffset>(3),
                UsedAt = reader.IsDBNull(4) ? null : reader.GetFieldValue<DateTimeOffset>(4),
            });
        }
        await NextAsync(reader);
        var usersRead = new HashSet<string>(StringComparer.Ordinal);
        while (await reader.ReadAsync())
        {
            read.Sessions.Add(new Session
            {
                Id = reader.GetGuid(0),
                NetworkId = reader.GetString(1),
                UserRef = reader.GetString(2),
                DeviceId = reader.GetString(3),
                DeviceKind = NullableString(reader, 4),
                DeviceModel = NullableString(reader, 5),
                SdkVersion = NullableString(reader, 6),
                CreatedAt = reader.GetFieldValue<DateTimeOffset>(7),
                OpenedWithAuthToken = reader.GetBoolean(8),
                ExpiresAt = reader.GetFieldValue<DateTimeOffset>(9),
                RevokedAt = reader.IsDBNull(10) ? null : reader.GetFieldValue<DateTimeOffset>(10),
                RevokedReason = NullableString(reader, 11),
                OpenedFrom = NullableString(reader, 12),
                LastRefreshedAt = reader.IsDBNull(13) ? null : reader.GetFieldValue<DateTimeOffset>(13),
                LastRefreshedFrom = NullableString(reader, 14),
            });
            // A user with two sessions in the group comes twice.
            if (usersRead.Add(reader.GetString(15)))
                read.Users.Add(ReadUser(reader, first: 15));
        }
        return read;
    }

    /// <summary>The statement <see cref="PostgresSessionReads"/> sends: sessions by id (<c>= ANY($1)</c>), each with its user.</summary>
    public static string SessionStatesSql(GatehouseDb db) => ByModel.GetValue(db.Model, _ => new Statements(db)).SessionStatesById;

    private static async Task NextAsync(NpgsqlDataReader reader)
    {
        if (!await reader.NextResultAsync())
            throw new InvalidOperationException("A statement of the group's read returned no result.");
    }

    private static NpgsqlBatch Batch(GatehouseDb db)
    {
        var transaction = (NpgsqlTransaction?)db.Database.CurrentTransaction?.GetDbTransaction()
            ?? throw new InvalidOperationException("A group's reads must run in the group's transaction.");
        var batch = ((NpgsqlConnection)db.Database.GetDbConnection()).CreateBatch();
        batch.Transaction = transaction;
        return batch;
    }

    /// <summary>Each statement's parameters are its own, in order; a list of keys is one array (one text whatever their number).</summary>
    private static void Add(NpgsqlBatch batch, string sql, object[] values)
    {
        var statement = batch.CreateBatchCommand();
        statement.CommandText = sql;
        foreach (var value in values)
            statement.Parameters.Add(new NpgsqlParameter { Value = value });
        batch.BatchCommands.Add(statement);
    }

    /// <summary>The user's columns from <paramref name="first"/> on, in the order the statements name them.</summary>
    internal static User ReadUser(NpgsqlDataReader reader, int first) => new()
    {
        Id = reader.GetString(first),
        NetworkId = reader.GetString(first + 1),
        UserId = reader.GetString(first + 2),
        DisplayName = NullableString(reader, first + 3),
        Kind = (UserKind)reader.GetInt32(first + 4),
        IsGlobalBan = reader.GetBoolean(first + 5),
        IsDeleted = reader.GetBoolean(first + 6),
        CreatedAt = reader.GetFieldValue<DateTimeOffset>(first + 7),
        UpdatedAt = reader.GetFieldValue<DateTimeOffset>(first + 8),
    };

    private static string? NullableString(NpgsqlDataReader reader, int column) => reader.IsDBNull(column) ? null : reader.GetString(column);

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
            string List(Func<string, string> column, string[] properties, string alias = "") =>
                string.Join(", ", properties.Select(property => alias + column(property)));

            var (bindings, binding) = Of<DeviceBinding>();
            var (users, user) = Of<User>();
            var (sessions, session) = Of<Session>();
            var (refreshTokens, refreshToken) = Of<RefreshToken>();
            // In the order the readers above take them.
            string[] userColumns = [nameof(User.Id), nameof(User.NetworkId), nameof(User.UserId), nameof(User.DisplayName), nameof(User.Kind),
                nameof(User.IsGlobalBan), nameof(User.IsDeleted), nameof(User.CreatedAt), nameof(User.UpdatedAt)];
            // A column added to User and not read here would be left at its default: a flag the bearer check or the
            // rules judge would read false. Refused at the first use of any of these statements instead.
            var unread = db.Model.FindEntityType(typeof(User))!.GetProperties().Select(p => p.Name).Except(userColumns, StringComparer.Ordinal).ToList();
            if (unread.Count > 0)
                throw new InvalidOperationException($"PostgresGroupReads does not read User's {string.Join(", ", unread)}.");
            string[] sessionColumns = [nameof(Session.Id), nameof(Session.NetworkId), nameof(Session.UserRef), nameof(Session.DeviceId),
                nameof(Session.DeviceKind), nameof(Session.DeviceModel), nameof(Session.SdkVersion), nameof(Session.CreatedAt),
                nameof(Session.OpenedWithAuthToken), nameof(Session.ExpiresAt), nameof(Session.RevokedAt), nameof(Session.RevokedReason),
                nameof(Session.OpenedFrom), nameof(Session.LastRefreshedAt), nameof(Session.LastRefreshedFrom)];
            string[] liveSessionColumns = [nameof(Session.Id), nameof(Session.UserRef), nameof(Session.DeviceId), nameof(Session.CreatedAt),
                nameof(Session.ExpiresAt)];
            string[] bindingColumns = [nameof(DeviceBinding.DeviceId), nameof(DeviceBinding.UserRef), nameof(DeviceBinding.BoundAt)];
            string[] refreshTokenColumns = [nameof(RefreshToken.Digest), nameof(RefreshToken.SessionId), nameof(RefreshToken.IssuedAt),
                nameof(RefreshToken.ExpiresAt), nameof(RefreshToken.UsedAt)];

            // FOR NO KEY UPDATE is the lock the no-op update it replaces took: the row is marked locked (a WAL record)
            // but no new version of it is written. Rows are locked as the query returns them, which without ORDER BY
            // depends on the plan (an index scan's key order, a bitmap scan's physical order): sorted, two nodes' groups
            // wanting the same devices lock them in one order.
            Bindings = $"SELECT {List(binding, bindingColumns)} FROM {bindings} WHERE {binding(nameof(DeviceBinding.NetworkId))} = $1 "
                + $"AND {binding(nameof(DeviceBinding.DeviceId))} = ANY($2) ORDER BY {binding(nameof(DeviceBinding.DeviceId))} FOR NO KEY UPDATE";
            UsersNamed = $"SELECT {List(user, userColumns)} FROM {users} "
                + $"WHERE {user(nameof(User.NetworkId))} = $1 AND {user(nameof(User.UserId))} = ANY($2)";
            // The device index holds only unrevoked sessions: the query names that condition so PostgreSQL can use it.
            LiveSessionsOnDevices = $"SELECT {List(session, liveSessionColumns)} FROM {sessions} WHERE {session(nameof(Session.NetworkId))} = $1 "
                + $"AND {session(nameof(Session.DeviceId))} = ANY($2) AND {session(nameof(Session.RevokedAt))} IS NULL "
                + $"ORDER BY {session(nameof(Session.CreatedAt))}";

            var byDigest = $"{refreshToken(nameof(RefreshToken.Digest))} = ANY($1)";
            RefreshTokens = $"SELECT {List(refreshToken, refreshTokenColumns)} FROM {refreshTokens} WHERE {byDigest}";
            SessionsOfRefreshTokens = $"SELECT {List(session, sessionColumns, "s.")}, {List(user, userColumns, "u.")} "
                + $"FROM {sessions} AS s JOIN {users} AS u ON u.{user(nameof(User.Id))} = s.{session(nameof(Session.UserRef))} "
                + $"WHERE s.{session(nameof(Session.Id))} IN "
                + $"(SELECT {refreshToken(nameof(RefreshToken.SessionId))} FROM {refreshTokens} WHERE {byDigest})";
            // What the bearer check judges, in the order PostgresSessionReads takes it: the user's columns from 4 on.
            SessionStatesById = $"SELECT {List(session, [nameof(Session.Id), nameof(Session.NetworkId), nameof(Session.RevokedAt), nameof(Session.CreatedAt)], "s.")}, "
                + $"{List(user, userColumns, "u.")} "
                + $"FROM {sessions} AS s JOIN {users} AS u ON u.{user(nameof(User.Id))} = s.{session(nameof(Session.UserRef))} "
                + $"WHERE s.{session(nameof(Session.Id))} = ANY($1)";
        }

        public string Bindings { get; }
        public string UsersNamed { get; }
        public string LiveSessionsOnDevices { get; }
        public string RefreshTokens { get; }
        public string SessionsOfRefreshTokens { get; }
        public string SessionStatesById { get; }
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

/// <summary>What a refresh group reads before the rules judge each refresh.</summary>
internal sealed class RefreshReads
{
    public List<RefreshToken> RefreshTokens { get; } = [];
    public List<Session> Sessions { get; } = [];
    public List<User> Users { get; } = [];
}
