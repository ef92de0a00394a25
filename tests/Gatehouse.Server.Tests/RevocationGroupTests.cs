using Gatehouse.Server.Audit;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Gatehouse.Server.Tests;

/// <summary>
/// Logouts that arrive together are written as one group of the session writer (SessionService: which sessions are
/// still live is read, then each is ended by a conditional update with its audit row in the same transaction).
/// Whatever the grouping, each session ends once, with the reason and the one audit event of the revocation that ended
/// it; a session ended elsewhere (another node, an operator command) keeps that reason and raises nothing here.
/// </summary>
public abstract class RevocationGroupTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    protected TServer Server => server;

    [SkippableFact]
    public async Task Revocations_arriving_together_end_each_session_once_with_one_audit_event_and_leave_one_ended_elsewhere_alone()
    {
        var network = await server.CreateNetworkAsync();
        var (ids, tokens) = await OpenAsync(network, "together", 90);
        var endedElsewhere = ids.Where((_, i) => i % 3 == 0).ToHashSet();
        await EndElsewhereAsync(endedElsewhere);

        // Every session twice: the two may share a group or not.
        var answers = await Task.WhenAll(ids.Concat(ids).Select(async id => (id, Raised: await RevokeAsync(network, id))));

        Assert.All(ids, id => Assert.Equal(endedElsewhere.Contains(id) ? 0 : 1, answers.Count(a => a.id == id && a.Raised is not null)));
        var stored = await StoredAsync(ids);
        Assert.All(ids, id => Assert.Equal(endedElsewhere.Contains(id) ? (Reason: "elsewhere", Audited: 0) : (Reason: RevokeReasons.Logout, Audited: 1), stored[id]));
        foreach (var token in tokens)
        {
            using var me = await server.GetWithBearerAsync("/api/v3/users/me", token);
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
        }
    }

    protected async Task<(List<Guid> Ids, List<string> AccessTokens)> OpenAsync(TestNetwork network, string prefix, int count)
    {
        var tokens = new List<string>();
        for (var i = 0; i < count; i++)
            tokens.Add((await server.LoginAsync(network, $"{prefix}-{i}", $"{prefix}-device-{i}"))["accessToken"]!.GetValue<string>());
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        return (await db.Sessions.Where(s => s.NetworkId == network.Id).Select(s => s.Id).ToListAsync(), tokens);
    }

    /// <summary>As another node or an operator command would: a committed write the session writer does not make.</summary>
    protected async Task EndElsewhereAsync(IReadOnlyCollection<Guid> ids)
    {
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var at = DateTimeOffset.UtcNow;
        await db.Sessions.Where(s => ids.Contains(s.Id))
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.RevokedAt, at).SetProperty(x => x.RevokedReason, "elsewhere"));
    }

    protected Task<SecurityEvent?> RevokeAsync(TestNetwork network, Guid id) =>
        server.Services.GetRequiredService<SessionService>().RevokeAsync(id, RevokeReasons.Logout,
            SecurityEvents.LoggedOut("user", network.Id, id, RevokeReasons.Logout), "127.0.0.1", CancellationToken.None);

    /// <summary>Each session's stored reason, and how many session.revoked events name it.</summary>
    protected async Task<Dictionary<Guid, (string? Reason, int Audited)>> StoredAsync(List<Guid> ids)
    {
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var reasons = await db.Sessions.Where(s => ids.Contains(s.Id)).ToDictionaryAsync(s => s.Id, s => s.RevokedReason);
        var details = ids.Select(id => $"session={id}").ToList();
        var audited = await db.AuditEvents.Where(e => e.Kind == AuditKinds.SessionRevoked && details.Contains(e.Detail!))
            .GroupBy(e => e.Detail).Select(g => new { Detail = g.Key, Count = g.Count() }).ToDictionaryAsync(g => g.Detail!, g => g.Count);
        return ids.ToDictionary(id => id, id => (reasons[id], audited.GetValueOrDefault($"session={id}")));
    }
}

[Trait(Category.Name, Category.Fast)]
public sealed class RevocationGroupTestsOnSqlite(SqliteServer server) : RevocationGroupTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class RevocationGroupTestsOnPostgres(PostgresServer server) : RevocationGroupTests<PostgresServer>(server)
{
    /// <summary>
    /// Another node ends a session after the group here read it live, and the group's update waits for that node's row
    /// lock: once the other node commits, the update ends fewer sessions than it listed, and the group is written again
    /// one revocation at a time, which leaves the session with that node's reason and raises nothing for it, and
    /// writes the group's other revocations as if nothing had happened.
    /// </summary>
    [SkippableFact]
    public async Task A_session_another_node_ends_while_the_group_waits_for_its_lock_keeps_that_nodes_reason_and_raises_nothing_here()
    {
        var network = await Server.CreateNetworkAsync();
        var (ids, _) = await OpenAsync(network, "raced", 12);
        var raced = ids[0];
        await using var scope = Server.Services.CreateAsyncScope();
        var connectionString = scope.ServiceProvider.GetRequiredService<GatehouseDb>().Database.GetConnectionString();
        await using var otherNode = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Timeout = 15 }.ConnectionString);
        await otherNode.OpenAsync();
        await using var otherTransaction = await otherNode.BeginTransactionAsync();
        await using (var end = new NpgsqlCommand(
            """UPDATE "Sessions" SET "RevokedAt" = now(), "RevokedReason" = 'elsewhere' WHERE "Id" = $1""", otherNode, otherTransaction))
        {
            end.Parameters.Add(new NpgsqlParameter { Value = raced });
            await end.ExecuteNonQueryAsync();
        }

        var revocations = ids.Select(id => RevokeAsync(network, id)).ToList();
        await WaitingForARowLockAsync(otherNode);
        Assert.False(revocations[0].IsCompleted, "the raced revocation ended while the other node held the session");
        await otherTransaction.CommitAsync();

        var answers = await Task.WhenAll(revocations).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Null(answers[0]);
        Assert.All(answers.Skip(1), Assert.NotNull);
        var stored = await StoredAsync(ids);
        Assert.Equal(("elsewhere", 0), stored[raced]);
        Assert.All(ids.Skip(1), id => Assert.Equal((RevokeReasons.Logout, 1), stored[id]));
    }

    /// <summary>Until a backend of this database other than <paramref name="otherNode"/> waits for a lock on a row of the sessions.</summary>
    private static async Task WaitingForARowLockAsync(NpgsqlConnection otherNode)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        await using var connection = otherNode.CloneWith(otherNode.ConnectionString);
        await connection.OpenAsync();
        await using var waiting = new NpgsqlCommand(
            """
            SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
            AND pid <> $1 AND query LIKE '%"Sessions"%'
            """, connection);
        waiting.Parameters.Add(new NpgsqlParameter { Value = otherNode.ProcessID });
        while ((long)(await waiting.ExecuteScalarAsync())! == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "no revocation waited for the other node's lock");
            await Task.Delay(10);
        }
    }
}
