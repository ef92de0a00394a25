using System.Text;
using System.Text.Json.Nodes;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Console;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

public abstract class AuditTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    [SkippableFact]
    public async Task Security_events_are_audited_with_reasons_and_no_secret_is_stored_anywhere()
    {
        var network = await server.CreateNetworkAsync();
        await server.SetSecureModeAsync(network, on: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var authToken = await server.MintAsync(serverKey, "alice");
        var session = await server.LoginAsync(network, "alice", "device-a", authToken);
        using var refusedLogin = await server.CreateSessionAsync(network, "alice", "device-a");
        var refreshToken = session["refreshToken"]!.GetValue<string>();
        using var refreshed = await server.RefreshAsync(network, refreshToken);
        var newRefreshToken = JsonNode.Parse(await refreshed.Content.ReadAsStringAsync())!["refreshToken"]!.GetValue<string>();
        using var reuse = await server.RefreshAsync(network, refreshToken);
        using var badKey = await server.MintV3Async("gsk_guess", "alice");
        await server.FlushAuditAsync();

        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var events = await db.AuditEvents.Where(e => e.NetworkId == network.Id).ToListAsync();
        Assert.Contains(events, e => e.Kind == AuditKinds.SecureModeChanged && e.Detail!.StartsWith("on;", StringComparison.Ordinal));
        Assert.Contains(events, e => e.Kind == AuditKinds.ServerKeyGenerated);
        Assert.Contains(events, e => e.Kind == AuditKinds.AuthTokenMinted && e.UserId == "alice");
        Assert.Contains(events, e => e.Kind == AuditKinds.SessionCreated && e.UserId == "alice");
        Assert.Contains(events, e => e.Kind == AuditKinds.SessionRefused && e.Reason == "auth_token_missing");
        Assert.Contains(events, e => e.Kind == AuditKinds.SessionRefreshed);
        Assert.Contains(events, e => e.Kind == AuditKinds.RefreshReuse && e.Reason == "refresh_token_reused");
        Assert.Contains(await db.AuditEvents.Where(e => e.NetworkId == null).ToListAsync(),
            e => e.Kind == AuditKinds.ServerKeyRefused && e.Reason == "server_key_invalid");

        string[] secrets = [serverKey, refreshToken, newRefreshToken];
        var auditText = string.Join('\n', (await db.AuditEvents.ToListAsync()).Select(e => $"{e.Actor} {e.Detail} {e.Reason} {e.UserId}"));
        foreach (var secret in secrets)
            Assert.DoesNotContain(secret, auditText, StringComparison.Ordinal);

        // What the database holds, every row of every table (and on SQLite the files themselves, write-ahead log
        // included): digests only.
        var stored = new List<string>();
        foreach (var table in db.Model.GetEntityTypes().Select(t => t.GetTableName()).OfType<string>().Distinct())
        {
            var sql = server.UsesSqlite ? $"SELECT * FROM \"{table}\"" : $"SELECT row_to_json(t)::text FROM \"{table}\" t";
            await using var command = db.Database.GetDbConnection().CreateCommand();
            command.CommandText = sql;
            await db.Database.OpenConnectionAsync();
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                for (var i = 0; i < reader.FieldCount; i++)
                    stored.Add(Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture) ?? "");
            }
        }
        if (server.UsesSqlite)
        {
            stored.AddRange(Directory.GetFiles(server.DataDirectory, "gatehouse.db*")
                .Select(path => { using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite); using var copy = new MemoryStream(); file.CopyTo(copy); return Encoding.Latin1.GetString(copy.ToArray()); }));
        }
        Assert.Contains(stored, value => value.Contains("alice", StringComparison.Ordinal));
        foreach (var secret in secrets)
            Assert.DoesNotContain(stored, content => content.Contains(secret, StringComparison.Ordinal));
    }

    [SkippableFact]
    public async Task A_refused_mint_with_a_huge_user_id_is_audited_with_the_user_id_cut_short()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var huge = new string('x', 6000);

        using var refused = await server.MintV3Async(serverKey, huge);
        await server.FlushAuditAsync();

        await Envelope.AssertBadRequestAsync(refused);
        await using var scope = server.Services.CreateAsyncScope();
        var row = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().AuditEvents
            .SingleAsync(e => e.NetworkId == network.Id && e.Kind == "auth_token.refused");
        Assert.Equal(AuditLog.MaxUserIdLength, row.UserId!.Length);
        Assert.EndsWith("x…", row.UserId, StringComparison.Ordinal);
    }

    /// <summary>
    /// Refused requests are audited with what they presented. PostgreSQL stores no NUL in text, and no encoder
    /// writes half a surrogate pair (which cutting a long value short could leave): such a row must be stored in a
    /// form the database takes, not fail the batch and lose every other event written with it.
    /// </summary>
    [SkippableFact]
    public async Task Text_the_database_cannot_store_does_not_cost_the_audit_its_other_events()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var emoji = string.Concat(Enumerable.Repeat("💥", 400));

        using var withNul = await server.MintV3Async(serverKey, "nul\0inside");
        using var cutInHalf = await server.MintV3Async(serverKey, emoji);
        using var minted = await server.MintV3Async(serverKey, "carol");
        await server.FlushAuditAsync();

        Assert.Equal(HttpStatusCode.OK, minted.StatusCode);
        await using var scope = server.Services.CreateAsyncScope();
        var events = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().AuditEvents
            .Where(e => e.NetworkId == network.Id && e.Kind.StartsWith("auth_token.")).ToListAsync();
        Assert.Contains(events, e => e.Kind == AuditKinds.AuthTokenMinted && e.UserId == "carol");
        var refused = events.Where(e => e.Kind == AuditKinds.AuthTokenRefused).Select(e => e.UserId!).ToList();
        Assert.Equal(2, refused.Count);
        Assert.Contains(refused, u => u.StartsWith("nul", StringComparison.Ordinal) && u.EndsWith("inside", StringComparison.Ordinal) && !u.Contains('\0', StringComparison.Ordinal));
        var cut = Assert.Single(refused, u => u.StartsWith("💥", StringComparison.Ordinal));
        Assert.True(cut.Length <= AuditLog.MaxUserIdLength);
        Assert.EndsWith("💥…", cut, StringComparison.Ordinal);
    }

    /// <summary>
    /// The console's audit log reads the network's events and the console accounts' own separately, each newest
    /// first, and merges them: every page must be the same as one sorted list of both, with the filter on both halves,
    /// another admin's account events only for a super admin, and another network's never.
    /// </summary>
    [SkippableFact]
    public async Task The_console_audit_log_pages_the_network_and_account_events_as_one_list_newest_first()
    {
        var network = await server.CreateNetworkAsync();
        var other = await server.CreateNetworkAsync();
        var (self, colleague) = ($"admin:{Guid.NewGuid():N}@example.com", $"admin:{Guid.NewGuid():N}@example.com");
        // Later than anything the other tests write, so a super admin's first pages hold only these.
        var start = new DateTimeOffset(2100, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var written = new List<AuditEvent>();
        for (var i = 0; i < 6; i++)
        {
            var at = start.AddMinutes(2 * i);
            var kind = i % 2 == 0 ? AuditKinds.ServerKeyGenerated : AuditKinds.SessionCreated;
            written.Add(Event(network.Id, at, kind, "api"));
            written.Add(Event(null, at.AddMinutes(i == 3 ? 0 : 1), kind, self));
            written.Add(Event(null, at.AddSeconds(30), kind, colleague));
            written.Add(Event(other.Id, at.AddSeconds(45), kind, "api"));
        }
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        db.AuditEvents.AddRange(written);
        await db.SaveChangesAsync();

        async Task<List<long>> PagesAsync(string? accountsOf, Func<IQueryable<AuditEvent>, IQueryable<AuditEvent>> filter)
        {
            var ids = new List<long>();
            for (var skip = 0; ; skip += 4)
            {
                var page = await AuditModel.NewestFirst(db, network.Id, accountsOf, filter, skip, 4).Select(e => e.Id).ToListAsync();
                ids.AddRange(page);
                if (page.Count < 4)
                    return ids;
            }
        }
        List<long> Expected(Func<AuditEvent, bool> shown) =>
            written.Where(shown).OrderByDescending(e => e.OccurredAt).ThenByDescending(e => e.Id).Select(e => e.Id).ToList();

        var own = await PagesAsync(self, events => events.Where(e => e.OccurredAt >= start));
        Assert.Equal(Expected(e => e.NetworkId == network.Id || e.Actor == self), own);
        Assert.Equal(12, own.Count);

        var everyone = await PagesAsync(null, events => events.Where(e => e.OccurredAt >= start));
        Assert.Equal(Expected(e => e.NetworkId == network.Id || e.NetworkId == null), everyone);

        var sessions = await PagesAsync(self, events => events.Where(e => e.Kind == AuditKinds.SessionCreated && e.OccurredAt >= start));
        Assert.Equal(Expected(e => (e.NetworkId == network.Id || e.Actor == self) && e.Kind == AuditKinds.SessionCreated), sessions);
        Assert.Equal(6, sessions.Count);
    }

    private static AuditEvent Event(string? networkId, DateTimeOffset at, string kind, string actor) =>
        new() { NetworkId = networkId, OccurredAt = at, Kind = kind, Outcome = Outcomes.Success, Actor = actor };
}

[Trait(Category.Name, Category.Fast)]
public sealed class AuditTestsOnSqlite(SqliteServer server) : AuditTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class AuditTestsOnPostgres(PostgresServer server) : AuditTests<PostgresServer>(server);
