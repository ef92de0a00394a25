using System.Globalization;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// On SQLite, BulkInsert binds values itself instead of through EF's parameters. A value stored in another form
/// (a Guid in lower case, a time with another layout) would still insert, but lookups and ordering by that column
/// would then miss or misorder rows, so every column must be stored exactly as EF stores it.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class BulkInsertTests(GatehouseServer server) : IClassFixture<GatehouseServer>
{
    private static readonly DateTimeOffset Time = new DateTimeOffset(2026, 11, 30, 12, 34, 56, TimeSpan.FromHours(2)).AddTicks(1_234_567);
    private static readonly DateTimeOffset WholeSecond = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Every_column_of_every_bulk_inserted_table_is_stored_as_EF_stores_it()
    {
        var network = await server.CreateNetworkAsync();
        var userRef = Secrets.NewId(Time);
        var sessionId = Guid.CreateVersion7(Time);

        await AssertStoredAlikeAsync("Users", () => new User
        {
            Id = userRef,
            NetworkId = network.Id,
            UserId = "ünïcode-user",
            // A lone surrogate: both writers must replace it alike.
            DisplayName = "Zoë\ud800",
            IsGlobalBan = true,
            CreatedAt = Time,
            UpdatedAt = WholeSecond,
        });
        await KeepAsync(new User { Id = userRef, NetworkId = network.Id, UserId = "ünïcode-user", CreatedAt = Time, UpdatedAt = Time });
        await AssertStoredAlikeAsync("DeviceBindings", () => new DeviceBinding { NetworkId = network.Id, DeviceId = "device-1", UserRef = userRef, BoundAt = Time });
        await AssertStoredAlikeAsync("Sessions", () => new Session
        {
            Id = sessionId,
            NetworkId = network.Id,
            UserRef = userRef,
            DeviceId = "device-1",
            DeviceKind = "ios",
            DeviceModel = null,
            SdkVersion = "6.35.3",
            CreatedAt = Time,
            ExpiresAt = WholeSecond,
            RevokedAt = Time,
            RevokedReason = "logout",
        });
        await KeepAsync(new Session { Id = sessionId, NetworkId = network.Id, UserRef = userRef, DeviceId = "device-1", CreatedAt = Time, ExpiresAt = Time });
        await AssertStoredAlikeAsync("RefreshTokens", () => new RefreshToken
        {
            Digest = "digest-1",
            SessionId = sessionId,
            IssuedAt = Time,
            ExpiresAt = WholeSecond,
            UsedAt = null,
        });
        await AssertStoredAlikeAsync("AuditEvents", () => new AuditEvent
        {
            Kind = AuditKinds.SessionCreated,
            Outcome = Outcomes.Success,
            Actor = "user:ünïcode-user",
            NetworkId = network.Id,
            UserId = "ünïcode-user",
            Reason = null,
            // EF stores the bytes after an embedded NUL too (SQLite's length() stops at it; the row's bytes do not).
            Detail = $"session={sessionId}\0after-nul",
            ClientAddress = "127.0.0.1",
            OccurredAt = Time,
        }, ignoredColumn: "Id");

        // And what EF looks up by the bulk-inserted key finds it.
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        await InsertInTransactionAsync(db, [new RefreshToken { Digest = "digest-2", SessionId = sessionId, IssuedAt = Time, ExpiresAt = Time }]);
        Assert.Equal(sessionId, (await db.RefreshTokens.SingleAsync(t => t.Digest == "digest-2")).SessionId);
        Assert.Equal(1, await db.RefreshTokens.CountAsync(t => t.SessionId == sessionId && t.IssuedAt == Time));
    }

    /// <summary>The row as EF stores it, deleted, then the same row through BulkInsert: both read back alike.</summary>
    private async Task AssertStoredAlikeAsync<T>(string table, Func<T> row, string? ignoredColumn = null)
        where T : class
    {
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();

        db.Add(row());
        await db.SaveChangesAsync();
        db.ChangeTracker.Clear();
        var byEf = await NewestRowAsync(db, table, ignoredColumn, delete: true);

        await InsertInTransactionAsync(db, [row()]);
        var byBulkInsert = await NewestRowAsync(db, table, ignoredColumn, delete: true);

        Assert.NotEmpty(byEf);
        Assert.Equal(byEf, byBulkInsert);
    }

    private async Task KeepAsync(object row)
    {
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        db.Add(row);
        await db.SaveChangesAsync();
    }

    private static async Task InsertInTransactionAsync<T>(GatehouseDb db, List<T> rows)
        where T : class
    {
        await using var transaction = await db.Database.BeginTransactionAsync();
        await BulkInsert.InsertAsync(db, rows);
        await transaction.CommitAsync();
    }

    /// <summary>Each column as its SQLite storage class and value, text in hex, e.g. <c>Id=String:30313933…</c>.</summary>
    private static async Task<List<string>> NewestRowAsync(GatehouseDb db, string table, string? ignoredColumn, bool delete)
    {
        var connection = db.Database.GetDbConnection();
        await db.Database.OpenConnectionAsync();
        try
        {
            long rowid;
            var columns = new List<string>();
            await using (var command = connection.CreateCommand())
            {
                command.CommandText = $"""SELECT rowid, * FROM "{table}" ORDER BY rowid DESC LIMIT 1""";
                await using var reader = await command.ExecuteReaderAsync();
                Assert.True(await reader.ReadAsync());
                rowid = reader.GetInt64(0);
                for (var i = 1; i < reader.FieldCount; i++)
                {
                    if (reader.GetName(i) == ignoredColumn)
                        continue;
                    var value = reader.GetValue(i);
                    // Text as its stored bytes, so that what follows an embedded NUL and how a lone surrogate was
                    // replaced are compared too.
                    var stored = value is string ? reader.GetFieldValue<byte[]>(i) : value;
                    columns.Add($"{reader.GetName(i)}={value.GetType().Name}:{(stored is byte[] bytes ? Convert.ToHexString(bytes) : Convert.ToString(value, CultureInfo.InvariantCulture))}");
                }
            }
            if (delete)
            {
                await using var command = connection.CreateCommand();
                command.CommandText = $"""DELETE FROM "{table}" WHERE rowid = {rowid}""";
                await command.ExecuteNonQueryAsync();
            }
            return columns;
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }
}
