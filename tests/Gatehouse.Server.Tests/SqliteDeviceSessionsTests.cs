using System.Text.Json;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// On SQLite a login group reads its devices' live sessions without EF (<see cref="SqliteDeviceSessions"/>). It must
/// find what EF's query (which PostgreSQL uses) finds: only unrevoked sessions, only the network's, only the devices
/// asked for (matched byte for byte, so another case is another device), oldest first on each device, and the values
/// the cap judges exactly.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class SqliteDeviceSessionsTests(SqliteServer server) : IClassFixture<SqliteServer>
{
    private static readonly DateTimeOffset Opened = new(2026, 12, 5, 6, 0, 0, TimeSpan.FromHours(-5));

    [Fact]
    public async Task Reads_what_EF_reads_for_every_device_of_a_group()
    {
        var network = await server.CreateNetworkAsync();
        var other = await server.CreateNetworkAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var ada = NewUser(network.Id, 0, "device-reader-ada");
        var bob = NewUser(network.Id, 1, "device-reader-bob");
        var elsewhere = NewUser(other.Id, 2, "device-reader-ada");
        db.Users.AddRange(ada, bob, elsewhere);
        const string shared = "phone-ü-📱";
        const string sharedUpper = "PHONE-Ü-📱";
        var sessions = new[]
        {
            // Written newest first, so that reading them in the order written cannot pass for oldest first.
            NewSession(ada, shared, minutes: 30, revokedAt: null),
            NewSession(ada, shared, minutes: 10, revokedAt: null),
            NewSession(bob, shared, minutes: 20, revokedAt: null),
            NewSession(ada, shared, minutes: 5, revokedAt: Opened.AddMinutes(6)),
            NewSession(elsewhere, shared, minutes: 1, revokedAt: null),
            NewSession(ada, sharedUpper, minutes: 2, revokedAt: null),
            NewSession(bob, "tablet", minutes: 3, revokedAt: null),
            NewSession(bob, "not-asked", minutes: 4, revokedAt: null),
        };
        db.Sessions.AddRange(sessions);
        await db.SaveChangesAsync();

        List<string> devices = [shared, "tablet", "never-seen", sharedUpper];
        var read = await SqliteDeviceSessions.UnrevokedOnAsync(db, network.Id, devices);
        var efRead = new List<Session>();
        await foreach (var session in SessionService.UnrevokedSessionsOnDevices.Run(db, network.Id, devices))
            efRead.Add(session);

        Assert.Equal(ByDevice(efRead), ByDevice(read));
        // What the rules see on the shared device: its three live sessions in this network, oldest first.
        Assert.Equal([sessions[1].Id, sessions[2].Id, sessions[0].Id], read.Where(s => s.DeviceId == shared).Select(s => s.Id));
        Assert.Equal([sessions[5].Id], read.Where(s => s.DeviceId == sharedUpper).Select(s => s.Id));
        Assert.Equal(sessions[0].ExpiresAt, read.Single(s => s.Id == sessions[0].Id).ExpiresAt);
        Assert.Equal(sessions[2].UserRef, read.Single(s => s.Id == sessions[2].Id).UserRef);
    }

    private static User NewUser(string networkId, int index, string userId) => new()
    {
        Id = Secrets.NewId(Opened.AddSeconds(index)),
        NetworkId = networkId,
        UserId = userId,
        Kind = UserKind.SignedIn,
        CreatedAt = Opened,
        UpdatedAt = Opened,
    };

    private static Session NewSession(User user, string deviceId, int minutes, DateTimeOffset? revokedAt) => new()
    {
        Id = Guid.CreateVersion7(Opened.AddMinutes(minutes)),
        NetworkId = user.NetworkId,
        UserRef = user.Id,
        DeviceId = deviceId,
        CreatedAt = Opened.AddMinutes(minutes).AddMilliseconds(minutes * 7),
        ExpiresAt = Opened.AddDays(30).AddMilliseconds(minutes * 13),
        RevokedAt = revokedAt,
        RevokedReason = revokedAt is null ? null : "logout",
    };

    /// <summary>
    /// Each device's sessions in the order read, with every value the rules see. The order across devices is not
    /// part of the contract (EF's query orders by time alone, the rules group by device).
    /// </summary>
    private static string ByDevice(IEnumerable<Session> sessions) => JsonSerializer.Serialize(
        sessions.GroupBy(s => s.DeviceId, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new { Device = g.Key, Sessions = g.Select(s => new { s.Id, s.NetworkId, s.UserRef, s.DeviceId, s.CreatedAt, s.ExpiresAt }) }));
}
