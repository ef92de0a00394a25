using System.Diagnostics;
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
/// batch (<see cref="PostgresGroupReads"/>). Each must find what plain EF queries find: only the network's rows, only
/// the devices and users asked for (matched byte for byte, so another case is another device), only unrevoked
/// sessions, oldest first on each device, every value the rules judge exactly. A refresh group's read (on
/// PostgreSQL one batch too) must find the refresh tokens by digest with every column of their sessions and users.
/// </summary>
public abstract class GroupReadsTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    /// <summary>
    /// SQLite keeps a time's offset and must read it back; PostgreSQL stores instants and takes only UTC ones.
    /// </summary>
    protected virtual TimeSpan StoredOffset => TimeSpan.Zero;

    private protected DateTimeOffset Opened => new(2026, 12, 5, 6, 0, 0, StoredOffset);
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
        // One flag each, so the two columns cannot be read into each other's place unnoticed.
        ada.IsDeleted = true;
        bob.IsGlobalBan = true;
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
        Assert.True(readBob is { Kind: UserKind.Bot, IsGlobalBan: true, IsDeleted: false, DisplayName: null });
        Assert.True(read.Users.Single(u => u.Id == ada.Id) is { Kind: UserKind.SignedIn, IsGlobalBan: false, IsDeleted: true });
        Assert.Equal(bob.UpdatedAt, readBob.UpdatedAt);
        Assert.Equal("Ada 🧮", read.Users.Single(u => u.Id == ada.Id).DisplayName);
        // What the rules see on the shared device: its three live sessions in this network, oldest first.
        Assert.Equal([sessions[1].Id, sessions[2].Id, sessions[0].Id], read.Sessions.Where(s => s.DeviceId == Shared).Select(s => s.Id));
        Assert.Equal([sessions[5].Id], read.Sessions.Where(s => s.DeviceId == SharedUpper).Select(s => s.Id));
        Assert.Equal(sessions[0].ExpiresAt, read.Sessions.Single(s => s.Id == sessions[0].Id).ExpiresAt);
        Assert.Equal(sessions[2].UserRef, read.Sessions.Single(s => s.Id == sessions[2].Id).UserRef);
    }

    [SkippableFact]
    public async Task Reads_each_refresh_tokens_row_with_every_column_of_its_session_and_user()
    {
        var network = await server.CreateNetworkAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var ada = NewUser(network.Id, 0, "refresher-ada", displayName: "Ada 🧮", UserKind.SignedIn);
        var bob = NewUser(network.Id, 1, "refresher-bob", displayName: null, UserKind.Visitor);
        bob.IsGlobalBan = true;
        var carol = NewUser(network.Id, 2, "refresher-carol", displayName: "Carol", UserKind.SignedIn);
        db.Users.AddRange(ada, bob, carol);
        // Every column set, so a column read into the wrong property or left out shows.
        var full = new Session
        {
            Id = Guid.CreateVersion7(Opened), NetworkId = network.Id, UserRef = ada.Id, DeviceId = Shared, DeviceKind = "wéb",
            DeviceModel = "Model ✓", SdkVersion = "7.1.0", CreatedAt = Opened.AddMilliseconds(1), OpenedWithAuthToken = true,
            ExpiresAt = Opened.AddDays(30).AddMilliseconds(2), RevokedAt = Opened.AddMinutes(9), RevokedReason = "refresh-reuse",
            OpenedFrom = "203.0.113.9", LastRefreshedAt = Opened.AddMinutes(8).AddMilliseconds(3), LastRefreshedFrom = "2001:db8::1",
        };
        var bare = NewSession(bob, "tablet", minutes: 2, revokedAt: null);
        var bobsOther = NewSession(bob, "phone", minutes: 4, revokedAt: null);
        // Another user's, not asked for: neither it nor its user may come back.
        var unasked = NewSession(carol, "not-asked", minutes: 3, revokedAt: null);
        db.Sessions.AddRange(full, bare, bobsOther, unasked);
        var tokens = new[]
        {
            NewRefreshToken(full, "a", usedAt: Opened.AddMinutes(8)),
            NewRefreshToken(full, "b", usedAt: null),
            NewRefreshToken(bare, "c", usedAt: null),
            NewRefreshToken(bobsOther, "e", usedAt: null),
            NewRefreshToken(unasked, "d", usedAt: null),
        };
        db.RefreshTokens.AddRange(tokens);
        await db.SaveChangesAsync();

        List<string> digests = [.. tokens[..4].Select(t => t.Digest), Secrets.Digest("never-issued")];
        RefreshReads read;
        await using (await db.Database.BeginTransactionAsync())
            read = await SessionService.ReadRefreshRowsAsync(db, digests);

        var rows = await db.RefreshTokens.AsNoTracking().Where(r => digests.Contains(r.Digest)).ToListAsync();
        var sessionIds = rows.Select(r => r.SessionId).ToList();
        var sessions = await db.Sessions.AsNoTracking().Where(s => sessionIds.Contains(s.Id)).ToListAsync();
        var userRefs = sessions.Select(s => s.UserRef).ToList();
        var users = await db.Users.AsNoTracking().Where(u => userRefs.Contains(u.Id)).ToListAsync();
        Assert.Equal(Sorted(rows, r => r.Digest), Sorted(read.RefreshTokens, r => r.Digest));
        Assert.Equal(Sorted(sessions, s => s.Id.ToString()), Sorted(read.Sessions, s => s.Id.ToString()));
        Assert.Equal(Sorted(users, u => u.Id), Sorted(read.Users, u => u.Id));

        Assert.Equal(tokens[..4].Select(t => t.Digest).Order(StringComparer.Ordinal), read.RefreshTokens.Select(r => r.Digest).Order(StringComparer.Ordinal));
        Assert.Equal(tokens[0].UsedAt, read.RefreshTokens.Single(r => r.Digest == tokens[0].Digest).UsedAt);
        Assert.Equal(Sorted([full, bare, bobsOther], s => s.Id.ToString()), Sorted(read.Sessions, s => s.Id.ToString()));
        // Bob's two sessions bring him once.
        Assert.Equal(Sorted([ada, bob], u => u.Id), Sorted(read.Users, u => u.Id));
    }

    private protected User NewUser(string networkId, int index, string userId, string? displayName, UserKind kind) => new()
    {
        Id = Secrets.NewId(Opened.AddSeconds(index)),
        NetworkId = networkId,
        UserId = userId,
        DisplayName = displayName,
        Kind = kind,
        CreatedAt = Opened.AddSeconds(index),
        UpdatedAt = Opened.AddSeconds(index).AddMilliseconds(index * 3),
    };

    private protected DeviceBinding NewBinding(User user, string deviceId, int minutes) =>
        new() { NetworkId = user.NetworkId, DeviceId = deviceId, UserRef = user.Id, BoundAt = Opened.AddMinutes(minutes).AddMilliseconds(minutes * 11) };

    private protected Session NewSession(User user, string deviceId, int minutes, DateTimeOffset? revokedAt) => new()
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

    private static RefreshToken NewRefreshToken(Session session, string seed, DateTimeOffset? usedAt) => new()
    {
        Digest = Secrets.Digest($"{session.Id}-{seed}"),
        SessionId = session.Id,
        IssuedAt = session.CreatedAt.AddSeconds(seed[0]),
        ExpiresAt = session.ExpiresAt.AddSeconds(-seed[0]),
        UsedAt = usedAt,
    };

    /// <summary>Every value of every row (a time with its offset), in an order that does not depend on how they were read.</summary>
    private static string Sorted<T>(IEnumerable<T> rows, Func<T, string> key) =>
        JsonSerializer.Serialize(rows.OrderBy(key, StringComparer.Ordinal).Select(Values));

    private static object Values<T>(T row) => row switch
    {
        DeviceBinding b => new { b.NetworkId, b.DeviceId, b.UserRef, b.BoundAt },
        User u => new { u.Id, u.NetworkId, u.UserId, u.DisplayName, u.Kind, u.IsGlobalBan, u.IsDeleted, u.CreatedAt, u.UpdatedAt },
        RefreshToken r => new { r.Digest, r.SessionId, r.IssuedAt, r.ExpiresAt, r.UsedAt },
        Session s => new
        {
            s.Id, s.NetworkId, s.UserRef, s.DeviceId, s.DeviceKind, s.DeviceModel, s.SdkVersion, s.CreatedAt,
            s.OpenedWithAuthToken, s.ExpiresAt, s.RevokedAt, s.RevokedReason, s.OpenedFrom, s.LastRefreshedAt, s.LastRefreshedFrom,
        },
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
                Sessions = g.Select(s => new { s.Id, s.NetworkId, s.UserRef, s.DeviceId, s.CreatedAt, s.ExpiresAt }),
            }));
}

[Trait(Category.Name, Category.Fast)]
public sealed class GroupReadsTestsOnSqlite(SqliteServer server) : GroupReadsTests<SqliteServer>(server)
{
    protected override TimeSpan StoredOffset => TimeSpan.FromHours(-5);
}

[Trait(Category.Name, Category.Postgres)]
public sealed class GroupReadsTestsOnPostgres(PostgresServer server) : GroupReadsTests<PostgresServer>(server)
{
    /// <summary>
    /// Two nodes' groups that log in on one device must take turns (else both see no rival and both stay signed in):
    /// the read locks the device's binding, also for a returning user's login, which writes nothing to it, until the
    /// first group commits; the second then reads the session the first opened.
    /// </summary>
    [SkippableFact]
    public async Task A_second_group_reading_a_device_waits_for_the_first_and_then_reads_its_session()
    {
        var network = await Server.CreateNetworkAsync();
        await using var firstScope = Server.Services.CreateAsyncScope();
        await using var secondScope = Server.Services.CreateAsyncScope();
        await using var watcherScope = Server.Services.CreateAsyncScope();
        var first = firstScope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var second = secondScope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var watcher = watcherScope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var ada = NewUser(network.Id, 0, "turn-ada", displayName: null, UserKind.SignedIn);
        var bob = NewUser(network.Id, 1, "turn-bob", displayName: null, UserKind.SignedIn);
        first.Users.AddRange(ada, bob);
        first.DeviceBindings.Add(NewBinding(ada, "kiosk", minutes: 1));
        await first.SaveChangesAsync();

        await using var firstGroup = await first.Database.BeginTransactionAsync();
        Assert.Empty((await SessionService.ReadLoginRowsAsync(first, network.Id, ["kiosk"], ["turn-ada"])).Sessions);
        var opened = NewSession(ada, "kiosk", minutes: 2, revokedAt: null);
        await BulkInsert.InsertAsync(first, [opened]);

        await using var secondGroup = await second.Database.BeginTransactionAsync();
        var secondPid = await second.Database.SqlQuery<int>($"SELECT pg_backend_pid() AS \"Value\"").SingleAsync();
        var secondRead = SessionService.ReadLoginRowsAsync(second, network.Id, ["kiosk"], ["turn-bob"]);
        // Committed as soon as the second read is seen waiting for a lock, well within its command timeout.
        var waited = Stopwatch.StartNew();
        while (!secondRead.IsCompleted && waited.Elapsed < TimeSpan.FromSeconds(1) && await WaitsOnAsync(watcher, secondPid) != "Lock")
        {
            await Task.Delay(10);
        }
        Assert.False(secondRead.IsCompleted, "The second group read the device while the first still held it.");
        await firstGroup.CommitAsync();

        var read = await secondRead.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(ada.Id, read.Bindings.Single().UserRef);
        Assert.Equal([opened.Id], read.Sessions.Select(session => session.Id));
    }

    private static Task<string> WaitsOnAsync(GatehouseDb watcher, int pid) => watcher.Database
        .SqlQuery<string>($"SELECT coalesce(wait_event_type, '') AS \"Value\" FROM pg_stat_activity WHERE pid = {pid}").SingleAsync();
}
