using System.Text;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Tokens;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Server.Tests;

/// <summary>
/// Access tokens are signed by the library over a payload written here (docs/benchmarks.md, change 71): what a
/// resource server or an SDK decodes must be what the library's own descriptor would have written.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class TokenWritingTests(GatehouseServer server) : IClassFixture<GatehouseServer>
{
    /// <summary>Characters JSON escapes, ones the relaxed encoder leaves alone, and ones outside ASCII.</summary>
    private const string AwkwardUserId = "o'brien \"the\" \\ <b>+&</b> é 😀 \u0001";

    [Fact]
    public async Task An_access_tokens_header_and_payload_are_what_the_librarys_descriptor_writes()
    {
        var jwt = server.Services.GetRequiredService<Jwt>();
        var credentials = server.Services.GetRequiredService<SigningKeys>().Current(AccessTokens.Algorithm);
        var issuer = server.Services.GetRequiredService<TokenIssuer>().Current;
        // A whole second: the library rounded a time within a tick or two of the next second up, and this writer floors.
        var now = DateTimeOffset.FromUnixTimeSeconds(server.Clock.GetUtcNow().ToUnixTimeSeconds());
        var expires = now.AddMinutes(15);
        var claims = new Dictionary<string, object>
        {
            ["sub"] = AwkwardUserId,
            ["sid"] = Guid.NewGuid().ToString(),
            ["nid"] = "network-w",
            ["user_type"] = "user",
            ["user"] = new Dictionary<string, object> { ["userId"] = AwkwardUserId, ["networkId"] = "network-w" },
        };

        var token = jwt.Sign(AccessTokens.Kind, claims, now, expires);
        var byDescriptor = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            TokenType = AccessTokens.Type,
            SigningCredentials = credentials,
            Claims = claims,
            Issuer = issuer,
            Audience = AccessTokens.Audience,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = expires.UtcDateTime,
        });

        // ES256 signatures differ each time; everything they sign must not.
        Assert.Equal(HeaderAndPayload(byDescriptor), HeaderAndPayload(token));
        var decoded = new JsonWebToken(token);
        Assert.Equal((AccessTokens.Type, AwkwardUserId), (decoded.Typ, decoded.Subject));
        Assert.NotNull((await jwt.CheckAsync(token, AccessTokens.Kind)).Token);
    }

    [Fact]
    public async Task A_registered_claim_or_a_value_no_token_carries_is_refused_and_the_next_token_is_whole()
    {
        var jwt = server.Services.GetRequiredService<Jwt>();
        var now = server.Clock.GetUtcNow();
        foreach (var registered in new[] { "aud", "iss", "exp", "iat", "nbf" })
        {
            var refused = Assert.Throws<ArgumentException>(() => jwt.Sign(AccessTokens.Kind,
                new Dictionary<string, object> { ["sid"] = "s", [registered] = "x" }, now, now.AddMinutes(1)));
            Assert.StartsWith($"{registered} is written from", refused.Message, StringComparison.Ordinal);
        }
        var number = Assert.Throws<ArgumentException>(() => jwt.Sign(AccessTokens.Kind,
            new Dictionary<string, object> { ["sid"] = "s", ["count"] = 3 }, now, now.AddMinutes(1)));
        Assert.StartsWith("Claim count is a Int32", number.Message, StringComparison.Ordinal);
        var missing = Assert.Throws<ArgumentException>(() => jwt.Sign(AccessTokens.Kind,
            new Dictionary<string, object> { ["sid"] = "s", ["user"] = new Dictionary<string, object> { ["userId"] = null! } }, now, now.AddMinutes(1)));
        Assert.StartsWith("Claim userId has no value", missing.Message, StringComparison.Ordinal);

        // The refusals stopped writing halfway through a payload on this thread; the next token starts afresh.
        var sessionId = Guid.NewGuid().ToString();
        var token = jwt.Sign(AccessTokens.Kind, new Dictionary<string, object> { ["sid"] = sessionId, ["nid"] = "network-w" }, now, now.AddMinutes(1));
        var decoded = new JsonWebToken(token);
        Assert.Equal((sessionId, "network-w"), (decoded.GetPayloadValue<string>("sid"), decoded.GetPayloadValue<string>("nid")));
        Assert.Equal(new[] { "aud", "iss", "exp", "iat", "nbf", "sid", "nid" }, decoded.Claims.Select(c => c.Type));
        Assert.NotNull((await jwt.CheckAsync(token, AccessTokens.Kind)).Token);
    }

    private static string HeaderAndPayload(string token)
    {
        var parts = token.Split('.');
        Assert.Equal(3, parts.Length);
        // Decoded, so a failure shows the JSON that differs.
        return Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(parts[0])) + "\n" + Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(parts[1]));
    }
}
