using Gatehouse.Server.Configuration;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Server.Tokens;

public enum JwtFailure
{
    None,
    Invalid,
    Expired,
}

public readonly record struct JwtCheck(JsonWebToken? Token, JwtFailure Failure);

/// <summary>
/// Signs and checks our JWTs under RFC 8725: one algorithm (ES256), an explicit <c>typ</c> per token kind so
/// an auth token can never pass for an access token, issuer and audience checked, keys only from our set,
/// and time from the injected clock. No clock skew: the verifier is the issuer, on the same clock.
/// </summary>
public sealed class Jwt(SigningKeys keys, TimeProvider clock, IOptions<GatehouseOptions> options)
{
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false, MapInboundClaims = false };

    public string Sign(string type, string audience, Dictionary<string, object> claims, DateTimeOffset issuedAt, DateTimeOffset expiresAt) =>
        Handler.CreateToken(new SecurityTokenDescriptor
        {
            TokenType = type,
            Issuer = options.Value.Issuer,
            Audience = audience,
            Claims = claims,
            IssuedAt = issuedAt.UtcDateTime,
            NotBefore = issuedAt.UtcDateTime,
            Expires = expiresAt.UtcDateTime,
            SigningCredentials = keys.Current,
        });

    public async Task<JwtCheck> CheckAsync(string token, string type, string audience)
    {
        var parameters = new TokenValidationParameters
        {
            ValidTypes = [type],
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
            ValidIssuer = options.Value.Issuer,
            ValidAudience = audience,
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            TryAllIssuerSigningKeys = false,
            IssuerSigningKeyResolver = (_, _, kid, _) => keys.Find(kid) is { } key ? [key] : [],
            LifetimeValidator = (notBefore, expires, _, _) =>
            {
                var now = clock.GetUtcNow().UtcDateTime;
                return expires is { } exp && now < exp && (notBefore is not { } nbf || nbf <= now);
            },
        };
        var result = await Handler.ValidateTokenAsync(token, parameters);
        if (result.Exception is SecurityTokenSignatureKeyNotFoundException && await keys.RefreshAsync())
            result = await Handler.ValidateTokenAsync(token, parameters);
        if (result.IsValid)
            return new JwtCheck((JsonWebToken)result.SecurityToken, JwtFailure.None);
        return new JwtCheck(null, result.Exception is SecurityTokenInvalidLifetimeException or SecurityTokenExpiredException
            ? JwtFailure.Expired
            : JwtFailure.Invalid);
    }
}
