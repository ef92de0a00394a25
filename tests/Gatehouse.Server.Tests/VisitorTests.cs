using System.Text.Json.Nodes;
using Gatehouse.Client;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Gatehouse.Server.Tests;

/// <summary>Visitors, bots and sessions a backend opens (the 7.x SDK line), at the API, on each database.</summary>
public abstract class VisitorTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    private static async Task<JsonNode> BodyAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonNode.Parse(text)!;
    }

    private AuthTokenClient Backend(string serverKey, string? visitorSecret = null) =>
        new(server.Http, new AuthTokenClientOptions { Endpoint = server.BaseAddress, ServerKey = serverKey, VisitorSecret = visitorSecret });

    [SkippableFact]
    public async Task Visitors_and_bots_are_refused_until_the_network_allows_them_with_their_own_codes()
    {
        var network = await server.CreateNetworkAsync();

        using var visitor = await server.CreateVisitorSessionAsync(network, "device-1");
        using var bot = await server.CreateVisitorSessionAsync(network, "device-1", "bot");

        await Envelope.AssertErrorAsync(visitor, HttpStatusCode.Forbidden, 488999);
        await Envelope.AssertErrorAsync(bot, HttpStatusCode.Forbidden, 488998);
        await using var scope = server.Services.CreateAsyncScope();
        Assert.False(await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Users.AnyAsync(u => u.NetworkId == network.Id));
    }

    [SkippableFact]
    public async Task A_visitor_gets_one_stable_user_per_device_a_session_like_a_login_and_its_type_everywhere()
    {
        var network = await server.CreateNetworkAsync();
        await server.SetAnonymousModeAsync(network, UserKind.Visitor, true);

        var first = await BodyAsync(await server.CreateVisitorSessionAsync(network, "device-1"));
        var again = await BodyAsync(await server.CreateVisitorSessionAsync(network, "device-1"));
        var other = await BodyAsync(await server.CreateVisitorSessionAsync(network, "device-2"));

        Assert.Equal("visitor", first["userType"]!.GetValue<string>());
        var userId = first["users"]![0]!["userId"]!.GetValue<string>();
        Assert.StartsWith("visitor-", userId, StringComparison.Ordinal);
        Assert.Equal(userId, again["users"]![0]!["userId"]!.GetValue<string>());
        Assert.NotEqual(userId, other["users"]![0]!["userId"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(first["refreshToken"]!.GetValue<string>()));
        var accessToken = first["accessToken"]!.GetValue<string>();
        var claims = new JsonWebToken(accessToken);
        Assert.Equal("visitor", claims.GetPayloadValue<string>("user_type"));
        using var current = await server.GetWithBearerAsync("/api/v3/sessions", accessToken);
        var session = await BodyAsync(current);
        Assert.Equal((userId, "visitor", network.Id), (session["userId"]!.GetValue<string>(), session["userType"]!.GetValue<string>(), session["networkId"]!.GetValue<string>()));
        using var me = await server.GetWithBearerAsync($"/api/v3/users/{userId}", accessToken);
        Assert.Equal("visitor", (await BodyAsync(me))["users"]![0]!["userType"]!.GetValue<string>());
    }

    [SkippableFact]
    public async Task Every_session_answer_and_access_token_names_the_user_type_and_the_user_the_7x_SDKs_read()
    {
        var network = await server.CreateNetworkAsync();

        var login = await server.LoginAsync(network, "alice", "device-a");
        using var refresh = await server.RefreshAsync(network, login["refreshToken"]!.GetValue<string>());
        var refreshed = await BodyAsync(refresh);

        Assert.Equal("signed-in", login["userType"]!.GetValue<string>());
        Assert.Equal("signed-in", refreshed["userType"]!.GetValue<string>());
        var token = new JsonWebToken(login["accessToken"]!.GetValue<string>());
        var user = JsonNode.Parse(token.GetPayloadValue<System.Text.Json.JsonElement>("user").GetRawText())!;
        Assert.Equal(("alice", "alice", network.Id), (user["userId"]!.GetValue<string>(), user["publicUserId"]!.GetValue<string>(), user["networkId"]!.GetValue<string>()));
        Assert.Equal(3, user.AsObject().Count);
        Assert.Equal("signed-in", token.GetPayloadValue<string>("user_type"));
    }

    [SkippableFact]
    public async Task A_bot_is_its_own_kind_and_neither_kind_can_be_signed_in_minted_for_or_opened_by_a_backend_as_a_user()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        await server.SetAnonymousModeAsync(network, UserKind.Bot, true);
        var bot = await BodyAsync(await server.CreateVisitorSessionAsync(network, "crawler-1", "bot"));
        var botId = bot["users"]![0]!["userId"]!.GetValue<string>();
        var serverKey = await server.GenerateServerKeyAsync(network);

        using var asUser = await server.CreateSessionAsync(network, botId, "device-x", await server.MintAsync(serverKey, botId), "Mallory");
        var backend = await Assert.ThrowsAsync<GatehouseException>(() => Backend(serverKey).OpenSessionAsync(botId));

        Assert.Equal("bot", bot["userType"]!.GetValue<string>());
        await Envelope.AssertErrorAsync(asUser, HttpStatusCode.Forbidden, 488998);
        Assert.Equal(488998, backend.Code);
        await using var scope = server.Services.CreateAsyncScope();
        var stored = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Users.SingleAsync(u => u.NetworkId == network.Id);
        Assert.Equal((UserKind.Bot, null), (stored.Kind, stored.DisplayName));
    }

    [SkippableFact]
    public async Task In_secure_mode_a_visitor_needs_a_fresh_signature_for_its_own_device_from_a_current_visitor_secret()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        await server.SetAnonymousModeAsync(network, UserKind.Visitor, true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        using var noSecretYet = await server.CreateVisitorSessionAsync(network, "device-1", authSignature: new string('0', 64), authSignatureExpiresAt: "2030-01-01T00:00:00Z");
        var secret = await server.GenerateVisitorSecretAsync(network);
        var backend = Backend(serverKey, secret);
        var now = server.Clock.GetUtcNow();
        var good = backend.SignVisitor("device-1", now.AddHours(1));
        var tooFar = backend.SignVisitor("device-1", now.AddHours(25));
        var byOtherSecret = Backend(serverKey, "gvs_not-this-networks").SignVisitor("device-1", now.AddHours(1));

        using var unsigned = await server.CreateVisitorSessionAsync(network, "device-1");
        using var otherDevice = await server.CreateVisitorSessionAsync(network, "device-2", authSignature: good.AuthSignature, authSignatureExpiresAt: good.AuthSignatureExpiresAt);
        using var wrongSecret = await server.CreateVisitorSessionAsync(network, "device-1", authSignature: byOtherSecret.AuthSignature, authSignatureExpiresAt: byOtherSecret.AuthSignatureExpiresAt);
        using var ahead = await server.CreateVisitorSessionAsync(network, "device-1", authSignature: tooFar.AuthSignature, authSignatureExpiresAt: tooFar.AuthSignatureExpiresAt);
        using var signed = await server.CreateVisitorSessionAsync(network, "device-1", authSignature: good.AuthSignature, authSignatureExpiresAt: good.AuthSignatureExpiresAt);
        using var reused = await server.CreateVisitorSessionAsync(network, "device-1", authSignature: good.AuthSignature, authSignatureExpiresAt: good.AuthSignatureExpiresAt);
        server.Clock.Advance(TimeSpan.FromHours(1));
        using var replayedAfterExpiry = await server.CreateVisitorSessionAsync(network, "device-1", authSignature: good.AuthSignature, authSignatureExpiresAt: good.AuthSignatureExpiresAt);

        Assert.Contains("no visitor secret", await Envelope.AssertUnauthorizedAsync(noSecretYet), StringComparison.Ordinal);
        Assert.Contains("VisitorSecret is required", Assert.Throws<InvalidOperationException>(() => Backend(serverKey).SignVisitor("device-1", now.AddHours(1))).Message,
            StringComparison.Ordinal);
        Assert.Contains("required", await Envelope.AssertUnauthorizedAsync(unsigned), StringComparison.Ordinal);
        Assert.Contains("does not match", await Envelope.AssertUnauthorizedAsync(otherDevice), StringComparison.Ordinal);
        Assert.Contains("does not match", await Envelope.AssertUnauthorizedAsync(wrongSecret), StringComparison.Ordinal);
        Assert.Contains("24 hours ahead", await Envelope.AssertUnauthorizedAsync(ahead), StringComparison.Ordinal);
        Assert.Equal("visitor", (await BodyAsync(signed))["userType"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, reused.StatusCode);
        Assert.Contains("expired", await Envelope.AssertUnauthorizedAsync(replayedAfterExpiry), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_replaced_visitor_secret_signs_until_its_grace_ends_and_the_secret_is_stored_only_encrypted()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        await server.SetAnonymousModeAsync(network, UserKind.Visitor, true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var old = await server.GenerateVisitorSecretAsync(network);
        var current = await server.GenerateVisitorSecretAsync(network);
        var now = server.Clock.GetUtcNow();
        var byOld = Backend(serverKey, old).SignVisitor("device-1", now.AddHours(3));

        using var inGrace = await server.CreateVisitorSessionAsync(network, "device-1", authSignature: byOld.AuthSignature, authSignatureExpiresAt: byOld.AuthSignatureExpiresAt);
        server.Clock.Advance(TimeSpan.FromHours(1) + TimeSpan.FromSeconds(1));
        using var afterGrace = await server.CreateVisitorSessionAsync(network, "device-1", authSignature: byOld.AuthSignature, authSignatureExpiresAt: byOld.AuthSignatureExpiresAt);
        var byCurrent = Backend(serverKey, current).SignVisitor("device-1", server.Clock.GetUtcNow().AddHours(1));
        using var byNewest = await server.CreateVisitorSessionAsync(network, "device-1", authSignature: byCurrent.AuthSignature, authSignatureExpiresAt: byCurrent.AuthSignatureExpiresAt);

        Assert.Equal(HttpStatusCode.OK, inGrace.StatusCode);
        await Envelope.AssertUnauthorizedAsync(afterGrace);
        Assert.Equal(HttpStatusCode.OK, byNewest.StatusCode);
        await using var scope = server.Services.CreateAsyncScope();
        var stored = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().VisitorSecrets.Where(s => s.NetworkId == network.Id).ToListAsync();
        Assert.Equal(2, stored.Count);
        Assert.All(stored, s => Assert.DoesNotContain(s.ProtectedSecret, new[] { old, current, old[4..], current[4..] }));
        Assert.All(stored, s => Assert.False(s.ProtectedSecret.Contains(current[4..], StringComparison.Ordinal)));
    }

    [SkippableFact]
    public async Task A_backend_opens_a_session_for_its_user_whose_access_token_alone_is_enough_and_carries_no_refresh_token()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);

        var session = await Backend(serverKey).OpenSessionAsync("carol", "Carol");
        using var raw = await server.PostJsonAsync("/api/v5/server/sessions", new { userId = "carol" }, serverKey: serverKey);
        using var withApiKey = await server.PostJsonAsync("/api/v5/server/sessions", new { userId = "carol" }, apiKey: network.ApiKey);
        using var sessions = await server.GetWithBearerAsync("/api/v3/sessions", session.AccessToken);
        using var user = await server.GetWithBearerAsync("/api/v3/users/carol", session.AccessToken);
        using var stranger = await server.GetWithBearerAsync("/api/v3/users/nobody", session.AccessToken);

        // A client cannot sign the backend's session out by logging in on its default device.
        var backendDevice = "backend:" + Tokens.Secrets.Digest("carol")[..32];
        using var onBackendDevice = await server.CreateSessionAsync(network, "mallory", backendDevice, await server.MintAsync(serverKey, "mallory"));
        await Envelope.AssertBadRequestAsync(onBackendDevice);
        await server.SetAnonymousModeAsync(network, UserKind.Bot, true);
        using var botOnBackendDevice = await server.CreateVisitorSessionAsync(network, backendDevice, "bot");
        await Envelope.AssertBadRequestAsync(botOnBackendDevice);
        using (var stillLive = await server.GetWithBearerAsync("/api/v3/sessions", session.AccessToken))
            Assert.Equal(HttpStatusCode.OK, stillLive.StatusCode);

        Assert.Equal(("carol", "signed-in"), (session.UserId, session.UserType));
        Assert.Null((await BodyAsync(raw))["refreshToken"]);
        await Envelope.AssertUnauthorizedAsync(withApiKey);
        Assert.Equal("carol", (await BodyAsync(sessions))["userId"]!.GetValue<string>());
        var users = await BodyAsync(user);
        Assert.Equal(("carol", "Carol"), (users["users"]![0]!["userId"]!.GetValue<string>(), users["users"]![0]!["displayName"]!.GetValue<string>()));
        await Envelope.AssertErrorAsync(stranger, HttpStatusCode.NotFound, 400400);
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var opened = await db.Sessions.Where(s => s.NetworkId == network.Id).ToListAsync();
        Assert.Equal(2, opened.Count);
        Assert.All(opened, s => Assert.True(s.OpenedWithAuthToken));
        Assert.False(await db.RefreshTokens.AnyAsync(r => opened.Select(s => s.Id).Contains(r.SessionId)));
    }

    [SkippableFact]
    public async Task A_userId_with_a_slash_or_a_percent_sign_names_that_user_and_no_other()
    {
        var network = await server.CreateNetworkAsync();
        await server.LoginAsync(network, "a/b", "device-1");
        await server.LoginAsync(network, "a%2Fb", "device-2");
        var token = (await server.LoginAsync(network, "reader", "device-3"))["accessToken"]!.GetValue<string>();

        using var slash = await server.GetWithBearerAsync("/api/v3/users/a%2Fb", token);
        using var percent = await server.GetWithBearerAsync("/api/v3/users/a%252Fb", token);

        Assert.Equal("a/b", (await BodyAsync(slash))["users"]![0]!["userId"]!.GetValue<string>());
        Assert.Equal("a%2Fb", (await BodyAsync(percent))["users"]![0]!["userId"]!.GetValue<string>());
    }

    [SkippableFact]
    public async Task No_visitor_session_outlives_turning_visitors_off_even_one_whose_login_raced_the_switch()
    {
        var network = await server.CreateNetworkAsync();
        await server.SetAnonymousModeAsync(network, UserKind.Visitor, true);
        var refreshTokens = new System.Collections.Concurrent.ConcurrentBag<string>();
        using var stop = new CancellationTokenSource();
        var logins = Enumerable.Range(0, 4).Select(worker => Task.Run(async () =>
        {
            for (var i = 0; i < 60 && !stop.IsCancellationRequested; i++)
            {
                using var response = await server.CreateVisitorSessionAsync(network, $"device-{worker}-{i}");
                if (response.StatusCode == HttpStatusCode.OK)
                    refreshTokens.Add(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["refreshToken"]!.GetValue<string>());
            }
        })).ToList();
        while (refreshTokens.Count < 8 && !logins.All(l => l.IsCompleted))
            await Task.Delay(5);

        await server.SetAnonymousModeAsync(network, UserKind.Visitor, false);
        await stop.CancelAsync();
        await Task.WhenAll(logins);

        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        Assert.False(await db.Sessions.AnyAsync(s => s.NetworkId == network.Id && s.RevokedAt == null));
        Assert.NotEmpty(refreshTokens);
        foreach (var refreshToken in refreshTokens.Take(3))
        {
            using var refreshed = await server.RefreshAsync(network, refreshToken);
            Assert.NotEqual(HttpStatusCode.OK, refreshed.StatusCode);
        }
    }

    [SkippableFact]
    public async Task A_user_of_another_network_is_not_found_with_a_valid_token()
    {
        var mine = await server.CreateNetworkAsync();
        var theirs = await server.CreateNetworkAsync();
        await server.LoginAsync(theirs, "dave", "device-d");
        var token = (await server.LoginAsync(mine, "erin", "device-e"))["accessToken"]!.GetValue<string>();

        using var across = await server.GetWithBearerAsync("/api/v3/users/dave", token);
        using var trailingSlashAndCase = await server.GetWithBearerAsync("/API/V3/users/erin/", token);

        await Envelope.AssertErrorAsync(across, HttpStatusCode.NotFound, 400400);
        Assert.Equal(HttpStatusCode.OK, trailingSlashAndCase.StatusCode);
    }

    [SkippableFact]
    public async Task The_admin_search_leaves_visitors_and_bots_out_unless_asked_for()
    {
        var network = await server.CreateNetworkAsync();
        await server.SetAnonymousModeAsync(network, UserKind.Visitor, true);
        await server.SetAnonymousModeAsync(network, UserKind.Bot, true);
        await server.LoginAsync(network, "frank", "device-f");
        await BodyAsync(await server.CreateVisitorSessionAsync(network, "device-v"));
        await BodyAsync(await server.CreateVisitorSessionAsync(network, "device-b", "bot"));
        var (adminToken, _) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);

        async Task<string[]> ListAsync(string query)
        {
            using var response = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users" + query, adminToken!);
            return (await BodyAsync(response))["users"]!.AsArray().Select(u => u!["userType"]!.GetValue<string>()).Order(StringComparer.Ordinal).ToArray();
        }

        Assert.Equal(["signed-in"], await ListAsync(""));
        Assert.Equal(["visitor"], await ListAsync("?userType=visitor"));
        Assert.Equal(["bot"], await ListAsync("?userType=bot"));
        Assert.Equal(["bot", "signed-in", "visitor"], await ListAsync("?userType=all"));
        using var wrong = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users?userType=robot", adminToken!);
        await Envelope.AssertBadRequestAsync(wrong);
    }

    [SkippableFact]
    public async Task Turning_visitor_mode_off_ends_visitors_sessions_and_leaves_everyone_elses()
    {
        var network = await server.CreateNetworkAsync();
        await server.SetAnonymousModeAsync(network, UserKind.Visitor, true);
        await server.SetAnonymousModeAsync(network, UserKind.Bot, true);
        var visitor = (await BodyAsync(await server.CreateVisitorSessionAsync(network, "device-v")))["accessToken"]!.GetValue<string>();
        var bot = (await BodyAsync(await server.CreateVisitorSessionAsync(network, "device-b", "bot")))["accessToken"]!.GetValue<string>();
        var user = (await server.LoginAsync(network, "gina", "device-g"))["accessToken"]!.GetValue<string>();

        await server.SetAnonymousModeAsync(network, UserKind.Visitor, false);

        using var visitorNow = await server.GetWithBearerAsync("/api/v3/users/me", visitor);
        using var botNow = await server.GetWithBearerAsync("/api/v3/users/me", bot);
        using var userNow = await server.GetWithBearerAsync("/api/v3/users/me", user);
        using var newVisitor = await server.CreateVisitorSessionAsync(network, "device-v");
        await Envelope.AssertUnauthorizedAsync(visitorNow);
        Assert.Equal(HttpStatusCode.OK, botNow.StatusCode);
        Assert.Equal(HttpStatusCode.OK, userNow.StatusCode);
        await Envelope.AssertErrorAsync(newVisitor, HttpStatusCode.Forbidden, 488999);
    }

    [SkippableFact]
    public async Task The_visitor_path_is_the_same_endpoint_in_any_case_and_with_a_trailing_slash()
    {
        var network = await server.CreateNetworkAsync();

        using var shouted = await server.PostJsonAsync("/API/V5/SESSIONS/VISITOR/", new { deviceId = "device-1" }, network.ApiKey);

        await Envelope.AssertErrorAsync(shouted, HttpStatusCode.Forbidden, 488999);
    }
}

[Trait(Category.Name, Category.Fast)]
public sealed class VisitorTestsOnSqlite(SqliteServer server) : VisitorTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class VisitorTestsOnPostgres(PostgresServer server) : VisitorTests<PostgresServer>(server);
