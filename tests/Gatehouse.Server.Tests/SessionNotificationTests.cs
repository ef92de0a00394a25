using System.Threading.Channels;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Npgsql;

namespace Gatehouse.Server.Tests;

/// <summary>
/// On PostgreSQL a statement that changes sessions names them in its notification (migration
/// KeyedSessionNotifications), so the other nodes make those sessions stale and keep the rest. Whoever writes is
/// heard, an operator's own SQL included; a statement too wide to name its rows, or a transaction rolled back, must
/// never leave a changed session current.
/// </summary>
[Trait(Category.Name, Category.Postgres)]
public sealed class SessionNotificationTests(PostgresServer server) : IClassFixture<PostgresServer>
{
    private static readonly string[] SessionTables = ["Sessions", "Users"];

    [SkippableFact]
    public async Task A_statement_on_sessions_notifies_the_ids_it_changed_and_the_node_makes_those_alone_stale()
    {
        var sessions = await AddSessionsAsync(250);
        var connectionString = server.Settings["Gatehouse:Database:ConnectionString"]!;
        await using var listener = new NpgsqlConnection(connectionString);
        var heard = Channel.CreateUnbounded<string>();
        listener.Notification += (_, n) =>
        {
            // Each node's heartbeat uses the channel too.
            if (!n.Payload.StartsWith("ping:", StringComparison.Ordinal))
                heard.Writer.TryWrite(n.Payload);
        };
        await listener.OpenAsync();
        await using (var listen = new NpgsqlCommand($"LISTEN {WriteNotifications.Channel}", listener))
            await listen.ExecuteNonQueryAsync();
        // Npgsql hands notifications over only while the connection waits for them.
        using var stop = new CancellationTokenSource();
        var waiting = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
                await listener.WaitAsync(stop.Token);
        });
        await using var writer = new NpgsqlConnection(connectionString);
        await writer.OpenAsync();
        var writes = server.Services.GetRequiredService<CommittedWrites>();

        // Two rows in one statement, written by SQL the node did not run: one notification naming both.
        var (a, b) = (sessions[0], sessions[1]);
        var bystander = sessions.Skip(2).First(s => CommittedWrites.Stripe(s) != CommittedWrites.Stripe(a) && CommittedWrites.Stripe(s) != CommittedWrites.Stripe(b));
        var (aBefore, bystanderBefore) = (writes.VersionOf(SessionTables, "Sessions", a), writes.VersionOf(SessionTables, "Sessions", bystander));
        await ExecuteAsync(writer, """UPDATE "Sessions" SET "RevokedReason" = 'by hand' WHERE "Id" IN (@a, @b)""", ("a", a), ("b", b));
        var payload = await NextAsync(heard);
        Assert.StartsWith("Sessions:", payload, StringComparison.Ordinal);
        Assert.Equal(new[] { a, b }.Order(), payload["Sessions:".Length..].Split(',').Select(Guid.Parse).Order());
        await WaitUntilAsync(() => writes.VersionOf(SessionTables, "Sessions", a) > aBefore, "the node did not make the named session stale");
        Assert.Equal(bystanderBefore, writes.VersionOf(SessionTables, "Sessions", bystander));

        // A rolled-back statement sends nothing: the next notification is the next committed one's.
        await using (var transaction = await writer.BeginTransactionAsync())
        {
            await ExecuteAsync(writer, """UPDATE "Sessions" SET "RevokedReason" = 'rolled back' WHERE "Id" = @a""", ("a", a));
            await transaction.RollbackAsync();
        }
        await ExecuteAsync(writer, """DELETE FROM "Sessions" WHERE "Id" = @b""", ("b", b));
        Assert.Equal($"Sessions:{b}", await NextAsync(heard));

        // More rows than a notification can name: the table, and the node makes every session stale.
        bystanderBefore = writes.VersionOf(SessionTables, "Sessions", bystander);
        var changed = await ExecuteAsync(writer, """UPDATE "Sessions" SET "RevokedReason" = 'all of them' WHERE "Id" = ANY(@ids)""", ("ids", sessions.ToArray()));
        Assert.Equal(249, changed);
        Assert.Equal("Sessions", await NextAsync(heard));
        await WaitUntilAsync(() => writes.VersionOf(SessionTables, "Sessions", bystander) > bystanderBefore, "a statement too wide to name its rows left a session current");

        // A statement that changed no row has nothing to say.
        await ExecuteAsync(writer, """UPDATE "Sessions" SET "RevokedReason" = 'none' WHERE "Id" = @none""", ("none", Guid.NewGuid()));
        await ExecuteAsync(writer, """UPDATE "Sessions" SET "RevokedReason" = 'last' WHERE "Id" = @a""", ("a", a));
        Assert.Equal($"Sessions:{a}", await NextAsync(heard));
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
    }

    private async Task<List<Guid>> AddSessionsAsync(int count)
    {
        var network = await server.CreateNetworkAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var now = DateTimeOffset.UtcNow;
        var user = new User { Id = Secrets.NewId(now), NetworkId = network.Id, UserId = "notified", CreatedAt = now, UpdatedAt = now };
        var sessions = Enumerable.Range(0, count).Select(i => new Session
        {
            Id = Guid.NewGuid(),
            NetworkId = network.Id,
            UserRef = user.Id,
            DeviceId = $"device-{i}",
            CreatedAt = now,
            ExpiresAt = now.AddHours(1),
        }).ToList();
        db.Users.Add(user);
        db.Sessions.AddRange(sessions);
        await db.SaveChangesAsync();
        return [.. sessions.Select(s => s.Id)];
    }

    private static async Task<int> ExecuteAsync(NpgsqlConnection connection, string sql, params (string Name, object Value)[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
            command.Parameters.AddWithValue(name, value);
        return await command.ExecuteNonQueryAsync();
    }

    private static async Task<string> NextAsync(Channel<string> heard)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await heard.Reader.ReadAsync(timeout.Token);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string failure)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(10), failure);
            await Task.Delay(20);
        }
    }
}
