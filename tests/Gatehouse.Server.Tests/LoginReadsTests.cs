using System.Text.Json;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// A login group reads its devices' bindings, its users and its devices' live sessions without EF's queries: on
/// SQLite the sessions by a prepared statement (<see cref="SqliteDeviceSessions"/>), on PostgreSQL all three in one
/// batch (<see cref="PostgresLoginReads"/>). Each must find what plain EF queries find: only the network's rows, only
/// the devices and users asked for (matched byte for byte, so another case is another device), only unrevoked
/// sessions, oldest first on each device, every value the rules judge exactly.
/// </summary>
public abstract class LoginReadsTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    private static readonly DateTimeOffset Opened = new(2026, 12, 5, 6, 0, 0, TimeSpan.Zero);
    private const string Shared = "phone-ü-📱";
    private const string SharedUpper = "PHONE-Ü-📱";

    protected TServer Server => server;

    [SkippableFact]
    public async Task Reads_what_EF_reads_for_every_device_and_user_of_a_group()
    {
        var network = await server.CreateNetworkAsync();
        var other = await server.CreateNetworkAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var ada = NewUser(network.Id, 0, "reader-ada", displayName: "Ada 🧮", UserKind.SignedIn);
        var adaUpper = NewUser(network.Id, 1, "READER-ADA", displayName: null, UserKind.Visitor);
        var bob = NewUser(network.Id, 2, "reader-bob", displayName: null, UserKind.Bot);
        bob.IsGlobalBan = true;
        bob.IsDeleted = true;
        bob.UpdatedAt = Opened.AddMinutes(42).AddMilliseconds(7);
        var elsewhere = NewUser(other.Id, 3, "reader-ada", displayName: "Elsewhere", UserKind.SignedIn);
        db.Users.AddRange(ada, adaUpper, bob, elsewhere);
        db.DeviceBindings.AddRange(
            NewBinding(ada, Shared, minutes: 1),
            NewBinding(bob, "tablet", minutes: 2),
            NewBinding(adaUpper, SharedUpper, minutes: 3),
            NewBinding(bob, "not-asked", minutes: 4),
            NewBinding(elsewhere, "tablet", minutes: 5));
        var sessions = new[]
        {
            // Written newest first, so that reading them in the order written cannot pass for oldest first.
            NewSession(ada, Shared, minutes: 30, revokedAt: null),
            NewSession(ada, Shared, minutes: 10, revokedAt: null),
            NewSession(bob, Shared, minutes: 20, revokedAt: null),
            NewSession(ada, Shared, minutes: 5, revokedAt: Opened.AddMinutes(6)),
            NewSession(elsewhere, Shared, minutes: 1, revokedAt: null),
            NewSession(adaUpper, SharedUpper, minutes: 2, revokedAt: null),
            NewSession(bob, "tablet", minutes: 3, revokedAt: null),
            NewSession(bob, "not-asked", minutes: 4, revokedAt: null),
        };
        db.Sessions.AddRange(sessions);
        await db.SaveChangesAsync();

        List<string> devices = [Shared, "tablet", "never-seen", SharedUpper];
        List<string> userIds = ["reader-ada", "reader-bob", "nobody"];
        LoginReads read;
        await using (await db.Database.BeginTransactionAsync())
            read = await SessionService.ReadLoginRowsAsync(db, network.Id, devices, userIds);

        var bindings = await db.DeviceBindings.AsNoTracking().Where(d => d.NetworkId == network.Id && devices.Contains(d.DeviceId)).ToListAsync();
        var users = await db.Users.AsNoTracking().Where(u => u.NetworkId == network.Id && userIds.Contains(u.UserId)).ToListAsync();
        var live = await db.Sessions.AsNoTracking()
            .Where(s => s.NetworkId == network.Id && devices.Contains(s.DeviceId) && s.RevokedAt == null).OrderBy(s => s.CreatedAt).ToListAsync();
        Assert.Equal(Sorted(bindings, b => b.DeviceId), Sorted(read.Bindings, b => b.DeviceId));
        Assert.Equal(Sorted(users, u => u.UserId), Sorted(read.Users, u => u.UserId));
        Assert.Equal(ByDevice(live), ByDevice(read.Sessions));

        Assert.Equal([SharedUpper, Shared, "tablet"], read.Bindings.Select(b => b.DeviceId).Order(StringComparer.Ordinal));
        Assert.Equal(bob.Id, read.Bindings.Single(b => b.DeviceId == "tablet").UserRef);
        Assert.Equal([ada.Id, bob.Id], read.Users.Select(u => u.Id).Order(StringComparer.Ordinal));
        var readBob = read.Users.Single(u => u.Id == bob.Id);
        Assert.True(readBob is { Kind: UserKind.Bot, IsGlobalBan: true, IsDeleted: true, DisplayName: null });
        Assert.Equal(bob.UpdatedAt, readBob.UpdatedAt);
        Assert.Equal("Ada 🧮", read.Users.Single(u => u.Id == ada.Id).DisplayName);
        // What the rules see on the shared device: its three live sessions in this network, oldest first.
        Assert.Equal([sessions[1].Id, sessions[2].Id, sessions[0].Id], read.Sessions.Where(s => s.DeviceId == Shared).Select(s => s.Id));
        Assert.Equal([sessions[5].Id], read.Sessions.Where(s => s.DeviceId == SharedUpper).Select(s => s.Id));
        Assert.Equal(sessions[0].ExpiresAt, read.Sessions.Single(s => s.Id == sessions[0].Id).ExpiresAt);
        Assert.Equal(sessions[2].UserRef, read.Sessions.Single(s => s.Id == sessions[2].Id).UserRef);
    }

    private protected static User NewUser(string networkId, int index, string userId, string? displayName, UserKind kind) => new()
    {
        Id = Secrets.NewId(Opened.AddSeconds(index)),
        NetworkId = networkId,
        UserId = userId,
        DisplayName = displayName,
        Kind = kind,
        CreatedAt = Opened.AddSeconds(index),
        UpdatedAt = Opened.AddSeconds(index).AddMilliseconds(index * 3),
    };

    private protected static DeviceBinding NewBinding(User user, string deviceId, int minutes) =>
        new() { NetworkId = user.NetworkId, DeviceId = deviceId, UserRef = user.Id, BoundAt = Opened.AddMinutes(minutes).AddMilliseconds(minutes * 11) };

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

    /// <summary>Every value of every row, in an order that does not depend on how they were read. Times compare as instants.</summary>
    private static string Sorted<T>(IEnumerable<T> rows, Func<T, string> key) =>
        JsonSerializer.Serialize(rows.OrderBy(key, StringComparer.Ordinal).Select(Instants));

    private static object Instants<T>(T row) => row switch
    {
        DeviceBinding b => new { b.NetworkId, b.DeviceId, b.UserRef, BoundAt = b.BoundAt.UtcTicks },
        User u => new { u.Id, u.NetworkId, u.UserId, u.DisplayName, u.Kind, u.IsGlobalBan, u.IsDeleted, CreatedAt = u.CreatedAt.UtcTicks, UpdatedAt = u.UpdatedAt.UtcTicks },
        _ => throw new ArgumentException($"No comparison for {typeof(T).Name}."),
    };

    /// <summary>
    /// Each device's sessions in the order read, with every value the rules see. The order across devices is not
    /// part of the contract (the rules group by device).
    /// </summary>
    private static string ByDevice(IEnumerable<Session> sessions) => JsonSerializer.Serialize(
        sessions.GroupBy(s => s.DeviceId, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new
            {
                Device = g.Key,
                Sessions = g.Select(s => new { s.Id, s.NetworkId, s.UserRef, s.DeviceId, CreatedAt = s.CreatedAt.UtcTicks, ExpiresAt = s.ExpiresAt.UtcTicks }),
            }));
}

[Trait(Category.Name, Category.Fast)]
public sealed class LoginReadsTestsOnSqlite(SqliteServer server) : LoginReadsTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class LoginReadsTestsOnPostgres(PostgresServer server) : LoginReadsTests<PostgresServer>(server)
{
    /// <summary>
    /// Two nodes' groups that log in on one device must take turns (else both see no rival and both stay signed in):
    /// the read locks the device's binding until the first group commits, and the second then reads what it wrote.
    /// </summary>
    [SkippableFact]
    public async Task A_second_group_reading_a_device_waits_for_the_first_and_then_reads_its_binding()
    {
        var network = await Server.CreateNetworkAsync();
        await using var firstScope = Server.Services.CreateAsyncScope();
        await using var secondScope = Server.Services.CreateAsyncScope();
        var first = firstScope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var second = secondScope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var ada = NewUser(network.Id, 0, "turn-ada", displayName: null, UserKind.SignedIn);
        var bob = NewUser(network.Id, 1, "turn-bob", displayName: null, UserKind.SignedIn);
        first.Users.AddRange(ada, bob);
        first.DeviceBindings.Add(NewBinding(ada, "kiosk", minutes: 1));
        await first.SaveChangesAsync();

        await using var firstGroup = await first.Database.BeginTransactionAsync();
        var firstRead = await SessionService.ReadLoginRowsAsync(first, network.Id, ["kiosk"], ["turn-bob"]);
        Assert.Equal(ada.Id, firstRead.Bindings.Single().UserRef);
        await first.DeviceBindings.Where(d => d.NetworkId == network.Id && d.DeviceId == "kiosk")
            .ExecuteUpdateAsync(set => set.SetProperty(d => d.UserRef, bob.Id));

        await using var secondGroup = await second.Database.BeginTransactionAsync();
        var secondRead = SessionService.ReadLoginRowsAsync(second, network.Id, ["kiosk"], ["turn-ada"]);
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        Assert.False(secondRead.IsCompleted, "The second group read the device while the first still held it.");
        await firstGroup.CommitAsync();

        Assert.Equal(bob.Id, (await secondRead.WaitAsync(TimeSpan.FromSeconds(10))).Bindings.Single().UserRef);
    }
}
