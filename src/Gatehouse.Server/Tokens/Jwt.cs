using Gatehouse.Server.Configuration;
using Gatehouse.Server.Storage;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Server.Tokens;

internal enum JwtFailure
{
    None,
    Invalid,
    Expired,
}

internal readonly record struct JwtCheck(JsonWebToken? Token, JwtFailure Failure);

/// <summary>A kind of token: its <c>typ</c>, its audience, and the one algorithm it is signed with.</summary>
internal sealed record JwtKind(string Type, string Audience, string Algorithm);

/// <summary>
/// Signs and checks our JWTs under RFC 8725: one algorithm per token kind (§3.1), an explicit <c>typ</c> per kind
/// so an auth token can never pass for an access token (§3.11), issuer and audience checked, keys only from our
/// set and of the kind's algorithm, and time from the injected clock. No clock skew: the verifier is the issuer,
/// on the same clock.
/// </summary>
internal sealed class Jwt(SigningKeys keys, TokenIssuer issuer, TimeProvider clock, IOptions<GatehouseOptions> options) : IDisposable
{
    private static readonly JsonWebTokenHandler Handler = new() { MapInboundClaims = false };

    /// <summary>
    /// Tokens already verified, by their exact text: the ES256 check is the largest single cost of a bearer request
    /// (docs/benchmarks.md), and a token's signature cannot change. Lifetime is still checked on every use against
    /// the server's clock; whether the session is live is not this class's concern and is read every time.
    /// Every login and refresh adds a token (<see cref="SignRemembered"/>), so a busy node keeps it full, and each
    /// compaction walks and sorts all its entries: a quarter goes each time, one compaction at a time
    /// (<see cref="BoundedCache{TKey,TValue}"/>; docs/benchmarks.md, changes 35 and 48).
    /// </summary>
    private readonly BoundedCache<(JwtKind, string), JsonWebToken>? _verified = options.Value.Sessions.VerifiedTokenCacheEntries > 0
        ? new(options.Value.Sessions.VerifiedTokenCacheEntries)
        : null;

    public void Dispose() => _verified?.Dispose();

    /// <summary>
    /// Written by the maintained library, as it is checked in <see cref="CheckAsync"/>. A hand-written writer of the
    /// same token was 1.8 µs faster per auth token in the microbenchmark, about 1 % of a mint's server CPU: not worth
    /// a JWS writer of our own (docs/benchmarks.md, change 25).
    /// </summary>
    /// <param name="claims">Strings, or dictionaries of strings for claims that are JSON objects.</param>
    public string Sign(JwtKind kind, IDictionary<string, object> claims, DateTimeOffset issuedAt, DateTimeOffset expiresAt) =>
        Writer.CreateToken(new SecurityTokenDescriptor
        {
            TokenType = kind.Type,
            SigningCredentials = keys.Current(kind.Algorithm),
            Claims = claims,
            Issuer = issuer.Current,
            Audience = kind.Audience,
            IssuedAt = issuedAt.UtcDateTime,
            NotBefore = issuedAt.UtcDateTime,
            Expires = expiresAt.UtcDateTime,
        });

    /// <summary>
    /// <see cref="Sign"/>, with the token remembered as verified: it was signed here a moment ago, so its first use (an
    /// app's next request after every login and refresh, or its logout) need not check the signature again
    /// (docs/benchmarks.md, change 29). Everything else is still checked on that use, as for any remembered token.
    /// </summary>
    public string SignRemembered(JwtKind kind, IDictionary<string, object> claims, DateTimeOffset issuedAt, DateTimeOffset expiresAt)
    {
        var token = Sign(kind, claims, issuedAt, expiresAt);
        if (_verified is not null)
            Remember(kind, token, new JsonWebToken(token));
        return token;
    }

    private void Remember(JwtKind kind, string token, JsonWebToken verified) =>
        _verified?.Set((kind, token), verified, verified.ValidTo);

    /// <summary>Times come from the injected clock, never the handler's own.</summary>
    private static readonly JsonWebTokenHandler Writer = new() { SetDefaultTimesOnTokenCreation = false };

    public async Task<JwtCheck> CheckAsync(string token, JwtKind kind)
    {
        // The kind is part of the key: a token verified as one kind never passes as another.
        var cacheKey = (kind, token);
        // A token remembered as verified is still refused once its key is retired.
        if (_verified is not null && _verified.TryGet(cacheKey, out var known) && known is not null && keys.Find(known.Kid, kind.Algorithm) is not null)
            return Live(known.ValidFrom, known.ValidTo) ? new JwtCheck(known, JwtFailure.None) : new JwtCheck(null, JwtFailure.Expired);

        var parameters = new TokenValidationParameters
        {
            ValidTypes = [kind.Type],
            ValidAlgorithms = [kind.Algorithm],
            IssuerValidator = (iss, _, _) => issuer.Accepts(iss) ? iss : throw new SecurityTokenInvalidIssuerException($"Issuer {iss} is not this deployment's."),
            ValidAudience = kind.Audience,
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            TryAllIssuerSigningKeys = false,
            IssuerSigningKeyResolver = (_, _, kid, _) => keys.Find(kid, kind.Algorithm) is { } key ? [key] : [],
            LifetimeValidator = (notBefore, expires, _, _) => expires is { } exp && Live(notBefore ?? DateTime.MinValue, exp),
        };
        var result = await Handler.ValidateTokenAsync(token, parameters);
        if (result.Exception is SecurityTokenSignatureKeyNotFoundException && await keys.RefreshAsync())
            result = await Handler.ValidateTokenAsync(token, parameters);
        if (result.IsValid)
        {
            var verified = (JsonWebToken)result.SecurityToken;
            Remember(kind, token, verified);
            return new JwtCheck(verified, JwtFailure.None);
        }
        return new JwtCheck(null, result.Exception is SecurityTokenInvalidLifetimeException or SecurityTokenExpiredException
            ? JwtFailure.Expired
            : JwtFailure.Invalid);
    }

    private bool Live(DateTime notBefore, DateTime expires)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        return now < expires && notBefore <= now;
    }
}
