using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Gatehouse.Samples.ResourceApi;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.Client;

/// <summary>
/// samples/ResourceApi, a customer's own API on Gatehouse.AspNetCore, against a real Gatehouse: the token's signature,
/// issuer and audience from the discovery document, and revocation through introspection within its window.
/// </summary>
[Trait(Category.Name, Category.Slow)]
public sealed class ResourceApiTests(SqliteServer server) : IClassFixture<SqliteServer>
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task The_sample_api_accepts_a_live_token_and_refuses_tampered_other_network_and_expired_ones()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var other = await server.CreateNetworkAsync();
        await using var api = await StartApiAsync(serverKey);
        var token = await LoginAsync(network, serverKey, "alice", "phone");

        using (var me = await CallAsync(api, token))
        {
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
            var body = await me.Content.ReadFromJsonAsync<JsonObject>();
            Assert.Equal("alice", body!["userId"]!.GetValue<string>());
            Assert.Equal(network.Id, body["networkId"]!.GetValue<string>());
        }
        var signature = token[(token.LastIndexOf('.') + 1)..];
        var tampered = token[..(token.LastIndexOf('.') + 1)] + (signature[0] == 'A' ? 'B' : 'A') + signature[1..];
        using (var refused = await CallAsync(api, tampered))
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        var otherToken = (await server.LoginAsync(other, "bob", "bob-phone"))["accessToken"]!.GetValue<string>();
        using (var refused = await CallAsync(api, otherToken))
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        using (var none = await api.Http.GetAsync("/me"))
            Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
    }

    [Fact]
    public async Task An_expired_token_is_refused()
    {
        // Its own server: the clock moves a month ahead, and the API, on the real clock, would see later tokens as not yet valid.
        await using var own = new SqliteServer();
        await own.InitializeAsync();
        var network = await own.CreateNetworkAsync(secureMode: true);
        var serverKey = await own.GenerateServerKeyAsync(network);
        await using var api = await StartApiAsync(own, serverKey);
        var expiring = (await own.LoginAsync(network, "dave", "dave-phone", await own.MintAsync(serverKey, "dave")))["accessToken"]!.GetValue<string>();
        using (var live = await CallAsync(api, expiring))
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);

        // Expired by Gatehouse's clock; the API's own clock has not moved, so it is introspection that says so.
        own.Clock.Advance(TimeSpan.FromDays(31));
        await Task.Delay(Window + TimeSpan.FromMilliseconds(200));
        using var expired = await CallAsync(api, expiring);
        Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
    }

    [Fact]
    public async Task A_logged_out_banned_or_rebound_session_is_refused_within_the_window_and_a_key_rotation_needs_no_restart()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        await using var api = await StartApiAsync(serverKey);
        var loggedOut = await LoginAsync(network, serverKey, "alice", "alice-phone");
        var banned = await LoginAsync(network, serverKey, "carol", "carol-phone");
        var rebound = await LoginAsync(network, serverKey, "erin", "shared-tablet");
        foreach (var token in new[] { loggedOut, banned, rebound })
        {
            using var before = await CallAsync(api, token);
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        using (await server.LogoutAsync(loggedOut)) { }
        await using (var scope = server.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Users.Where(u => u.NetworkId == network.Id && u.UserId == "carol")
                .ExecuteUpdateAsync(s => s.SetProperty(u => u.IsGlobalBan, true));
        }
        await LoginAsync(network, serverKey, "frank", "shared-tablet");
        await Task.Delay(Window + TimeSpan.FromMilliseconds(200));
        foreach (var token in new[] { loggedOut, banned, rebound })
        {
            using var after = await CallAsync(api, token);
            Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        }

        // A new signing key: the API reads the keys again when a token names one it does not know.
        await server.Services.GetRequiredService<SigningKeys>().RotateAsync("test");
        var rotated = await LoginAsync(network, serverKey, "grace", "grace-phone");
        // The very first request with such a token is accepted, not only a later one.
        using var accepted = await CallAsync(api, rotated);
        Assert.True(accepted.StatusCode == HttpStatusCode.OK, accepted.Headers.WwwAuthenticate.ToString());
    }

    private sealed class RunningApi(WebApplication app, HttpClient http) : IAsyncDisposable
    {
        public HttpClient Http { get; } = http;

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await app.DisposeAsync();
        }
    }

    private Task<RunningApi> StartApiAsync(string serverKey) => StartApiAsync(server, serverKey);

    private static async Task<RunningApi> StartApiAsync(GatehouseServer gatehouse, string serverKey)
    {
        var app = ResourceApiApp.Build([], builder =>
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Gatehouse:Authority"] = gatehouse.Services.GetRequiredService<TokenIssuer>().Current,
                ["Gatehouse:ServerKey"] = serverKey,
                ["Gatehouse:RevocationCheckWindow"] = Window.ToString(),
                ["Gatehouse:KeyRefreshInterval"] = "00:00:01",
                ["Gatehouse:RequireHttpsMetadata"] = "false",
            });
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new RunningApi(app, new HttpClient { BaseAddress = new Uri(address) });
    }

    private async Task<string> LoginAsync(TestNetwork network, string serverKey, string userId, string deviceId) =>
        (await server.LoginAsync(network, userId, deviceId, await server.MintAsync(serverKey, userId)))["accessToken"]!.GetValue<string>();

    private static async Task<HttpResponseMessage> CallAsync(RunningApi api, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/me");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await api.Http.SendAsync(request);
    }
}
