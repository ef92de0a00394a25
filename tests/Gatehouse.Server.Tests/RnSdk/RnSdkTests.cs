using Gatehouse.Client;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.RnSdk;

/// <summary>
/// The newest official SDK line, @amityco/ts-sdk-react-native 7.20.0, unchanged (only its React Native modules stood
/// in for), against Gatehouse: what a React Native app does with it.
/// </summary>
[Trait(Category.Name, Category.Slow)]
public sealed class RnSdkTests(SqliteServer server) : IClassFixture<SqliteServer>
{
    private AuthTokenClient Backend(string serverKey, string? visitorSecret = null) =>
        new(server.Http, new AuthTokenClientOptions { Endpoint = server.BaseAddress, ServerKey = serverKey, VisitorSecret = visitorSecret });

    [Fact]
    public async Task Login_then_secure_logout_and_the_user_type_is_signed_in()
    {
        var network = await server.CreateNetworkAsync();
        await using var app = await RnSdkApp.StartAsync(server, network);

        var login = await app.LoginAsync("alice");
        var type = await app.CurrentUserTypeAsync();
        var me = await app.MeAsync();
        var accessToken = await app.AccessTokenAsync();
        var logout = await app.SecureLogoutAsync();

        Assert.True(login.Ok, login.Error?.Message);
        Assert.Equal(("established", "alice"), (login.State, login.UserId));
        Assert.Equal("signed-in", type);
        Assert.Equal("alice", me.UserId);
        Assert.True(logout.Ok, logout.Error?.Message);
        Assert.Equal("notLoggedIn", logout.State);
        using var after = await server.GetWithBearerAsync("/api/v3/users/me", accessToken!);
        await Envelope.AssertUnauthorizedAsync(after);
    }

    [Fact]
    public async Task Secure_login_needs_an_auth_token_minted_for_that_user()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        await using var app = await RnSdkApp.StartAsync(server, network);

        var without = await app.LoginAsync("bob");
        var otherUsers = await app.LoginAsync("bob", await server.MintAsync(serverKey, "mallory"));
        var login = await app.LoginAsync("bob", await server.MintAsync(serverKey, "bob"));

        Assert.Equal((false, 400100, "notLoggedIn"), (without.Ok, without.Error!.Code, without.State));
        Assert.Equal((false, 400100), (otherUsers.Ok, otherUsers.Error!.Code));
        Assert.True(login.Ok, login.Error?.Message);
        Assert.Equal("bob", (await app.MeAsync()).UserId);
    }

    [Fact]
    public async Task A_visitor_is_refused_until_allowed_then_keeps_one_user_per_device_and_can_log_out()
    {
        var network = await server.CreateNetworkAsync();
        await using var app = await RnSdkApp.StartAsync(server, network);
        await using var otherDevice = await RnSdkApp.StartAsync(server, network);

        var refused = await app.LoginAsVisitorAsync();
        await server.SetAnonymousModeAsync(network, UserKind.Visitor, true);
        var first = await app.LoginAsVisitorAsync();
        var type = await app.CurrentUserTypeAsync();
        var again = await app.LoginAsVisitorAsync();
        var other = await otherDevice.LoginAsVisitorAsync();
        var me = await app.MeAsync();
        var logout = await app.SecureLogoutAsync();

        Assert.Equal((false, 488999, "notLoggedIn"), (refused.Ok, refused.Error!.Code, refused.State));
        Assert.True(first.Ok, first.Error?.Message);
        Assert.StartsWith("visitor-", first.UserId, StringComparison.Ordinal);
        Assert.Equal("visitor", type);
        Assert.Equal(first.UserId, again.UserId);
        Assert.True(other.Ok, other.Error?.Message);
        Assert.NotEqual(first.UserId, other.UserId);
        Assert.Equal(first.UserId, me.UserId);
        Assert.True(logout.Ok, logout.Error?.Message);
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var visitorDevices = await db.Sessions.Where(s => s.NetworkId == network.Id)
            .Join(db.Users.Where(u => u.UserId == first.UserId), s => s.UserRef, u => u.Id, (s, _) => s.DeviceId).Distinct().ToListAsync();
        Assert.Equal([(await app.DeviceIdAsync())!], visitorDevices);
    }

    [Fact]
    public async Task In_secure_mode_a_visitor_logs_in_with_its_backends_signature_and_bad_ones_are_refused()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        await server.SetAnonymousModeAsync(network, UserKind.Visitor, true);
        var backend = Backend(await server.GenerateServerKeyAsync(network), await server.GenerateVisitorSecretAsync(network));
        await using var app = await RnSdkApp.StartAsync(server, network);
        await using var otherApp = await RnSdkApp.StartAsync(server, network);

        var unsigned = await app.LoginAsVisitorAsync();
        var deviceId = (await app.DeviceIdAsync())!;
        var now = server.Clock.GetUtcNow();
        var expired = backend.SignVisitor(deviceId, now.AddMinutes(-1));
        var tooFar = backend.SignVisitor(deviceId, now.AddDays(2));
        var forgedWith = Backend("gsk_unused", "gvs_guessed").SignVisitor(deviceId, now.AddHours(1));
        var good = backend.SignVisitor(deviceId, now.AddHours(1));
        var results = new List<(string Case, WebSdk.SdkResult Result)>
        {
            ("expired", await app.LoginAsVisitorAsync(expired.AuthSignature, expired.AuthSignatureExpiresAt)),
            ("too far ahead", await app.LoginAsVisitorAsync(tooFar.AuthSignature, tooFar.AuthSignatureExpiresAt)),
            ("another secret", await app.LoginAsVisitorAsync(forgedWith.AuthSignature, forgedWith.AuthSignatureExpiresAt)),
            ("another device", await otherApp.LoginAsVisitorAsync(good.AuthSignature, good.AuthSignatureExpiresAt)),
        };
        var signed = await app.LoginAsVisitorAsync(good.AuthSignature, good.AuthSignatureExpiresAt);

        Assert.Equal((false, 400100), (unsigned.Ok, unsigned.Error!.Code));
        Assert.All(results, r => Assert.True(r.Result is { Ok: false, State: "notLoggedIn", Error.Code: 400100 }, r.Case));
        Assert.True(signed.Ok, signed.Error?.Message);
        Assert.Equal("visitor", await app.CurrentUserTypeAsync());

        // 25 days on, the SDK asks the session handler to renew; the app renews with a fresh signature from its backend.
        var first = await app.AccessTokenAsync();
        server.Clock.Advance(TimeSpan.FromDays(25));
        await app.SetNextSignatureAsync(backend.SignVisitor(deviceId, server.Clock.GetUtcNow().AddHours(1)));
        await app.AdvanceAsync(TimeSpan.FromDays(25));
        for (var attempt = 0; attempt < 100 && await app.AccessTokenAsync() == first; attempt++)
            await Task.Delay(100);
        Assert.NotEqual(first, await app.AccessTokenAsync());
        Assert.Equal(signed.UserId, (await app.MeAsync()).UserId);
    }

    [Fact]
    public async Task A_bot_is_refused_until_allowed_then_logs_in_as_a_bot()
    {
        var network = await server.CreateNetworkAsync();
        await using var app = await RnSdkApp.StartAsync(server, network);

        var refused = await app.LoginAsBotAsync();
        await server.SetAnonymousModeAsync(network, UserKind.Bot, true);
        var bot = await app.LoginAsBotAsync();

        Assert.Equal((false, 488998), (refused.Ok, refused.Error!.Code));
        Assert.True(bot.Ok, bot.Error?.Message);
        Assert.StartsWith("bot-", bot.UserId, StringComparison.Ordinal);
        Assert.Equal("bot", await app.CurrentUserTypeAsync());
        Assert.Equal(bot.UserId, (await app.MeAsync()).UserId);
    }

    [Fact]
    public async Task An_app_logs_in_with_the_access_token_its_backend_opened_and_renews_through_its_token_handler()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var backend = Backend(await server.GenerateServerKeyAsync(network));
        var first = await backend.OpenSessionAsync("carol");
        await using var app = await RnSdkApp.StartAsync(server, network);

        var login = await app.LoginWithAccessTokenAsync(first.AccessToken);
        var me = await app.MeAsync();
        // 25 of the token's 30 days pass on both clocks: past the SDK's 80 % mark, it asks the app's handler for a new token.
        var renewed = await backend.OpenSessionAsync("carol");
        await app.SetNextAccessTokenAsync(renewed.AccessToken);
        server.Clock.Advance(TimeSpan.FromDays(25));
        await app.AdvanceAsync(TimeSpan.FromDays(25));
        for (var attempt = 0; attempt < 100 && await app.AccessTokenAsync() != renewed.AccessToken; attempt++)
            await Task.Delay(100);

        Assert.True(login.Ok, login.Error?.Message);
        Assert.Equal(("established", "carol"), (login.State, login.UserId));
        Assert.Equal("carol", me.UserId);
        Assert.Equal(["carol"], await app.RenewalsAskedAsync());
        Assert.Equal(renewed.AccessToken, await app.AccessTokenAsync());
        Assert.Equal("carol", (await app.MeAsync()).UserId);
    }

    [Fact]
    public async Task A_token_of_an_ended_session_or_a_banned_user_does_not_log_in_with_loginWithAccessToken()
    {
        var network = await server.CreateNetworkAsync();
        var ended = (await server.LoginAsync(network, "dave", "device-d"))["accessToken"]!.GetValue<string>();
        using (await server.LogoutAsync(ended))
        {
        }
        var banned = (await server.LoginAsync(network, "erin", "device-e"))["accessToken"]!.GetValue<string>();
        var (adminToken, _) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);
        using (var ban = await server.AdminAsync(HttpMethod.Post, "/api/v4/admin/users/erin/ban", adminToken!))
            Assert.Equal(HttpStatusCode.OK, ban.StatusCode);
        await using var app = await RnSdkApp.StartAsync(server, network);

        var afterLogout = await app.LoginWithAccessTokenAsync(ended);
        var afterBan = await app.LoginWithAccessTokenAsync(banned);

        Assert.Equal((false, "notLoggedIn"), (afterLogout.Ok, afterLogout.State));
        Assert.Equal((false, "notLoggedIn"), (afterBan.Ok, afterBan.State));
    }
}
