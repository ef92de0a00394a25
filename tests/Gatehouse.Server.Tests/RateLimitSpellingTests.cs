using System.Collections.Concurrent;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Http.Features;

namespace Gatehouse.Server.Tests;

/// <summary>
/// Every limited endpoint, reached through another spelling of its path once its limit is spent through the plain
/// one: routing takes the spelling to the same endpoint, so the limit must follow. The raw request targets the
/// server saw are checked too, so a client that normalised the spelling away could not make the test pass.
/// </summary>
public abstract class RateLimitSpellingTests : IAsyncLifetime
{
    private readonly ConcurrentQueue<string> _targets = new();
    private readonly GatehouseServer _server;

    protected RateLimitSpellingTests(bool onPostgres)
    {
        Action<WebApplicationBuilder> record = builder => builder.Services.AddSingleton<IStartupFilter>(new RecordRawTargets(_targets));
        _server = onPostgres ? new PostgresServer { Configure = record } : new GatehouseServer { Configure = record };
        _server.Settings["Gatehouse:RateLimits:SessionsPerApiKeyPerMinute"] = "2";
        _server.Settings["Gatehouse:RateLimits:SessionsPerAddressPerMinute"] = "1000";
        _server.Settings["Gatehouse:RateLimits:AuthTokensPerServerKeyPerMinute"] = "2";
        _server.Settings["Gatehouse:RateLimits:ConsoleSignInsPerAddressPerMinute"] = "2";
    }

    public Task InitializeAsync() => _server.InitializeAsync();

    public Task DisposeAsync() => _server.DisposeAsync();

    public static TheoryData<string> Spellings => new() { "trailing slash", "other case", "percent-encoded", "all three" };

    [SkippableTheory]
    [MemberData(nameof(Spellings))]
    public async Task A_limited_endpoint_is_limited_whatever_the_spelling_of_its_path(string spelling)
    {
        var refreshes = await _server.CreateNetworkAsync();
        var secure = await _server.CreateNetworkAsync(secureMode: true);
        var serverKeyV3 = await _server.GenerateServerKeyAsync(secure);
        var serverKeyV4 = await _server.GenerateServerKeyAsync(await _server.CreateNetworkAsync(secureMode: true));

        foreach (var version in new[] { "v3", "v4", "v5" })
        {
            var network = await _server.CreateNetworkAsync();
            for (var i = 0; i < 2; i++)
                await _server.LoginAsync(network, $"user-{i}", $"device-{i}");
            using var login = await SendAsync(HttpMethod.Post, Spell($"/api/{version}/sessions", spelling), network.ApiKey,
                new { userId = "late", deviceId = "device-late" });
            await AssertLimitedAsync(login, $"/api/{version}/sessions");
        }

        foreach (var kind in new[] { "visitor", "bot" })
        {
            // Counted before the network's switch is read: a refused visitor spends the minute's allowance too.
            var network = await _server.CreateNetworkAsync();
            for (var i = 0; i < 2; i++)
            {
                using var refused = await _server.CreateVisitorSessionAsync(network, $"device-{i}", kind);
                Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            }
            using var late = await SendAsync(HttpMethod.Post, Spell($"/api/v5/sessions/{kind}", spelling), network.ApiKey, new { deviceId = "device-late" });
            await AssertLimitedAsync(late, $"/api/v5/sessions/{kind}");
        }

        var backendKey = await _server.GenerateServerKeyAsync(await _server.CreateNetworkAsync(secureMode: true));
        for (var i = 0; i < 2; i++)
        {
            using var opened = await _server.PostJsonAsync("/api/v5/server/sessions", new { userId = "alice" }, serverKey: backendKey);
            Assert.Equal(HttpStatusCode.OK, opened.StatusCode);
        }
        using (var backendSession = await SendAsync(HttpMethod.Post, Spell("/api/v5/server/sessions", spelling), null, new { userId = "alice" }, backendKey))
            await AssertLimitedAsync(backendSession, "/api/v5/server/sessions");

        var refreshToken = (await _server.LoginAsync(refreshes, "refresher", "device-r"))["refreshToken"]!.GetValue<string>();
        using (var refreshed = await _server.RefreshAsync(refreshes, refreshToken))
            Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        using (var refresh = await SendAsync(HttpMethod.Post, Spell("/api/v4/sessions/refresh", spelling), refreshes.ApiKey, new { refreshToken = "grt_x" }))
            await AssertLimitedAsync(refresh, "/api/v4/sessions/refresh");

        for (var i = 0; i < 2; i++)
            await _server.MintAsync(serverKeyV3, "alice");
        using (var mintV3 = await SendAsync(HttpMethod.Get, Spell("/api/v3/authentication/token", spelling) + "?userId=alice", null, null, serverKeyV3))
            await AssertLimitedAsync(mintV3, "/api/v3/authentication/token");
        for (var i = 0; i < 2; i++)
            await _server.MintAsync(serverKeyV4, "alice");
        using (var mintV4 = await SendAsync(HttpMethod.Post, Spell("/api/v4/authentication/token", spelling), null, new { userId = "alice" }, serverKeyV4))
            await AssertLimitedAsync(mintV4, "/api/v4/authentication/token");

        for (var i = 0; i < 2; i++)
        {
            using var signIn = await _server.Http.PostAsync("/console/signin", SignInForm());
            Assert.NotEqual(HttpStatusCode.TooManyRequests, signIn.StatusCode);
        }
        using (var signIn = await _server.Http.PostAsync(Verbatim(Spell("/console/signin", spelling)), SignInForm()))
            await AssertLimitedAsync(signIn, "/console/signin");

        Assert.Contains(Spell("/api/v4/sessions/refresh", spelling), _targets);
        Assert.Contains(Spell("/console/signin", spelling), _targets);
    }

    /// <summary>The same path as routing reads it, spelled otherwise: the last segment's first letter carries the change.</summary>
    private static string Spell(string path, string spelling)
    {
        var cut = path.LastIndexOf('/') + 1;
        string Encoded(string p) => p[..cut] + $"%{(int)p[cut]:X2}" + p[(cut + 1)..];
        return spelling switch
        {
            "trailing slash" => path + "/",
            "other case" => path.ToUpperInvariant(),
            "percent-encoded" => Encoded(path),
            _ => Encoded(path.ToUpperInvariant()) + "/",
        };
    }

    /// <summary>The path exactly as written: System.Uri would otherwise decode %73 back to "s" before sending.</summary>
    private Uri Verbatim(string path) =>
        new(new Uri(_server.BaseAddress, "/").ToString().TrimEnd('/') + path, new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true });

    private static FormUrlEncodedContent SignInForm() => new(new Dictionary<string, string> { ["email"] = "x@example.com", ["password"] = "wrong" });

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? apiKey, object? body, string? serverKey = null)
    {
        using var request = new HttpRequestMessage(method, Verbatim(path));
        if (body is not null)
            request.Content = JsonContent.Create(body);
        if (apiKey is not null)
            request.Headers.Add("x-api-key", apiKey);
        if (serverKey is not null)
            request.Headers.Add("x-server-key", serverKey);
        return await _server.Http.SendAsync(request);
    }

    private static async Task AssertLimitedAsync(HttpResponseMessage response, string endpoint)
    {
        Assert.True(response.StatusCode == HttpStatusCode.TooManyRequests,
            $"{response.RequestMessage!.RequestUri!.PathAndQuery} (the endpoint {endpoint}) answered {(int)response.StatusCode} past its limit");
        await Envelope.AssertErrorAsync(response, HttpStatusCode.TooManyRequests, 429000);
        Assert.InRange(int.Parse(response.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture), 1, 60);
    }

    private sealed class RecordRawTargets(ConcurrentQueue<string> targets) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((http, nextMiddleware) =>
            {
                targets.Enqueue(http.Features.Get<IHttpRequestFeature>()!.RawTarget);
                return nextMiddleware(http);
            });
            next(app);
        };
    }
}

[Trait(Category.Name, Category.Slow)]
public sealed class RateLimitSpellingTestsOnSqlite() : RateLimitSpellingTests(onPostgres: false);

[Trait(Category.Name, Category.Postgres)]
public sealed class RateLimitSpellingTestsOnPostgres() : RateLimitSpellingTests(onPostgres: true);
