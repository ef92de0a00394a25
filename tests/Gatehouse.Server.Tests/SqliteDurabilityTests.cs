using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// The settings that make an acknowledged write survive power loss are applied once per physical SQLite
/// connection; a connection taken again from the pool must still carry them.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class SqliteDurabilityTests(GatehouseServer server) : IClassFixture<GatehouseServer>
{
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task The_database_and_its_journal_files_are_readable_by_their_owner_alone()
    {
        await server.LoginAsync(await server.CreateNetworkAsync(), "alice", "device-a");
        var database = Path.Combine(server.DataDirectory, "gatehouse.db");
        // SQLite deletes the WAL when the pool's last connection closes, which an idle server may do at any moment:
        // hold one of the server's own connections open so the journal files exist while they are checked.
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        await db.Database.OpenConnectionAsync();
        Assert.Equal("wal", await PragmaAsync(db, "journal_mode"));
        Assert.True(await db.Sessions.AnyAsync(), "the login above wrote a session");

        Assert.True(File.Exists(database + "-wal"), "a live server has a WAL file");
        foreach (var path in new[] { database, database + "-wal", database + "-shm" })
            Assert.True(File.GetUnixFileMode(path) == (UnixFileMode.UserRead | UnixFileMode.UserWrite), $"{path} is {File.GetUnixFileMode(path)}");
    }

    [Fact]
    public async Task Every_connection_from_the_pool_is_durable_with_foreign_keys_and_a_busy_timeout()
    {
        await server.LoginAsync(await server.CreateNetworkAsync(), "alice", "device-a");
        for (var reopen = 0; reopen < 5; reopen++)
        {
            await using var scope = server.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
            await db.Database.OpenConnectionAsync();
            try
            {
                Assert.Equal(2L, await PragmaAsync(db, "synchronous")); // FULL
                Assert.Equal(1L, await PragmaAsync(db, "foreign_keys"));
                Assert.Equal(30000L, await PragmaAsync(db, "busy_timeout"));
            }
            finally
            {
                await db.Database.CloseConnectionAsync();
            }
        }
    }

    [Fact]
    public async Task The_audit_writer_hands_its_connection_back_durable_and_its_events_are_stored()
    {
        // The audit writer commits without waiting for the disk on a connection of the shared pool, which logins use next.
        var network = await server.CreateNetworkAsync();
        await server.SetSecureModeAsync(network, on: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        for (var mint = 0; mint < 5; mint++)
            await server.MintAsync(serverKey, $"user-{mint}");
        await server.FlushAuditAsync();

        // All at once, so that the pool must hand out every idle connection it holds, the audit writer's among them.
        var contexts = new List<AsyncServiceScope>();
        try
        {
            for (var open = 0; open < 8; open++)
            {
                var scope = server.Services.CreateAsyncScope();
                contexts.Add(scope);
                var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
                await db.Database.OpenConnectionAsync();
                Assert.Equal(2L, await PragmaAsync(db, "synchronous")); // FULL
            }
            var first = contexts[0].ServiceProvider.GetRequiredService<GatehouseDb>();
            Assert.Equal(5, await first.AuditEvents.CountAsync(e => e.NetworkId == network.Id && e.Kind == Audit.AuditKinds.AuthTokenMinted));
        }
        finally
        {
            foreach (var scope in contexts)
                await scope.DisposeAsync();
        }
    }

    private static async Task<object?> PragmaAsync(GatehouseDb db, string name)
    {
        await using var command = db.Database.GetDbConnection().CreateCommand();
        command.CommandText = "PRAGMA " + name;
        return await command.ExecuteScalarAsync();
    }
}
