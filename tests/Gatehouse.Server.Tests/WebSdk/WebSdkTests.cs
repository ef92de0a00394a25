using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.WebSdk;

/// <summary>The official social.plus web SDK (@amityco/ts-sdk 6.35.3), unchanged, against Gatehouse.</summary>
[Trait(Category.Name, Category.Browser)]
public sealed class WebSdkTests(WebSdkFixture sdk) : IClassFixture<WebSdkFixture>
{
    private GatehouseServer Server => sdk.Server;

    [Fact]
    public async Task Unsecure_login_creates_the_user_and_sets_the_display_name()
    {
        var network = await Server.CreateNetworkAsync();
        var page = await sdk.OpenAsync(network);

        var login = await page.LoginAsync("alice", "Alice Liddell");

        Assert.True(login.Ok, login.Error?.Message);
        Assert.Equal("established", login.State);
        Assert.Equal("alice", login.UserId);
        Assert.Equal(["establishing", "established"], await page.StatesAsync());
        Assert.Equal("Alice Liddell", (await page.MeAsync()).DisplayName);
        await using var scope = Server.Services.CreateAsyncScope();
        var stored = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Users.SingleAsync(u => u.NetworkId == network.Id);
        Assert.Equal(("alice", "Alice Liddell"), (stored.UserId, stored.DisplayName));
        var session = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Sessions.SingleAsync(s => s.NetworkId == network.Id);
        Assert.StartsWith("ascWebSdk#", session.DeviceId, StringComparison.Ordinal);
        Assert.Equal("web", session.DeviceKind);
    }

    [Fact]
    public async Task In_secure_mode_a_login_without_an_auth_token_fails_and_returns_to_not_logged_in()
    {
        var network = await Server.CreateNetworkAsync(secureMode: true);
        var page = await sdk.OpenAsync(network);

        var login = await page.LoginAsync("bob");

        Assert.False(login.Ok);
        Assert.Equal(400100, login.Error!.Code);
        Assert.Equal("notLoggedIn", login.State);
        await using var scope = Server.Services.CreateAsyncScope();
        Assert.False(await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Sessions.AnyAsync(s => s.NetworkId == network.Id));
    }

    [Fact]
    public async Task A_token_minted_with_the_server_key_logs_in_and_one_for_another_user_is_refused()
    {
        var network = await Server.CreateNetworkAsync(secureMode: true);
        var serverKey = await Server.GenerateServerKeyAsync(network);
        var page = await sdk.OpenAsync(network);

        var wrongUser = await page.LoginAsync("carol", authToken: await Server.MintAsync(serverKey, "mallory"));
        var login = await page.LoginAsync("carol", authToken: await Server.MintAsync(serverKey, "carol"));
        var me = await page.MeAsync();

        Assert.False(wrongUser.Ok);
        Assert.Equal(400100, wrongUser.Error!.Code);
        Assert.True(login.Ok, login.Error?.Message);
        Assert.Equal("established", login.State);
        Assert.Equal("carol", me.UserId);
    }

    [Fact]
    public async Task The_session_handler_renews_with_a_fresh_auth_token_before_the_token_expires()
    {
        var network = await Server.CreateNetworkAsync(secureMode: true);
        var serverKey = await Server.GenerateServerKeyAsync(network);
        var page = await sdk.OpenAsync(network, controlClock: true);
        Assert.True((await page.LoginAsync("dave", authToken: await Server.MintAsync(serverKey, "dave"))).Ok);
        var first = await page.AccessTokenAsync();

        // 25 of the token's 30 days pass on both clocks: past the SDK's 80 % mark, so it asks the app to renew.
        Server.Clock.Advance(TimeSpan.FromDays(25));
        await page.Page.EvaluateAsync("token => { window.nextAuthToken = token; }", await Server.MintAsync(serverKey, "dave"));
        // In steps: the browser clock takes at most a 32-bit count of milliseconds at a time.
        for (var day = 0; day < 25; day += 5)
            await page.Page.Clock.FastForwardAsync((long)TimeSpan.FromDays(5).TotalMilliseconds);
        // Polled from here in real time: the page's own timers are under the paused test clock.
        for (var attempt = 0; attempt < 100 && await page.AccessTokenAsync() == first; attempt++)
            await Task.Delay(100);

        Assert.NotEqual(first, await page.AccessTokenAsync());
        Assert.True(await page.RenewalsAsync() >= 1);
        Assert.Equal("established", await page.StateAsync());
        Assert.Equal("dave", (await page.MeAsync()).UserId);
        await using var scope = Server.Services.CreateAsyncScope();
        // The renewal opened a new session with the fresh auth token (the SDK's watcher may ask more than once).
        Assert.True(await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Sessions.CountAsync(s => s.NetworkId == network.Id) >= 2);
    }

    [Fact]
    public async Task A_second_user_on_the_same_device_ends_the_first_users_session()
    {
        var network = await Server.CreateNetworkAsync();
        var first = await sdk.OpenAsync(network);
        var second = await sdk.OpenAsync(network);
        Assert.True((await first.LoginAsync("erin", deviceId: "shared-kiosk")).Ok);

        Assert.True((await second.LoginAsync("frank", deviceId: "shared-kiosk")).Ok);
        var erin = await first.MeAsync();

        Assert.False(erin.Ok);
        Assert.Equal(400100, erin.Error!.Code);
        Assert.Equal("terminated", await first.StateAsync());
        Assert.Equal("frank", (await second.MeAsync()).UserId);
    }

    [Fact]
    public async Task Secure_logout_succeeds_and_the_old_access_token_is_then_refused()
    {
        var network = await Server.CreateNetworkAsync();
        var page = await sdk.OpenAsync(network);
        Assert.True((await page.LoginAsync("gina")).Ok);
        var accessToken = await page.AccessTokenAsync();

        var logout = await page.SecureLogoutAsync();

        Assert.True(logout.Ok, logout.Error?.Message);
        Assert.Equal("notLoggedIn", logout.State);
        using var me = await Server.GetWithBearerAsync("/api/v3/users/me", accessToken!);
        await Envelope.AssertUnauthorizedAsync(me);
    }

    [Fact]
    public async Task A_banned_user_is_refused_with_the_ban_code()
    {
        var network = await Server.CreateNetworkAsync();
        var page = await sdk.OpenAsync(network);
        Assert.True((await page.LoginAsync("hank")).Ok);
        var (adminToken, _) = await Server.GenerateAdminTokenAsync(await Server.CreateAdminAsync(network), network);
        using (var ban = await Server.AdminAsync(HttpMethod.Post, "/api/v4/admin/users/hank/ban", adminToken!))
            Assert.Equal(HttpStatusCode.OK, ban.StatusCode);

        var live = await page.MeAsync();
        var again = await (await sdk.OpenAsync(network)).LoginAsync("hank");

        Assert.False(live.Ok);
        Assert.Equal(400312, live.Error!.Code);
        Assert.False(again.Ok);
        Assert.Equal(400312, again.Error!.Code);
        Assert.Equal("notLoggedIn", again.State);
    }
}
