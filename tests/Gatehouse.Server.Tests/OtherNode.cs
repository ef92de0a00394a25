using Gatehouse.Server.Networks;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Gatehouse.Server.Tests;

/// <summary>
/// Another node's transactions on the test's PostgreSQL database, as plain connections of the test: what they lock and
/// write while the node under test waits, and the wait itself, seen in pg_stat_activity.
/// </summary>
internal static class OtherNode
{
    /// <summary>Out of the pool, so that each test's other node is a backend of its own, as another node's would be.</summary>
    public static string OtherNodeConnectionString(GatehouseDb db) =>
        new NpgsqlConnectionStringBuilder(db.Database.GetConnectionString()) { Pooling = false, Timeout = 15 }.ConnectionString;

    public static async Task<NpgsqlConnection> OpenOtherNodeAsync(string connectionString)
    {
        var connection = new NpgsqlConnection(connectionString);
        try
        {
            await connection.OpenAsync();
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, params object[] values)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var value in values)
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// Until at least <paramref name="waiters"/> backends other than this test's two wait for a lock in a statement on
    /// <paramref name="table"/>.
    /// </summary>
    public static async Task WaitingForALockAsync(NpgsqlConnection first, NpgsqlConnection second, string table, int waiters = 1)
    {
        await using var connection = first.CloneWith(first.ConnectionString);
        await connection.OpenAsync();
        await using var waiting = new NpgsqlCommand(
            """
            SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
            AND pid <> ALL($1) AND query LIKE '%"' || $2 || '"%'
            """, connection);
        waiting.Parameters.Add(new NpgsqlParameter { Value = new[] { first.ProcessID, second.ProcessID } });
        waiting.Parameters.Add(new NpgsqlParameter { Value = table });
        await UntilCountAsync(waiting, waiters, $"fewer than {waiters} statements of the node waited for a lock on {table}");
    }

    /// <summary>Until a transaction of this database waits for the advisory lock <paramref name="key"/> (one bigint).</summary>
    public static async Task WaitingForAnAdvisoryLockAsync(string connectionString, long key)
    {
        await using var connection = await OpenOtherNodeAsync(connectionString);
        // A one-bigint key is kept as its high half (classid) and low half (objid), objsubid 1.
        await using var waiting = new NpgsqlCommand(
            """
            SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND classid::bigint = $1 >> 32 AND objid::bigint = $1 & 4294967295 AND objsubid = 1
            """, connection);
        waiting.Parameters.Add(new NpgsqlParameter { Value = key });
        await UntilCountAsync(waiting, 1, $"nothing waited for the advisory lock {key}");
    }

    private static async Task UntilCountAsync(NpgsqlCommand count, long atLeast, string failure)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((long)(await count.ExecuteScalarAsync())! < atLeast)
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(10);
        }
    }
}

/// <summary>
/// Another node's transaction holding the lock of one device's binding (held-device unless named), as its login group
/// would: a login on that device then holds the session writer on a group of its own, so that the changes submitted
/// after it queue behind it and are written together, in the order submitted, once this transaction ends
/// (<see cref="ReleaseAsync"/>).
/// </summary>
internal sealed class HeldBinding(NpgsqlConnection connection, NpgsqlTransaction transaction) : IAsyncDisposable
{
    public NpgsqlConnection Connection => connection;

    public static async Task<HeldBinding> LockAsync(string connectionString, string networkId, string deviceId = "held-device")
    {
        var connection = new NpgsqlConnection(connectionString);
        try
        {
            await connection.OpenAsync();
            var transaction = await connection.BeginTransactionAsync();
            await OtherNode.ExecuteAsync(connection, transaction,
                """SELECT 1 FROM "DeviceBindings" WHERE "NetworkId" = $1 AND "DeviceId" = $2 FOR UPDATE""", networkId, deviceId);
            return new HeldBinding(connection, transaction);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public Task ReleaseAsync() => transaction.CommitAsync();

    public async ValueTask DisposeAsync()
    {
        await transaction.DisposeAsync();
        await connection.DisposeAsync();
    }
}

/// <summary>
/// The session writer held on a login of its own: user "held" logs in on held-device (a first login, before, makes the
/// user, its binding, session, refresh token and audit row), whose binding another node's transaction then locks
/// (<see cref="HeldBinding"/>), so that the changes submitted meanwhile queue behind that login and are tried together,
/// as one group in the order submitted, once <see cref="ReleaseAsync"/> ends the transaction (a group that fails is
/// written again a change at a time).
/// </summary>
internal sealed class HeldWriter(HeldBinding binding, Task<(IssuedSession? Issued, Refusal? Error)> login) : IAsyncDisposable
{
    /// <summary>The other node's connection: a test's lock-wait probe leaves its backend out.</summary>
    public NpgsqlConnection Connection => binding.Connection;

    /// <summary>The held login, which opens its session once released.</summary>
    public Task<(IssuedSession? Issued, Refusal? Error)> Login => login;

    public static async Task<HeldWriter> HoldAsync(SessionService sessions, Network network, string connectionString)
    {
        Task<(IssuedSession? Issued, Refusal? Error)> LogIn() =>
            sessions.OpenAsync(network, new Login("held", "held-device", null, null, null, null), "127.0.0.1", CancellationToken.None);
        // A first login makes the binding the other node locks.
        Assert.Null((await LogIn()).Error);
        var binding = await HeldBinding.LockAsync(connectionString, network.Id);
        try
        {
            var held = LogIn();
            await OtherNode.WaitingForALockAsync(binding.Connection, binding.Connection, "DeviceBindings");
            return new HeldWriter(binding, held);
        }
        catch
        {
            await binding.DisposeAsync();
            throw;
        }
    }

    public Task ReleaseAsync() => binding.ReleaseAsync();

    public ValueTask DisposeAsync() => binding.DisposeAsync();
}
