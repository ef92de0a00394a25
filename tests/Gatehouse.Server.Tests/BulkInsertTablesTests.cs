using System.Data.Common;
using System.Globalization;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// A login group writes its new rows of several tables in one call (<see cref="BulkInsert.InsertTablesAsync"/>),
/// on PostgreSQL as one batch of statements: every row must land, parents before the rows that name them, in the
/// caller's transaction, and a table the writer cannot write must stop the call before anything is written. The
/// audit writer appends its batches (<see cref="BulkInsert.AppendAsync"/>, on PostgreSQL a binary COPY): they must
/// read back as written, and only once committed.
/// </summary>
public abstract class BulkInsertTablesTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    protected static readonly DateTimeOffset Opened = new(2026, 12, 2, 9, 0, 0, TimeSpan.Zero);

    [SkippableFact]
    public async Task Writes_every_row_of_every_table_in_order_within_the_transaction()
    {
        var network = await server.CreateNetworkAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        // Many rows, nulls and values in the same column, and text beyond ASCII: on PostgreSQL each table's rows are one
        // statement of array parameters, whatever their number.
        var users = Enumerable.Range(0, 150).Select(i => new User
        {
            Id = Secrets.NewId(Opened), NetworkId = network.Id, UserId = $"batch-{i}", DisplayName = $"Batch {i}", CreatedAt = Opened, UpdatedAt = Opened,
        }).ToList();
        var bindings = users.Select((u, i) => new DeviceBinding { NetworkId = network.Id, DeviceId = $"batch-device-{i}", UserRef = u.Id, BoundAt = Opened }).ToList();
        var sessions = users.Select((u, i) => new Session
        {
            Id = Guid.CreateVersion7(Opened.AddMilliseconds(i)), NetworkId = network.Id, UserRef = u.Id, DeviceId = $"batch-device-{i}",
            DeviceKind = i % 2 == 0 ? null : "wéb", CreatedAt = Opened, ExpiresAt = Opened.AddHours(1), RevokedAt = i % 3 == 0 ? Opened.AddMinutes(i) : null,
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
            .Join(db.Users, s => s.UserRef, u => u.Id, (s, u) => new { u.UserId, u.DisplayName, s.DeviceId, s.DeviceKind, s.ExpiresAt, s.RevokedAt })
            .ToListAsync();
        Assert.Equal(150, stored.Count);
        Assert.All(stored, row =>
        {
            var i = int.Parse(row.UserId["batch-".Length..], CultureInfo.InvariantCulture);
            Assert.Equal(($"Batch {i}", $"batch-device-{i}", i % 2 == 0 ? null : "wéb", Opened.AddHours(1), i % 3 == 0 ? Opened.AddMinutes(i) : null),
                (row.DisplayName, row.DeviceId, row.DeviceKind, row.ExpiresAt, row.RevokedAt));
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

    [SkippableFact]
    public async Task Appended_rows_read_back_as_EF_writes_them_and_only_once_committed()
    {
        var network = await server.CreateNetworkAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        // Nulls, text beyond ASCII, milliseconds (what SQLite keeps), and more rows than one insert statement takes.
        var events = Enumerable.Range(0, 300).Select(i => new AuditEvent
        {
            NetworkId = network.Id,
            OccurredAt = Opened.AddMilliseconds(i * 7 + 123),
            Kind = AuditKinds.SessionCreated,
            Outcome = i % 2 == 0 ? Outcomes.Success : Outcomes.Refused,
            Actor = $"user:zoë-{i}",
            UserId = i % 3 == 0 ? null : $"zoë-{i}",
            Reason = i % 2 == 0 ? null : "a reason, with \"quotes\" and a tab\t",
            Detail = $"n={i}",
            ClientAddress = i % 5 == 0 ? null : "::1",
        }).ToList();
        var user = new User { Id = Secrets.NewId(Opened), NetworkId = network.Id, UserId = "appended", CreatedAt = Opened, UpdatedAt = Opened };
        db.Users.Add(user);
        await db.SaveChangesAsync();
        var sessions = Enumerable.Range(0, 3).Select(i => new Session
        {
            Id = Guid.CreateVersion7(Opened.AddMilliseconds(i)), NetworkId = network.Id, UserRef = user.Id, DeviceId = $"appended-{i}",
            DeviceKind = i == 0 ? null : "web", CreatedAt = Opened, ExpiresAt = Opened.AddHours(1), RevokedAt = i == 2 ? Opened.AddMinutes(1) : null,
        }).ToList();

        await using (await db.Database.BeginTransactionAsync())
        {
            await BulkInsert.AppendAsync(db, events);
            Assert.Equal(300, await db.AuditEvents.CountAsync(e => e.NetworkId == network.Id && e.Kind == AuditKinds.SessionCreated));
        }
        Assert.Equal(0, await db.AuditEvents.CountAsync(e => e.NetworkId == network.Id && e.Kind == AuditKinds.SessionCreated));

        await using (var transaction = await db.Database.BeginTransactionAsync())
        {
            await BulkInsert.AppendAsync(db, events);
            await BulkInsert.AppendAsync(db, sessions);
            await transaction.CommitAsync();
        }
        var stored = await db.AuditEvents.AsNoTracking().Where(e => e.NetworkId == network.Id && e.Kind == AuditKinds.SessionCreated).OrderBy(e => e.OccurredAt).ToListAsync();
        Assert.Equal(
            events.Select(e => (e.OccurredAt, e.Kind, e.Outcome, e.Actor, e.UserId, e.Reason, e.Detail, e.ClientAddress)),
            stored.Select(e => (e.OccurredAt, e.Kind, e.Outcome, e.Actor, e.UserId, e.Reason, e.Detail, e.ClientAddress)));
        Assert.Equal(300, stored.Select(e => e.Id).Distinct().Count());
        var storedSessions = await db.Sessions.AsNoTracking().Where(s => s.UserRef == user.Id).OrderBy(s => s.Id).ToListAsync();
        Assert.Equal(
            sessions.Select(s => (s.Id, s.DeviceId, s.DeviceKind, s.CreatedAt, s.ExpiresAt, s.RevokedAt)),
            storedSessions.Select(s => (s.Id, s.DeviceId, s.DeviceKind, s.CreatedAt, s.ExpiresAt, s.RevokedAt)));
    }

    private sealed class NotInTheModel;

    protected TServer Server => server;
}

[Trait(Category.Name, Category.Fast)]
public sealed class BulkInsertTablesTestsOnSqlite(SqliteServer server) : BulkInsertTablesTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class BulkInsertTablesTestsOnPostgres(PostgresServer server) : BulkInsertTablesTests<PostgresServer>(server)
{
    /// <summary>PostgreSQL only: SQLite does not enforce a column's length (the API refuses long input before it is stored).</summary>
    [SkippableFact]
    public async Task A_value_too_long_for_its_column_is_refused_whole_not_cut_to_fit()
    {
        var network = await Server.CreateNetworkAsync();
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var maxLength = db.Model.FindEntityType(typeof(User))!.FindProperty(nameof(User.UserId))!.GetMaxLength()!.Value;
        var users = new[] { "fits", new string('x', maxLength + 1) }.Select(userId => new User
        {
            Id = Secrets.NewId(Opened), NetworkId = network.Id, UserId = userId, CreatedAt = Opened, UpdatedAt = Opened,
        }).ToList();

        await using (var transaction = await db.Database.BeginTransactionAsync())
        {
            var refused = await Assert.ThrowsAnyAsync<DbException>(() => BulkInsert.InsertTablesAsync(db, [users]));
            Assert.Equal("22001", refused.SqlState); // string_data_right_truncation
        }
        Assert.Equal(0, await db.Users.CountAsync(u => u.NetworkId == network.Id));
    }
}
