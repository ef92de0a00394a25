using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>Each limit, made small for the test: the request past it gets 429, the envelope and Retry-After.</summary>
[Trait(Category.Name, Category.Slow)]
public sealed class RateLimitTests : IAsyncLifetime
{
    private readonly GatehouseServer _server = new();

    public async Task InitializeAsync()
    {
        _server.Settings["Gatehouse:RateLimits:SessionsPerAddressPerMinute"] = "5";
        _server.Settings["Gatehouse:RateLimits:AuthTokensPerServerKeyPerMinute"] = "3";
        _server.Settings["Gatehouse:RateLimits:AdminCallsPerTokenPerMinute"] = "3";
        _server.Settings["Gatehouse:RateLimits:ConsoleSignInsPerAddressPerMinute"] = "2";
        _server.Settings["Gatehouse:RateLimits:RefreshesPerSessionPerMinute"] = "2";
        await _server.InitializeAsync();
    }

    public Task DisposeAsync() => _server.DisposeAsync();

    [Fact]
    public async Task Sessions_and_refreshes_are_limited_per_client_address()
    {
        var network = await _server.CreateNetworkAsync();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 5; i++)
        {
            using var response = await _server.CreateSessionAsync(network, $"user-{i}", $"device-{i}");
            statuses.Add(response.StatusCode);
        }
        using var refused = await _server.RefreshAsync(network, "grt_anything");

        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        await AssertLimitedAsync(refused);
    }

    [Fact]
    public async Task Refreshes_are_limited_per_session()
    {
        var network = await _server.CreateNetworkAsync();
        var refreshToken = (await _server.LoginAsync(network, "refresher", "device-r"))["refreshToken"]!.GetValue<string>();
        for (var i = 0; i < 2; i++)
        {
            using var refreshed = await _server.RefreshAsync(network, refreshToken);
            Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
            refreshToken = System.Text.Json.Nodes.JsonNode.Parse(await refreshed.Content.ReadAsStringAsync())!["refreshToken"]!.GetValue<string>();
        }

        using var limited = await _server.RefreshAsync(network, refreshToken);

        await AssertLimitedAsync(limited);
        // The refused refresh did not spend the token: it still works once the window has passed.
        await using var scope = _server.Services.CreateAsyncScope();
        var stored = await scope.ServiceProvider.GetRequiredService<Storage.GatehouseDb>().RefreshTokens
            .SingleAsync(r => r.Digest == Tokens.Secrets.Digest(refreshToken));
        Assert.Null(stored.UsedAt);
    }

    [Fact]
    public async Task A_replayed_refresh_token_ends_its_session_even_once_the_sessions_refresh_limit_is_reached()
    {
        var network = await _server.CreateNetworkAsync();
        var login = await _server.LoginAsync(network, "replayed", "device-replayed");
        var stolen = login["refreshToken"]!.GetValue<string>();
        var refreshToken = stolen;
        for (var i = 0; i < 2; i++)
        {
            using var refreshed = await _server.RefreshAsync(network, refreshToken);
            Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
            refreshToken = System.Text.Json.Nodes.JsonNode.Parse(await refreshed.Content.ReadAsStringAsync())!["refreshToken"]!.GetValue<string>();
        }

        // The session's two refreshes a minute are spent: a replay of its first token is still a reuse, not a 429.
        using var replayed = await _server.RefreshAsync(network, stolen);

        Assert.Contains("already used", await Envelope.AssertUnauthorizedAsync(replayed), StringComparison.Ordinal);
        using var me = await _server.GetWithBearerAsync("/api/v3/users/me", login["accessToken"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
    }

    [Fact]
    public async Task Auth_tokens_are_limited_per_server_key_and_admin_calls_per_token()
    {
        var network = await _server.CreateNetworkAsync(secureMode: true);
        var serverKey = await _server.GenerateServerKeyAsync(network);
        var (adminToken, _) = await _server.GenerateAdminTokenAsync(await _server.CreateAdminAsync(network), network);
        for (var i = 0; i < 3; i++)
        {
            using var minted = await _server.MintV3Async(serverKey, "alice");
            Assert.Equal(HttpStatusCode.OK, minted.StatusCode);
            using var listed = await _server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", adminToken!);
            Assert.Equal(HttpStatusCode.OK, listed.StatusCode);
        }

        using var mintRefused = await _server.MintV3Async(serverKey, "alice");
        using var adminRefused = await _server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", adminToken!);
        var otherKey = await _server.GenerateServerKeyAsync(await _server.CreateNetworkAsync(secureMode: true));
        using var otherKeyStillServed = await _server.MintV3Async(otherKey, "alice");

        await AssertLimitedAsync(mintRefused);
        await AssertLimitedAsync(adminRefused);
        Assert.Equal(HttpStatusCode.OK, otherKeyStillServed.StatusCode);

        // Audited as what they are, the mint under its key's network, so the dashboard counts them apart from bad
        // credentials.
        await _server.FlushAuditAsync();
        await using var scope = _server.Services.CreateAsyncScope();
        var limited = await scope.ServiceProvider.GetRequiredService<Storage.GatehouseDb>().AuditEvents
            .Where(e => e.Kind == "request.rate_limited").ToListAsync();
        Assert.Contains(limited, e => e.NetworkId == network.Id && e.Detail == "limit=auth_token_mint" && e.Reason == "rate_limited");
        Assert.Contains(limited, e => e.NetworkId == null && e.Detail == "limit=admin_api");
    }

    [Fact]
    public async Task Console_sign_ins_are_limited_per_client_address()
    {
        var statuses = new List<int>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await _server.Http.PostAsync("/console/signin", new FormUrlEncodedContent(new Dictionary<string, string> { ["email"] = "x@example.com" }));
            statuses.Add((int)response.StatusCode);
        }

        Assert.NotEqual(429, statuses[0]);
        Assert.NotEqual(429, statuses[1]);
        Assert.Equal(429, statuses[2]);
    }

    private static async Task AssertLimitedAsync(HttpResponseMessage response)
    {
        Assert.Contains("Too many requests", await Envelope.AssertErrorAsync(response, HttpStatusCode.TooManyRequests, 429000), StringComparison.Ordinal);
        var retryAfter = int.Parse(response.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(retryAfter, 1, 60);
    }
}
