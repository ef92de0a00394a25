using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// A login group writes its new rows of several tables in one call (<see cref="BulkInsert.InsertTablesAsync"/>),
/// on PostgreSQL as one batch of statements: every row must land, parents before the rows that name them, in the
/// caller's transaction, and a table the writer cannot write must stop the call before anything is written.
/// </summary>
public abstract class BulkInsertTablesTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    private static readonly DateTimeOffset Opened = new(2026, 12, 2, 9, 0, 0, TimeSpan.Zero);

    [SkippableFact]
    public async Task Writes_every_row_of_every_table_in_order_within_the_transaction()
    {
        var network = await server.CreateNetworkAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        // More rows than one server statement takes, so each table needs several statements of the batch.
        var users = Enumerable.Range(0, 150).Select(i => new User
        {
            Id = Secrets.NewId(Opened), NetworkId = network.Id, UserId = $"batch-{i}", DisplayName = $"Batch {i}", CreatedAt = Opened, UpdatedAt = Opened,
        }).ToList();
        var bindings = users.Select((u, i) => new DeviceBinding { NetworkId = network.Id, DeviceId = $"batch-device-{i}", UserRef = u.Id, BoundAt = Opened }).ToList();
        var sessions = users.Select((u, i) => new Session
        {
            Id = Guid.CreateVersion7(Opened.AddMilliseconds(i)), NetworkId = network.Id, UserRef = u.Id, DeviceId = $"batch-device-{i}",
            CreatedAt = Opened, ExpiresAt = Opened.AddHours(1),
        }).ToList();

        await using (await db.Database.BeginTransactionAsync())
        {
            await BulkInsert.InsertTablesAsync(db, [users, bindings, sessions]);
            Assert.Equal(150, await db.Sessions.CountAsync(s => s.NetworkId == network.Id));
        }
        Assert.Equal(0, await db.Users.CountAsync(u => u.NetworkId == network.Id));

        await using (var transaction = await db.Database.BeginTransactionAsync())
        {
            await BulkInsert.InsertTablesAsync(db, [users, bindings, sessions]);
            await transaction.CommitAsync();
        }
        var stored = await db.Sessions.AsNoTracking().Where(s => s.NetworkId == network.Id)
            .Join(db.Users, s => s.UserRef, u => u.Id, (s, u) => new { u.UserId, u.DisplayName, s.DeviceId, s.ExpiresAt })
            .ToListAsync();
        Assert.Equal(150, stored.Count);
        Assert.All(stored, row =>
        {
            var i = row.UserId["batch-".Length..];
            Assert.Equal(($"Batch {i}", $"batch-device-{i}", Opened.AddHours(1)), (row.DisplayName, row.DeviceId, row.ExpiresAt));
        });
        Assert.Equal(150, await db.DeviceBindings.CountAsync(b => b.NetworkId == network.Id && b.DeviceId.StartsWith("batch-device-")));
    }

    [SkippableFact]
    public async Task A_table_it_cannot_write_stops_the_call_before_any_row_is_written()
    {
        var network = await server.CreateNetworkAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var user = new User { Id = Secrets.NewId(Opened), NetworkId = network.Id, UserId = "batch-refused", CreatedAt = Opened, UpdatedAt = Opened };

        await using (var transaction = await db.Database.BeginTransactionAsync())
        {
            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => BulkInsert.InsertTablesAsync(db, [new[] { user }, new[] { new NotInTheModel() }]));
            Assert.Contains(nameof(NotInTheModel), refused.Message, StringComparison.Ordinal);
            Assert.Equal(0, await db.Users.CountAsync(u => u.NetworkId == network.Id));
            await transaction.CommitAsync();
        }
        Assert.Equal(0, await db.Users.CountAsync(u => u.NetworkId == network.Id));
    }

    private sealed class NotInTheModel;
}

[Trait(Category.Name, Category.Fast)]
public sealed class BulkInsertTablesTestsOnSqlite(SqliteServer server) : BulkInsertTablesTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class BulkInsertTablesTestsOnPostgres(PostgresServer server) : BulkInsertTablesTests<PostgresServer>(server);
