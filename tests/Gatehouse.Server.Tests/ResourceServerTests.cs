using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// A customer's own API trusting Gatehouse's tokens: the metadata that names the issuer and its keys (RFC 8414),
/// introspection by the network's backend (RFC 7662), and revocation by the app (RFC 7009), on each database.
/// </summary>
public abstract class ResourceServerTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    [SkippableFact]
    public async Task The_metadata_names_the_issuer_that_access_tokens_carry_its_keys_and_its_endpoints()
    {
        var issuer = server.Services.GetRequiredService<TokenIssuer>().Current;
        var metadata = await server.Http.GetFromJsonAsync<JsonObject>("/.well-known/oauth-authorization-server");
        var openId = await server.Http.GetFromJsonAsync<JsonObject>("/.well-known/openid-configuration");
        var network = await server.CreateNetworkAsync();
        var accessToken = (await server.LoginAsync(network, "alice", "device-a"))["accessToken"]!.GetValue<string>();

        Assert.Equal(metadata!.ToJsonString(), openId!.ToJsonString());
        Assert.Equal(issuer, metadata["issuer"]!.GetValue<string>());
        Assert.Equal(issuer, Payload(accessToken)["iss"]!.GetValue<string>());
        Assert.Equal(issuer + "/.well-known/jwks.json", metadata["jwks_uri"]!.GetValue<string>());
        Assert.Equal(issuer + "/oauth/introspect", metadata["introspection_endpoint"]!.GetValue<string>());
        Assert.Equal(issuer + "/oauth/revoke", metadata["revocation_endpoint"]!.GetValue<string>());
        Assert.Equal("ES256", metadata["access_token_signing_alg_values_supported"]![0]!.GetValue<string>());
        Assert.Equal(Payload(accessToken)["aud"]!.GetValue<string>(), metadata["access_token_audience"]!.GetValue<string>());
        if (server is SqliteServer)
        {
            // One node and no Gatehouse:PublicUrl: the address it listens on, where the keys really are.
            Assert.Equal(server.BaseAddress.ToString().TrimEnd('/'), issuer);
            using var jwks = await server.Http.GetAsync(new Uri(metadata["jwks_uri"]!.GetValue<string>()));
            Assert.Equal(HttpStatusCode.OK, jwks.StatusCode);
        }
    }

    [SkippableFact]
    public async Task Introspection_answers_active_with_whose_token_it_is_and_inactive_for_every_token_that_may_not_be_used()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var other = await server.CreateNetworkAsync(secureMode: true);
        var otherKey = await server.GenerateServerKeyAsync(other);
        var login = await LoginAsync(network, serverKey, "alice", "phone");
        var token = login["accessToken"]!.GetValue<string>();

        var active = await IntrospectAsync(serverKey, token);
        Assert.True(active["active"]!.GetValue<bool>());
        Assert.Equal("alice", active["sub"]!.GetValue<string>());
        Assert.Equal(network.Id, active["network_id"]!.GetValue<string>());
        Assert.Equal(Payload(token)["sid"]!.GetValue<string>(), active["session_id"]!.GetValue<string>());
        Assert.Equal(Payload(token)["exp"]!.GetValue<long>(), active["exp"]!.GetValue<long>());
        Assert.Equal(Payload(token)["iat"]!.GetValue<long>(), active["iat"]!.GetValue<long>());
        Assert.Equal("access_token", active["token_type"]!.GetValue<string>());
        Assert.Equal("signed-in", active["user_type"]!.GetValue<string>());

        // Another network's backend learns nothing about it; a tampered or unknown token is inactive too.
        Assert.Equal("""{"active":false}""", (await IntrospectAsync(otherKey, token)).ToJsonString());
        Assert.False((await IntrospectAsync(serverKey, token[..^4] + (token[^4..] == "AAAA" ? "BBBB" : "AAAA")))["active"]!.GetValue<bool>());
        Assert.False((await IntrospectAsync(serverKey, "not a token"))["active"]!.GetValue<bool>());
        Assert.False((await IntrospectAsync(serverKey, login["refreshToken"]!.GetValue<string>()))["active"]!.GetValue<bool>());

        // Logged out, banned, rebound to another user's login on the same device: inactive at once.
        var loggedOut = (await LoginAsync(network, serverKey, "bob", "bob-phone"))["accessToken"]!.GetValue<string>();
        using (await server.LogoutAsync(loggedOut)) { }
        Assert.False((await IntrospectAsync(serverKey, loggedOut))["active"]!.GetValue<bool>());
        var banned = (await LoginAsync(network, serverKey, "carol", "carol-phone"))["accessToken"]!.GetValue<string>();
        await using (var scope = server.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Users.Where(u => u.NetworkId == network.Id && u.UserId == "carol")
                .ExecuteUpdateAsync(s => s.SetProperty(u => u.IsGlobalBan, true));
        }
        Assert.False((await IntrospectAsync(serverKey, banned))["active"]!.GetValue<bool>());
        await LoginAsync(network, serverKey, "mallory", "phone");
        Assert.False((await IntrospectAsync(serverKey, token))["active"]!.GetValue<bool>());

        // Expired: the same answer once the token's time is up.
        var expiring = (await LoginAsync(network, serverKey, "dave", "dave-phone"))["accessToken"]!.GetValue<string>();
        Assert.True((await IntrospectAsync(serverKey, expiring))["active"]!.GetValue<bool>());
        server.Clock.Advance(TimeSpan.FromDays(31));
        Assert.False((await IntrospectAsync(serverKey, expiring))["active"]!.GetValue<bool>());
    }

    [SkippableFact]
    public async Task Introspection_needs_the_server_key_and_a_form_with_one_token_and_is_not_offered_to_browsers()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);

        using (var anonymous = await server.Http.PostAsync("/oauth/introspect", Form(("token", "x"))))
            await Envelope.AssertUnauthorizedAsync(anonymous);
        using (var json = await PostAsync("/oauth/introspect", new StringContent("""{"token":"x"}""", Encoding.UTF8, "application/json"), serverKey: serverKey))
            await Envelope.AssertErrorAsync(json, HttpStatusCode.BadRequest, 400000);
        using (var none = await PostAsync("/oauth/introspect", Form(), serverKey: serverKey))
            await Envelope.AssertErrorAsync(none, HttpStatusCode.BadRequest, 400000);
        using (var twice = await PostAsync("/oauth/introspect", Form(("token", "a"), ("token", "b")), serverKey: serverKey))
            await Envelope.AssertErrorAsync(twice, HttpStatusCode.BadRequest, 400000);
        using (var huge = await PostAsync("/oauth/introspect", Form(("token", new string('a', 5000))), serverKey: serverKey))
            await Envelope.AssertErrorAsync(huge, HttpStatusCode.BadRequest, 400000);

        // Another spelling of the path reaches the same endpoint, with the same credential check.
        using (var spelled = await server.Http.PostAsync("/OAuth/Introspect/", Form(("token", "x"))))
            await Envelope.AssertUnauthorizedAsync(spelled);

        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/oauth/introspect");
        preflight.Headers.Add("Origin", "https://app.example.com");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        using var answer = await server.Http.SendAsync(preflight);
        Assert.False(answer.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [SkippableFact]
    public async Task An_app_revokes_an_access_or_refresh_token_and_its_session_ends_while_unknown_tokens_change_nothing()
    {
        var network = await server.CreateNetworkAsync();
        var other = await server.CreateNetworkAsync();
        var byAccess = await server.LoginAsync(network, "alice", "device-a");
        var byRefresh = await server.LoginAsync(network, "bob", "device-b");
        var kept = await server.LoginAsync(network, "carol", "device-c");

        using (var revoked = await PostAsync("/oauth/revoke", Form(("token", byAccess["accessToken"]!.GetValue<string>())), apiKey: network.ApiKey))
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        using (var me = await server.GetWithBearerAsync("/api/v3/users/me", byAccess["accessToken"]!.GetValue<string>()))
            await Envelope.AssertUnauthorizedAsync(me);
        using (var refresh = await server.RefreshAsync(network, byAccess["refreshToken"]!.GetValue<string>()))
            Assert.NotEqual(HttpStatusCode.OK, refresh.StatusCode);

        var byRefreshForm = Form(("token", byRefresh["refreshToken"]!.GetValue<string>()), ("token_type_hint", "refresh_token"));
        using (var revoked = await PostAsync("/oauth/revoke", byRefreshForm, apiKey: network.ApiKey))
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        using (var me = await server.GetWithBearerAsync("/api/v3/users/me", byRefresh["accessToken"]!.GetValue<string>()))
            await Envelope.AssertUnauthorizedAsync(me);

        // Unknown tokens and another network's app: 200 all the same, and nothing ended.
        foreach (var (token, apiKey) in new[] { ("grt_unknown", network.ApiKey), ("garbage", network.ApiKey),
                     (kept["accessToken"]!.GetValue<string>(), other.ApiKey), (kept["refreshToken"]!.GetValue<string>(), other.ApiKey) })
        {
            using var answer = await PostAsync("/oauth/revoke", Form(("token", token)), apiKey: apiKey);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        }
        using (var me = await server.GetWithBearerAsync("/api/v3/users/me", kept["accessToken"]!.GetValue<string>()))
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);

        // From the app's own pages, like the sessions.
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/oauth/revoke");
        preflight.Headers.Add("Origin", "https://app.example.com");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "x-api-key");
        using var cors = await server.Http.SendAsync(preflight);
        Assert.True(cors.Headers.Contains("Access-Control-Allow-Origin"));

        await server.FlushAuditAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var ended = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Sessions
            .Where(s => s.NetworkId == network.Id && s.RevokedReason == "revoked").CountAsync();
        Assert.Equal(2, ended);
    }

    private async Task<JsonNode> LoginAsync(TestNetwork network, string serverKey, string userId, string deviceId) =>
        await server.LoginAsync(network, userId, deviceId, await server.MintAsync(serverKey, userId));

    private async Task<JsonObject> IntrospectAsync(string serverKey, string token)
    {
        using var response = await PostAsync("/oauth/introspect", Form(("token", token)), serverKey: serverKey);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }

    private async Task<HttpResponseMessage> PostAsync(string path, HttpContent content, string? serverKey = null, string? apiKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        if (serverKey is not null)
            request.Headers.Add("x-server-key", serverKey);
        if (apiKey is not null)
            request.Headers.Add("x-api-key", apiKey);
        return await server.Http.SendAsync(request);
    }

    private static FormUrlEncodedContent Form(params (string Name, string Value)[] fields) =>
        new(fields.Select(f => new KeyValuePair<string, string>(f.Name, f.Value)));

    private static JsonObject Payload(string jwt) =>
        JsonNode.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(jwt.Split('.')[1]))!.AsObject();
}

[Trait(Category.Name, Category.Fast)]
public sealed class ResourceServerTestsOnSqlite(SqliteServer server) : ResourceServerTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class ResourceServerTestsOnPostgres(PostgresServer server) : ResourceServerTests<PostgresServer>(server);
