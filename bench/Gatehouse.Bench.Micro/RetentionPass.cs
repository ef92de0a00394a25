using System.Diagnostics;
using System.Globalization;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Operations;
using Gatehouse.Server.Retention;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Bench.Micro;

/// <summary>
/// How long retention's pass takes over a large database, run after each table's rows are written: a backlog of
/// thousands of rows to delete among many live ones (what a first pass after an outage or a shorter period meets),
/// and the steady hourly pass. Rows are written straight into the tables (no requests), with the times a deployment
/// would have given them; each line is one whole pass (every table's step), timed alone. <c>bench/retention.sh</c>
/// runs it on SQLite or, with BENCH_DATABASE=postgres, on a throwaway PostgreSQL.
/// </summary>
internal static class RetentionPass
{
    public static async Task RunAsync(int scale)
    {
        var postgres = Environment.GetEnvironmentVariable("GATEHOUSE_BENCH_POSTGRES");
        var settings = new Dictionary<string, string?> { ["Gatehouse:Retention:Enabled"] = "false" };
        if (!string.IsNullOrEmpty(postgres))
        {
            settings["Gatehouse:Database:Provider"] = "PostgreSQL";
            // The server's own statement timeout (2 s) stays: a pass whose read outgrew it would fail as a node's does.
            settings["Gatehouse:Database:ConnectionString"] = postgres;
            // A throwaway database gets a throwaway key-encryption key.
            settings["Gatehouse:KeyEncryption:Key"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        }
        await using var server = await MicroServer.StartAsync(settings);
        var services = server.Services;
        var random = new Random(7);
        var now = DateTimeOffset.UtcNow;
        DateTimeOffset Ago(double minDays, double maxDays) => now - TimeSpan.FromDays(minDays + random.NextDouble() * (maxDays - minDays));

        var networkId = Secrets.NewId(now);
        await InsertAsync(services, [new Network { Id = networkId, Name = "retention", Region = "sg", ApiKey = Secrets.NewId(now), CreatedAt = now }]);

        User NewUser(string userId, UserKind kind, DateTimeOffset created) =>
            new() { Id = Secrets.NewId(created), NetworkId = networkId, UserId = userId, Kind = kind, CreatedAt = created, UpdatedAt = created };
        // Signed-in users over two years; idle visitors among them, created from two years to 61 days ago (60 is the default period).
        var signedIn = Enumerable.Range(0, 500_000 * scale).Select(i => NewUser("u" + i, UserKind.SignedIn, Ago(0, 730))).ToList();
        await InsertAsync(services, signedIn);
        await PassAsync(services, "users only, nothing to delete");
        await InsertAsync(services, Enumerable.Range(0, 50_000 * scale).Select(i => NewUser("v" + i, UserKind.Visitor, Ago(61, 730))));
        await PassAsync(services, $"idle visitors, backlog of {50 * scale}k among {550 * scale}k users");
        await InsertAsync(services, Enumerable.Range(0, 1_500).Select(i => NewUser("w" + i, UserKind.Visitor, Ago(61, 730))));
        await PassAsync(services, $"idle visitors, 1.5k among {500 * scale}k users");

        // Sessions opened over the 89 days before (live) and, among them, ones logged out 31 to 60 days ago (30 is the default).
        var owners = signedIn.Take(10_000).Select(u => u.Id).ToArray();
        Session NewSession(DateTimeOffset created, DateTimeOffset? revoked) => new()
        {
            Id = IdRandom.Version7(created), NetworkId = networkId, UserRef = owners[random.Next(owners.Length)],
            DeviceId = "d" + random.Next().ToString(CultureInfo.InvariantCulture), CreatedAt = created, ExpiresAt = now + TimeSpan.FromDays(20), RevokedAt = revoked,
        };
        var live = Enumerable.Range(0, 200_000 * scale).Select(_ => NewSession(Ago(0, 89), null)).ToList();
        await InsertAsync(services, live);
        await PassAsync(services, "+ live sessions, nothing to delete");
        await InsertAsync(services, Enumerable.Range(0, 50_000 * scale).Select(_ => NewSession(Ago(61, 89), now - TimeSpan.FromDays(31 + random.NextDouble() * 29))));
        await PassAsync(services, $"ended sessions, backlog of {50 * scale}k among {250 * scale}k");

        // The live sessions' refresh tokens: current ones, and ones expired more than the 7 days spent tokens are kept.
        var digest = new byte[32];
        RefreshToken NewToken(DateTimeOffset expires)
        {
            random.NextBytes(digest);
            return new() { Digest = Convert.ToHexStringLower(digest), SessionId = live[random.Next(live.Count)].Id, IssuedAt = expires - TimeSpan.FromDays(60), ExpiresAt = expires };
        }
        await InsertAsync(services, Enumerable.Range(0, 1_000_000 * scale).Select(_ => NewToken(now + TimeSpan.FromDays(random.NextDouble() * 60))));
        await PassAsync(services, "+ refresh tokens, nothing to delete");
        await InsertAsync(services, Enumerable.Range(0, 100_000 * scale).Select(_ => NewToken(now - TimeSpan.FromDays(8 + random.NextDouble() * 20))));
        await PassAsync(services, $"refresh tokens, backlog of {100 * scale}k among {1_100 * scale}k");
        await InsertAsync(services, Enumerable.Range(0, 1_500).Select(_ => NewToken(now - TimeSpan.FromDays(8 + random.NextDouble() * 20))));
        await PassAsync(services, $"refresh tokens, 1.5k among {1_000 * scale}k");
        await PassAsync(services, "everything, nothing to delete");
    }

    private static async Task PassAsync(IServiceProvider services, string what)
    {
        var timer = Stopwatch.StartNew();
        // The web host registers the service and its start-up gate (GatehouseApp), which a pass run by hand never waits on.
        var gate = new StartupGate(services.GetRequiredService<ILogger<StartupGate>>());
        var pruned = await ActivatorUtilities.CreateInstance<RetentionService>(services, gate).PruneAsync();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{what,-52} {timer.Elapsed.TotalSeconds,6:F2} s   deleted: {pruned.Visitors} visitors, {pruned.Sessions} sessions, {pruned.RefreshTokens} refresh tokens"));
    }

    private static async Task InsertAsync<T>(IServiceProvider services, IEnumerable<T> rows) where T : class
    {
        foreach (var chunk in rows.Chunk(20_000))
        {
            await using var scope = services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
            db.ChangeTracker.AutoDetectChangesEnabled = false;
            db.Database.SetCommandTimeout(TimeSpan.FromMinutes(5));
            db.AddRange(chunk);
            await db.SaveChangesAsync();
        }
        // On PostgreSQL a database that grew to this size over months has its planner's statistics (autovacuum); a
        // bulk load has none until autovacuum's next look. SQLite's planner keeps none unless asked, and Gatehouse
        // never asks.
        await using var last = services.CreateAsyncScope();
        var database = last.ServiceProvider.GetRequiredService<GatehouseDb>().Database;
        database.SetCommandTimeout(TimeSpan.FromMinutes(5));
        if (!database.IsSqlite())
            await database.ExecuteSqlRawAsync("ANALYZE");
    }
}
