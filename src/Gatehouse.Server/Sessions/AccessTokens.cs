using Gatehouse.Server.Configuration;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Server.Sessions;

/// <summary>Access tokens: ES256 JWTs (RFC 9068 <c>at+jwt</c>) that name their session.</summary>
internal sealed class AccessTokens(Jwt jwt, IOptions<GatehouseOptions> options)
{
    /// <summary>ES256, so a customer's own backend can check one with the published JWKS.</summary>
    public const string Type = "at+jwt";
    public const string Audience = "gatehouse:api";
    public const string Algorithm = SecurityAlgorithms.EcdsaSha256;
    /// <summary>A check reads the session and its network (<see cref="SessionAccess"/>).</summary>
    internal static readonly JwtKind Kind = new(Type, Audience, Algorithm, "sid", "nid");
    private const int MaxLength = 4096;

    public DateTimeOffset ExpiryFrom(DateTimeOffset issuedAt) => issuedAt + options.Value.Sessions.AccessTokenLifetime;

    /// <summary>
    /// Expires with the session's current expiry, which a refresh never moves past the session's absolute end. Besides
    /// the registered claims it carries <c>user_type</c>, which a customer's API can enforce (a visitor only reads), and
    /// the <c>user</c> object the 7.x SDKs' <c>loginWithAccessToken</c> reads the user from (never anything secret).
    /// </summary>
    public string Issue(Session session, User user, DateTimeOffset issuedAt) =>
        jwt.SignRemembered(Kind, new Dictionary<string, object>
        {
            ["sub"] = user.UserId,
            ["sid"] = session.Id.ToString(),
            ["nid"] = session.NetworkId,
            ["user_type"] = user.Kind.WireName(),
            ["user"] = new Dictionary<string, object>
            {
                ["userId"] = user.UserId,
                ["publicUserId"] = user.UserId,
                ["networkId"] = session.NetworkId,
            },
        }, issuedAt, session.ExpiresAt);

    public Task<JwtCheck> CheckAsync(string token) =>
        token.Length > MaxLength ? Task.FromResult(new JwtCheck(null, JwtFailure.Invalid)) : jwt.CheckAsync(token, Kind);
}
