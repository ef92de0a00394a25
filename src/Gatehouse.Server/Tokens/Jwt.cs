using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Gatehouse.Server.Configuration;
using Microsoft.Extensions.Caching.Memory;
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
    /// </summary>
    private readonly MemoryCache? _verified = options.Value.Sessions.VerifiedTokenCacheEntries > 0
        ? new MemoryCache(new MemoryCacheOptions { SizeLimit = options.Value.Sessions.VerifiedTokenCacheEntries })
        : null;

    public void Dispose() => _verified?.Dispose();

    /// <summary>
    /// Writes the token itself (RFC 7515 compact form) rather than through the handler's token descriptor: the
    /// descriptor, its claim dictionary and the handler's provider lookups cost more than the HS256 MAC of an auth
    /// token (docs/benchmarks.md). What it writes is checked by the handler in <see cref="CheckAsync"/>.
    /// </summary>
    /// <param name="writeObjectClaims">Claims that are JSON objects, written after <paramref name="claims"/>.</param>
    public string Sign(JwtKind kind, IReadOnlyDictionary<string, string> claims, DateTimeOffset issuedAt, DateTimeOffset expiresAt,
        Action<Utf8JsonWriter>? writeObjectClaims = null)
    {
        var credentials = keys.Current(kind.Algorithm);
        var header = JsonObject(json =>
        {
            json.WriteString("alg", kind.Algorithm);
            json.WriteString("kid", credentials.Key.KeyId);
            json.WriteString("typ", kind.Type);
        });
        var payload = JsonObject(json =>
        {
            foreach (var (name, value) in claims)
                json.WriteString(name, value);
            writeObjectClaims?.Invoke(json);
            json.WriteString("iss", issuer.Current);
            json.WriteString("aud", kind.Audience);
            json.WriteNumber("iat", issuedAt.ToUnixTimeSeconds());
            json.WriteNumber("nbf", issuedAt.ToUnixTimeSeconds());
            json.WriteNumber("exp", expiresAt.ToUnixTimeSeconds());
        });

        var headerLength = Base64Url.GetEncodedLength(header.Length);
        var signingInput = new byte[headerLength + 1 + Base64Url.GetEncodedLength(payload.Length)];
        Base64Url.EncodeToUtf8(header, signingInput);
        signingInput[headerLength] = (byte)'.';
        Base64Url.EncodeToUtf8(payload, signingInput.AsSpan(headerLength + 1));

        Span<byte> signature = stackalloc byte[64];
        var signatureLength = credentials.Key switch
        {
            SymmetricSecurityKey mac when kind.Algorithm == SecurityAlgorithms.HmacSha256 => Mac(mac, signingInput, signature),
            ECDsaSecurityKey ec when kind.Algorithm == SecurityAlgorithms.EcdsaSha256 => ec.ECDsa.SignData(signingInput, signature, HashAlgorithmName.SHA256),
            _ => throw new InvalidOperationException($"No signer for {kind.Algorithm}."),
        };
        return string.Concat(Encoding.ASCII.GetString(signingInput), ".", Base64Url.EncodeToString(signature[..signatureLength]));
    }

    /// <summary>
    /// One keyed HMAC per thread, reset after each use: setting the key up again on every call cost more than the
    /// MAC (the microbenchmark's auth-token mint, docs/benchmarks.md). A rotated key replaces it.
    /// </summary>
    [ThreadStatic]
    private static (SymmetricSecurityKey Key, IncrementalHash Hmac)? _threadMac;

    private static int Mac(SymmetricSecurityKey key, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        if (_threadMac is not { } cached || !ReferenceEquals(cached.Key, key))
        {
            _threadMac?.Hmac.Dispose();
            _threadMac = cached = (key, IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key.Key));
        }
        cached.Hmac.AppendData(data);
        return cached.Hmac.GetHashAndReset(destination);
    }

    // A JWT is never HTML: "at+jwt" stays as it is rather than "at\u002Bjwt".
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Room for any header or payload written here, so the buffer never grows: growing, it grew by Utf8JsonWriter's
    /// 4 KB step, and with a buffer of 256 bytes a payload a little longer (an issuer that is a URL is enough) made each
    /// mint allocate half as much again (docs/benchmarks.md, change 23).
    /// </summary>
    private const int JsonObjectCapacity = 1024;

    private static ReadOnlySpan<byte> JsonObject(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(JsonObjectCapacity);
        using (var json = new Utf8JsonWriter(buffer, JsonOptions))
        {
            json.WriteStartObject();
            write(json);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan;
    }

    public async Task<JwtCheck> CheckAsync(string token, JwtKind kind)
    {
        // The kind is part of the key: a token verified as one kind never passes as another.
        var cacheKey = (kind, token);
        // A token remembered as verified is still refused once its key is retired.
        if (_verified is not null && _verified.TryGetValue(cacheKey, out JsonWebToken? known) && known is not null && keys.Find(known.Kid, kind.Algorithm) is not null)
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
            _verified?.Set(cacheKey, verified, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpiration = verified.ValidTo });
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
