using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Gatehouse.Server.Tokens;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Server.Tests;

public abstract class SecureModeTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    protected TServer Server => server;

    [SkippableFact]
    public async Task A_token_minted_with_the_v3_endpoint_opens_a_session()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);

        using var minted = await server.MintV3Async(serverKey, "alice");
        Assert.Equal(HttpStatusCode.OK, minted.StatusCode);
        Assert.Equal("application/json", minted.Content.Headers.ContentType?.MediaType);
        var authToken = (await minted.Content.ReadFromJsonAsync<string>())!;

        var session = await server.LoginAsync(network, "alice", "device-a", authToken);
        Assert.NotEqual(authToken, session["accessToken"]!.GetValue<string>());
    }

    [SkippableFact]
    public async Task A_token_minted_with_the_v4_endpoint_opens_a_session_and_says_when_it_expires()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);

        using var minted = await server.PostJsonAsync("/api/v4/authentication/token", new { userId = "bob" }, serverKey: serverKey);
        var body = JsonNode.Parse(await minted.Content.ReadAsStringAsync())!;

        Assert.Equal(HttpStatusCode.OK, minted.StatusCode);
        var expiresAt = DateTimeOffset.Parse(body["expiresAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(server.Clock.GetUtcNow().AddMinutes(10), expiresAt, TimeSpan.FromMilliseconds(1));
        await server.LoginAsync(network, "bob", "device-b", body["authToken"]!.GetValue<string>());
    }

    [SkippableFact]
    public async Task Secure_mode_refuses_a_login_without_an_auth_token()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);

        using var response = await server.CreateSessionAsync(network, "carol", "device-c");

        Assert.Contains("authToken is required", await Envelope.AssertUnauthorizedAsync(response), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task An_auth_token_for_another_user_is_refused()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var authToken = await server.MintAsync(await server.GenerateServerKeyAsync(network), "dave");

        using var response = await server.CreateSessionAsync(network, "mallory", "device-m", authToken);

        Assert.Contains("another userId", await Envelope.AssertUnauthorizedAsync(response), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task An_auth_token_of_another_network_is_refused()
    {
        var home = await server.CreateNetworkAsync(secureMode: true);
        var elsewhere = await server.CreateNetworkAsync(secureMode: true);
        var authToken = await server.MintAsync(await server.GenerateServerKeyAsync(home), "erin");

        using var response = await server.CreateSessionAsync(elsewhere, "erin", "device-e", authToken);

        Assert.Contains("another network", await Envelope.AssertUnauthorizedAsync(response), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task An_auth_token_expires_after_ten_minutes()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var early = await server.MintAsync(serverKey, "frank");
        var late = await server.MintAsync(serverKey, "frank");

        server.Clock.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1));
        await server.LoginAsync(network, "frank", "device-f", early);
        server.Clock.Advance(TimeSpan.FromSeconds(1));
        using var response = await server.CreateSessionAsync(network, "frank", "device-f", late);

        Assert.Contains("expired", await Envelope.AssertUnauthorizedAsync(response), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Tokens_of_one_kind_never_pass_for_the_other()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var authToken = await server.MintAsync(await server.GenerateServerKeyAsync(network), "gina");
        var accessToken = (await server.LoginAsync(network, "gina", "device-g", authToken))["accessToken"]!.GetValue<string>();

        using var authAsBearer = await server.GetWithBearerAsync("/api/v3/users/me", authToken);
        using var accessAsAuth = await server.CreateSessionAsync(network, "gina", "device-g", accessToken);

        await Envelope.AssertUnauthorizedAsync(authAsBearer);
        await Envelope.AssertUnauthorizedAsync(accessAsAuth);
    }

    /// <summary>Auth tokens are written by Gatehouse's own HS256 writer: every field a verifier reads, exactly as minted.</summary>
    [SkippableFact]
    public async Task An_auth_token_is_a_compact_jws_with_every_claim_and_opens_a_session_for_an_unusual_user_id()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        // Quotes, a backslash, a slash, "+", characters beyond ASCII and a surrogate pair: each must survive JSON escaping.
        var userId = "o'brien \"quoted\" back\\slash a/b+c é中😀 " + new string('x', 60);

        var first = await server.MintAsync(serverKey, userId);
        var second = await server.MintAsync(serverKey, userId);

        var parts = first.Split('.');
        Assert.Equal(3, parts.Length);
        var header = Header(first);
        Assert.Equal(["alg", "kid", "typ"], header.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal("HS256", header["alg"]!.GetValue<string>());
        Assert.Equal("gatehouse-auth+jwt", header["typ"]!.GetValue<string>());
        Assert.Equal(server.Services.GetRequiredService<SigningKeys>().Current(SecurityAlgorithms.HmacSha256).Key.KeyId, header["kid"]!.GetValue<string>());
        var claims = Claims(first);
        Assert.Equal(userId, claims["sub"]!.GetValue<string>());
        Assert.Equal(network.Id, claims["nid"]!.GetValue<string>());
        Assert.Equal("gatehouse:sessions", claims["aud"]!.GetValue<string>());
        Assert.Equal(server.Services.GetRequiredService<TokenIssuer>().Current, claims["iss"]!.GetValue<string>());
        Assert.True(Guid.TryParse(claims["skid"]!.GetValue<string>(), out _));
        var issuedAt = server.Clock.GetUtcNow().ToUnixTimeSeconds();
        Assert.Equal(issuedAt, claims["iat"]!.GetValue<long>());
        Assert.Equal(issuedAt, claims["nbf"]!.GetValue<long>());
        Assert.Equal(issuedAt + 600, claims["exp"]!.GetValue<long>());
        Assert.Matches("^[0-9a-f]{32}$", claims["jti"]!.GetValue<string>());
        Assert.NotEqual(claims["jti"]!.GetValue<string>(), Claims(second)["jti"]!.GetValue<string>());
        // base64url without padding, as RFC 7515 requires.
        Assert.All(parts, part => Assert.Matches("^[A-Za-z0-9_-]+$", part));

        // Another user's claims under this token's signature: refused, so the signature covers what was written.
        var forgedClaims = Base64UrlEncoder.Encode(
            System.Text.Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(parts[1])).Replace("o'brien", "o'brian", StringComparison.Ordinal));
        using var forged = await server.CreateSessionAsync(network, userId.Replace("o'brien", "o'brian", StringComparison.Ordinal), "device-f",
            $"{parts[0]}.{forgedClaims}.{parts[2]}");
        await Envelope.AssertUnauthorizedAsync(forged);

        await server.LoginAsync(network, userId, "device-unusual", first);
        await server.LoginAsync(network, userId, "device-unusual-2", second);
    }

    [SkippableFact]
    public async Task Each_kind_of_token_is_accepted_only_with_its_own_algorithm()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var authToken = await server.MintAsync(await server.GenerateServerKeyAsync(network), "gail");
        var accessToken = (await server.LoginAsync(network, "gail", "device-g2", authToken))["accessToken"]!.GetValue<string>();
        Assert.Equal("HS256", Header(authToken)["alg"]!.GetValue<string>());
        Assert.Equal("ES256", Header(accessToken)["alg"]!.GetValue<string>());

        // Both forged with the server's own keys and the right type, audience and claims; only the algorithm is
        // the other kind's. A verifier that accepted any of its keys would let each of them in.
        var jwt = server.Services.GetRequiredService<Jwt>();
        var now = server.Clock.GetUtcNow();
        var authTokenSignedEs256 = jwt.Sign(new JwtKind("gatehouse-auth+jwt", "gatehouse:sessions", SecurityAlgorithms.EcdsaSha256),
            new Dictionary<string, object> { ["sub"] = "gail", ["nid"] = network.Id, ["skid"] = Guid.NewGuid().ToString() }, now, now.AddMinutes(10));
        var access = Claims(accessToken);
        var accessTokenSignedHs256 = jwt.Sign(new JwtKind("at+jwt", "gatehouse:api", SecurityAlgorithms.HmacSha256),
            new Dictionary<string, object>
            {
                ["sub"] = access["sub"]!.GetValue<string>(),
                ["sid"] = access["sid"]!.GetValue<string>(),
                ["nid"] = access["nid"]!.GetValue<string>(),
            }, now, now.AddDays(1));

        using var login = await server.CreateSessionAsync(network, "gail", "device-g3", authTokenSignedEs256);
        using var bearer = await server.GetWithBearerAsync("/api/v3/users/me", accessTokenSignedHs256);

        Assert.Contains("not valid", await Envelope.AssertUnauthorizedAsync(login), StringComparison.Ordinal);
        await Envelope.AssertUnauthorizedAsync(bearer);
        using var genuine = await server.GetWithBearerAsync("/api/v3/users/me", accessToken);
        Assert.Equal(HttpStatusCode.OK, genuine.StatusCode);
    }

    [SkippableFact]
    public async Task An_auth_token_minted_before_a_signing_key_rotation_still_opens_a_session()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var before = await server.MintAsync(serverKey, "hugo");

        var newKid = await server.Services.GetRequiredService<SigningKeys>().RotateAsync("test");
        var after = await server.MintAsync(serverKey, "hugo");

        await server.LoginAsync(network, "hugo", "device-h1", before);
        await server.LoginAsync(network, "hugo", "device-h2", after);
        Assert.NotEqual(newKid, Header(before)["kid"]!.GetValue<string>());
        Assert.Equal(newKid, Header(after)["kid"]!.GetValue<string>());
    }

    [SkippableFact]
    public async Task A_tampered_auth_token_is_refused()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var authToken = await server.MintAsync(await server.GenerateServerKeyAsync(network), "hank");
        var parts = authToken.Split('.');
        var claims = JsonNode.Parse(System.Text.Encoding.UTF8.GetString(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.DecodeBytes(parts[1])))!;
        claims["sub"] = "root";
        var edited = $"{parts[0]}.{Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(claims.ToJsonString())}.{parts[2]}";

        using var response = await server.CreateSessionAsync(network, "root", "device-h", edited);

        Assert.Contains("not valid", await Envelope.AssertUnauthorizedAsync(response), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Secure_mode_switched_on_later_applies_to_the_next_login()
    {
        var network = await server.CreateNetworkAsync();
        await server.LoginAsync(network, "ivy", "device-i");

        await server.SetSecureModeAsync(network, on: true);
        using var response = await server.CreateSessionAsync(network, "ivy", "device-i");

        await Envelope.AssertUnauthorizedAsync(response);
    }

    [SkippableFact]
    public async Task Turning_secure_mode_on_ends_the_sessions_opened_without_an_auth_token_unless_kept()
    {
        var ending = await server.CreateNetworkAsync();
        var keeping = await server.CreateNetworkAsync();
        var unproven = await server.LoginAsync(ending, "olaf", "device-o");
        var kept = await server.LoginAsync(keeping, "olaf", "device-o");
        var secure = await server.CreateNetworkAsync(secureMode: true);
        var proven = await server.LoginAsync(secure, "olaf", "device-o", await server.MintAsync(await server.GenerateServerKeyAsync(secure), "olaf"));

        await using (var scope = server.Services.CreateAsyncScope())
        {
            var networks = scope.ServiceProvider.GetRequiredService<Networks.NetworkAdministration>();
            Assert.Equal(1, await networks.CountSessionsWithoutAuthTokenAsync(ending.Id));
            Assert.Equal((null, 1), await networks.SetSecureModeAsync((await networks.FindAsync(ending.Id))!, true, "test"));
            Assert.Equal((null, 1), await networks.SetSecureModeAsync((await networks.FindAsync(keeping.Id))!, true, "test", keepSessions: true));
            // Off and on again: the session opened with an auth token stays.
            await networks.SetSecureModeAsync((await networks.FindAsync(secure.Id))!, false, "test");
            Assert.Equal((null, 0), await networks.SetSecureModeAsync((await networks.FindAsync(secure.Id))!, true, "test"));
        }
        await server.FlushAuditAsync();

        using var ended = await server.GetWithBearerAsync("/api/v3/users/me", unproven["accessToken"]!.GetValue<string>());
        using var endedRefresh = await server.RefreshAsync(ending, unproven["refreshToken"]!.GetValue<string>());
        using var stillKept = await server.GetWithBearerAsync("/api/v3/users/me", kept["accessToken"]!.GetValue<string>());
        using var stillProven = await server.GetWithBearerAsync("/api/v3/users/me", proven["accessToken"]!.GetValue<string>());
        await Envelope.AssertUnauthorizedAsync(ended);
        await Envelope.AssertUnauthorizedAsync(endedRefresh);
        Assert.Equal(HttpStatusCode.OK, stillKept.StatusCode);
        Assert.Equal(HttpStatusCode.OK, stillProven.StatusCode);
        await using var audit = server.Services.CreateAsyncScope();
        var details = await audit.ServiceProvider.GetRequiredService<Storage.GatehouseDb>().AuditEvents
            .Where(e => e.Kind == "network.secure_mode_changed" && (e.NetworkId == ending.Id || e.NetworkId == keeping.Id))
            .Select(e => e.Detail).ToListAsync();
        Assert.Contains("on; ended 1 session(s) opened without an auth token", details);
        Assert.Contains("on; kept 1 session(s) opened without an auth token", details);
    }

    [SkippableFact]
    public async Task In_a_single_use_network_an_auth_token_opens_one_session_however_many_try_at_once()
    {
        var reusable = await server.CreateNetworkAsync(secureMode: true);
        var singleUse = await server.CreateNetworkAsync(secureMode: true);
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var networks = scope.ServiceProvider.GetRequiredService<Networks.NetworkAdministration>();
            await networks.SetSingleUseAuthTokensAsync((await networks.FindAsync(singleUse.Id))!, true, "test");
        }
        var reusableToken = await server.MintAsync(await server.GenerateServerKeyAsync(reusable), "pia");
        var singleUseToken = await server.MintAsync(await server.GenerateServerKeyAsync(singleUse), "pia");

        using var first = await server.CreateSessionAsync(reusable, "pia", "device-1", reusableToken);
        using var again = await server.CreateSessionAsync(reusable, "pia", "device-2", reusableToken);
        var racing = await Task.WhenAll(Enumerable.Range(0, 10).Select(async i =>
        {
            using var response = await server.CreateSessionAsync(singleUse, "pia", $"device-{i}", singleUseToken);
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Single(racing, r => r.StatusCode == HttpStatusCode.OK);
        Assert.All(racing.Where(r => r.StatusCode != HttpStatusCode.OK), r =>
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Contains("already used", r.Body, StringComparison.Ordinal);
        });
    }

    [SkippableFact]
    public async Task Mint_refuses_a_missing_or_unknown_server_key_and_a_missing_user_id()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);

        using var missing = await server.Http.GetAsync("/api/v3/authentication/token?userId=x");
        using var unknown = await server.MintV3Async("gsk_not-a-real-key", "x");
        using var noUser = await server.MintV3Async(serverKey, "");
        using var v4NoUser = await server.PostJsonAsync("/api/v4/authentication/token", new { }, serverKey: serverKey);

        Assert.Contains("x-server-key", await Envelope.AssertUnauthorizedAsync(missing), StringComparison.Ordinal);
        await Envelope.AssertUnauthorizedAsync(unknown);
        Assert.Contains("userId", await Envelope.AssertBadRequestAsync(noUser), StringComparison.Ordinal);
        Assert.Contains("userId", await Envelope.AssertBadRequestAsync(v4NoUser), StringComparison.Ordinal);
    }

    private static JsonNode Header(string jwt) => JsonNode.Parse(Base64UrlEncoder.DecodeBytes(jwt.Split('.')[0]))!;

    private static JsonNode Claims(string jwt) => JsonNode.Parse(Base64UrlEncoder.DecodeBytes(jwt.Split('.')[1]))!;
}

[Trait(Category.Name, Category.Fast)]
public sealed class SecureModeTestsOnSqlite(SqliteServer server) : SecureModeTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class SecureModeTestsOnPostgres(PostgresServer server) : SecureModeTests<PostgresServer>(server)
{
    /// <summary>
    /// PostgreSQL ends a network's sessions a few thousand per round trip (<c>SessionEnds</c>), so that none runs past
    /// the seconds a command gets: sessions beyond the first round trip's end too, and the count is theirs.
    /// </summary>
    [SkippableFact]
    public async Task Turning_secure_mode_on_ends_more_sessions_than_one_round_trip_takes()
    {
        var network = await Server.CreateNetworkAsync();
        var opened = await Server.LoginAsync(network, "many", "device-0");
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<Storage.GatehouseDb>();
        // The same session again under other keys and devices, written directly: ten thousand logins would take long.
        var first = await db.Sessions.Where(s => s.NetworkId == network.Id).Select(s => s.Id).SingleAsync();
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO "Sessions"
            SELECT (jsonb_populate_record(NULL::"Sessions", to_jsonb(s) || jsonb_build_object('Id', gen_random_uuid(), 'DeviceId', 'device-' || n))).*
            FROM "Sessions" AS s, generate_series(1, 9999) AS n WHERE s."Id" = {first}
            """);

        var networks = scope.ServiceProvider.GetRequiredService<Networks.NetworkAdministration>();
        var (refusal, ended) = await networks.SetSecureModeAsync((await networks.FindAsync(network.Id))!, true, "test");

        Assert.Null(refusal);
        Assert.Equal(10_000, ended);
        Assert.Equal(0, await db.Sessions.CountAsync(s => s.NetworkId == network.Id && s.RevokedAt == null));
        using var me = await Server.GetWithBearerAsync("/api/v3/users/me", opened["accessToken"]!.GetValue<string>());
        await Envelope.AssertUnauthorizedAsync(me);
    }
}
