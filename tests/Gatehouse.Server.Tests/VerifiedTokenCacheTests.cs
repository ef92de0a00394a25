using Gatehouse.Server.Sessions;
using Gatehouse.Server.Tokens;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Gatehouse.Server.Tests;

/// <summary>
/// A token verified once is not verified again, but every other rule still holds on each request: expiry on the
/// server's clock, the session's liveness, and the token's kind.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class VerifiedTokenCacheTests(GatehouseServer server) : IClassFixture<GatehouseServer>
{
    [Fact]
    public async Task A_token_already_verified_is_still_refused_once_expired_or_logged_out_and_never_passes_as_another_kind()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var authToken = await server.MintAsync(serverKey, "alice");
        var expiring = (await server.LoginAsync(network, "alice", "device-1", authToken))["accessToken"]!.GetValue<string>();
        var loggingOut = (await server.LoginAsync(network, "alice", "device-2", authToken))["accessToken"]!.GetValue<string>();
        foreach (var token in new[] { expiring, loggingOut })
        {
            using var verified = await server.GetWithBearerAsync("/api/v3/users/me", token);
            Assert.Equal(HttpStatusCode.OK, verified.StatusCode);
        }

        // A verified auth token is still not an access token, nor the reverse.
        using var authTokenAsBearer = await server.GetWithBearerAsync("/api/v3/users/me", authToken);
        Assert.Equal(HttpStatusCode.Unauthorized, authTokenAsBearer.StatusCode);
        using var accessTokenAsAuthToken = await server.CreateSessionAsync(network, "alice", "device-3", expiring);
        Assert.Equal(HttpStatusCode.Unauthorized, accessTokenAsAuthToken.StatusCode);

        using (await server.LogoutAsync(loggingOut)) { }
        using var afterLogout = await server.GetWithBearerAsync("/api/v3/users/me", loggingOut);
        Assert.Contains("session has ended", await Envelope.AssertUnauthorizedAsync(afterLogout), StringComparison.Ordinal);

        server.Clock.Advance(TimeSpan.FromDays(30));
        using var afterExpiry = await server.GetWithBearerAsync("/api/v3/users/me", expiring);
        Assert.Contains("expired", await Envelope.AssertUnauthorizedAsync(afterExpiry), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_token_remembered_as_it_was_signed_reads_as_the_token_itself_says()
    {
        // Half a second past a whole one: a token carries whole seconds, so what it is remembered as must too.
        server.Clock.Advance(TimeSpan.FromMilliseconds(1500 - server.Clock.GetUtcNow().Millisecond));
        var jwt = server.Services.GetRequiredService<Jwt>();
        var kind = AccessTokens.Kind;
        var now = server.Clock.GetUtcNow();
        var token = jwt.SignRemembered(kind, new Dictionary<string, object>
        {
            ["sub"] = "rita",
            ["sid"] = Guid.NewGuid().ToString(),
            ["nid"] = "network-r",
            ["user"] = new Dictionary<string, object> { ["userId"] = "rita" },
        }, now, now.AddMinutes(15).AddMilliseconds(700));

        var remembered = (await jwt.CheckAsync(token, kind)).Token!;
        var text = new JsonWebToken(token);
        var read = VerifiedJwt.Read(kind, text, text.Kid, text.Issuer);

        Assert.Equal((read.Kid, read.Issuer, read.IssuedAt, read.ValidFrom, read.ValidTo),
            (remembered.Kid, remembered.Issuer, remembered.IssuedAt, remembered.ValidFrom, remembered.ValidTo));
        foreach (var claim in kind.Reads)
        {
            Assert.Equal(read.TryGetString(claim, out var fromText) ? fromText : null,
                remembered.TryGetString(claim, out var fromSigning) ? fromSigning : null);
        }
        Assert.True(remembered.TryGetString("sid", out _));
        // A claim the kind's checks do not read is not kept, and asking for it is a mistake, not an absent claim.
        Assert.Throws<InvalidOperationException>(() => remembered.TryGetString("sub", out _));
    }

    [Fact]
    public async Task A_token_one_character_away_from_a_verified_one_is_not_taken_for_it()
    {
        var network = await server.CreateNetworkAsync(secureMode: false);
        var token = (await server.LoginAsync(network, "tess", "device-1"))["accessToken"]!.GetValue<string>();
        using (var verified = await server.GetWithBearerAsync("/api/v3/users/me", token))
            Assert.Equal(HttpStatusCode.OK, verified.StatusCode);

        var parts = token.Split('.');
        foreach (var (part, at) in new[] { (1, parts[1].Length / 2), (2, parts[2].Length / 2) })
        {
            var changed = parts.ToArray();
            var chars = changed[part].ToCharArray();
            chars[at] = chars[at] == 'A' ? 'B' : 'A';
            changed[part] = new string(chars);
            using var refused = await server.GetWithBearerAsync("/api/v3/users/me", string.Join('.', changed));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }
        using var stillVerified = await server.GetWithBearerAsync("/api/v3/users/me", token);
        Assert.Equal(HttpStatusCode.OK, stillVerified.StatusCode);

        // No HTTP client sends a header that is not ASCII, but a form does (introspection, revocation): such a text,
        // never a JWT, is refused like any other, not an error.
        var jwt = server.Services.GetRequiredService<Jwt>();
        Assert.Equal(JwtFailure.Invalid, (await jwt.CheckAsync(token[..^1] + "\u00e9", AccessTokens.Kind)).Failure);
    }

    [Fact]
    public async Task A_token_verified_from_its_text_is_remembered_as_it_says()
    {
        var jwt = server.Services.GetRequiredService<Jwt>();
        var now = server.Clock.GetUtcNow();
        var sessionId = Guid.NewGuid().ToString();
        // Signed without being remembered, as by another node: the first check verifies it, the second finds it.
        var token = jwt.Sign(AccessTokens.Kind, new Dictionary<string, object> { ["sub"] = "vera", ["sid"] = sessionId, ["nid"] = "network-v" },
            now, now.AddMinutes(15));

        var verified = (await jwt.CheckAsync(token, AccessTokens.Kind)).Token!;
        var found = (await jwt.CheckAsync(token, AccessTokens.Kind)).Token;

        Assert.Same(verified, found);
        var text = new JsonWebToken(token);
        Assert.Equal((sessionId, "network-v", text.Kid, text.Issuer, text.IssuedAt, text.ValidTo),
            (verified.TryGetString("sid", out var sid) ? sid : null, verified.TryGetString("nid", out var nid) ? nid : null,
                verified.Kid, verified.Issuer, verified.IssuedAt, verified.ValidTo));
    }

    [Fact]
    public async Task A_token_longer_than_a_stack_buffer_is_remembered_by_all_of_its_text()
    {
        var jwt = server.Services.GetRequiredService<Jwt>();
        var now = server.Clock.GetUtcNow();
        var token = jwt.SignRemembered(AccessTokens.Kind, new Dictionary<string, object>
        {
            ["sid"] = Guid.NewGuid().ToString(),
            ["nid"] = "network-l",
            ["note"] = new string('n', 3000),
        }, now, now.AddMinutes(15));
        Assert.True(token.Length > 4000);

        var remembered = (await jwt.CheckAsync(token, AccessTokens.Kind)).Token;
        Assert.NotNull(remembered);
        Assert.Same(remembered, (await jwt.CheckAsync(token, AccessTokens.Kind)).Token);

        // Changed past the first 2,048 characters, where a digest of part of the text would not see it.
        var parts = token.Split('.');
        var payload = parts[1].ToCharArray();
        var at = payload.Length - 300;
        payload[at] = payload[at] == 'A' ? 'B' : 'A';
        parts[1] = new string(payload);
        Assert.Null((await jwt.CheckAsync(string.Join('.', parts), AccessTokens.Kind)).Token);
    }

    [Fact]
    public async Task An_auth_token_is_verified_at_each_check_and_never_takes_an_access_tokens_place()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var authToken = await server.MintAsync(serverKey, "ada");
        var jwt = server.Services.GetRequiredService<Jwt>();

        var first = (await jwt.CheckAsync(authToken, Gatehouse.Server.AuthTokens.AuthTokens.Kind)).Token;
        var second = (await jwt.CheckAsync(authToken, Gatehouse.Server.AuthTokens.AuthTokens.Kind)).Token;

        Assert.NotNull(first);
        Assert.NotNull(second);
        Assert.NotSame(first, second);
    }
}
