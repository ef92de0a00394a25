using System.Buffers;
using System.Buffers.Text;
using System.Collections.ObjectModel;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
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

internal readonly record struct JwtCheck(VerifiedJwt? Token, JwtFailure Failure);

/// <summary>
/// What a token this server verified says, as much of it as its kind's checks read (<see cref="JwtKind.Reads"/>): the
/// verified-token cache keeps one for every live token a node has seen, so it holds no parsed token and no claim
/// nobody reads (docs/benchmarks.md, change 70). Read from the token by the library's validation, or, for a token
/// signed here a moment ago (<see cref="Jwt.SignRemembered"/>), taken from what was signed: parsing the token again
/// only to remember it cost a refresh as much CPU as writing and signing it (change 67).
/// Times are whole seconds, as the token carries them.
/// </summary>
internal sealed class VerifiedJwt
{
    private readonly JwtKind _kind;

    /// <summary>The string value of each of the kind's <see cref="JwtKind.Reads"/>, in its order; null where absent.</summary>
    private readonly string?[] _reads;

    private VerifiedJwt(JwtKind kind, string?[] reads, string kid, string issuer, DateTime issuedAt, DateTime validFrom, DateTime validTo)
    {
        _kind = kind;
        _reads = reads;
        Kid = kid;
        Issuer = issuer;
        IssuedAt = issuedAt;
        ValidFrom = validFrom;
        ValidTo = validTo;
    }

    /// <param name="kid">The key's own id, equal to the token's: kept once for all the tokens it signed.</param>
    /// <param name="issuer">Likewise the deployment's issuer, equal to the token's.</param>
    public static VerifiedJwt Read(JwtKind kind, JsonWebToken token, string kid, string issuer)
    {
        var reads = new string?[kind.Reads.Count];
        for (var i = 0; i < reads.Length; i++)
            reads[i] = token.TryGetPayloadValue<string>(kind.Reads[i], out var value) ? value : null;
        return new(kind, reads, kid, issuer, token.IssuedAt, token.ValidFrom, token.ValidTo);
    }

    public static VerifiedJwt Signed(JwtKind kind, string kid, string issuer, IDictionary<string, object> claims, DateTimeOffset issuedAt,
        DateTimeOffset expiresAt)
    {
        var reads = new string?[kind.Reads.Count];
        for (var i = 0; i < reads.Length; i++)
            reads[i] = claims.TryGetValue(kind.Reads[i], out var value) ? value as string : null;
        return new(kind, reads, kid, issuer, WholeSeconds(issuedAt), WholeSeconds(issuedAt), WholeSeconds(expiresAt));
    }

    /// <summary>As the token writes a time (RFC 7519 §2, NumericDate) and the library reads it back.</summary>
    private static DateTime WholeSeconds(DateTimeOffset time) => DateTimeOffset.FromUnixTimeSeconds(time.ToUnixTimeSeconds()).UtcDateTime;

    public string Kid { get; }

    public string Issuer { get; }

    public DateTime IssuedAt { get; }

    public DateTime ValidFrom { get; }

    public DateTime ValidTo { get; }

    /// <summary>A claim of the payload whose value is a string.</summary>
    /// <exception cref="InvalidOperationException">The claim is not one of the kind's <see cref="JwtKind.Reads"/>.</exception>
    public bool TryGetString(string claim, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value)
    {
        for (var i = 0; i < _reads.Length; i++)
        {
            if (_kind.Reads[i] == claim)
            {
                value = _reads[i];
                return value is not null;
            }
        }
        // Never a quiet "absent": a claim left out of the kind would read as missing from every token.
        throw new InvalidOperationException($"{_kind.Type} tokens are not read for {claim}; name it in the kind's reads.");
    }
}

/// <summary>A kind of token: its <c>typ</c>, its audience, the one algorithm it is signed with, and the string claims its checks read.</summary>
internal sealed record JwtKind(string Type, string Audience, string Algorithm, params IReadOnlyList<string> Reads)
{
    /// <summary>Not settable by <c>with</c>: <see cref="Header"/> is made from it once.</summary>
    public string Type { get; } = Type;

    /// <summary>A copy: <see cref="VerifiedJwt"/> finds each claim by its position here, so the list must never change.</summary>
    public IReadOnlyList<string> Reads { get; } = [.. Reads];

    /// <summary>Whether a verified token of this kind is kept in the verified-token cache (<see cref="Jwt"/>).</summary>
    public bool Remembered { get; init; } = true;

    /// <summary>What the library writes into a header besides <c>alg</c> and <c>kid</c>: the kind's <c>typ</c> (RFC 8725 §3.11).</summary>
    public IDictionary<string, object> Header { get; } = new ReadOnlyDictionary<string, object>(new Dictionary<string, object> { ["typ"] = Type });

    /// <summary>Kinds are equal by what they say, the claims they read included, not by the list's identity.</summary>
    public bool Equals(JwtKind? other) =>
        ReferenceEquals(this, other) || other is not null && Type == other.Type && Audience == other.Audience && Algorithm == other.Algorithm
            && Remembered == other.Remembered && Reads.SequenceEqual(other.Reads);

    public override int GetHashCode() => HashCode.Combine(Type, Audience, Algorithm);
}

/// <summary>
/// A token's SHA-256, standing for its text as the verified-token cache's key: the text was more than half of what
/// an entry kept (docs/benchmarks.md, change 70). Finding a verified entry for a token that was not verified would
/// take a second preimage of SHA-256.
/// </summary>
internal readonly record struct TokenDigest(ulong A, ulong B, ulong C, ulong D)
{
    /// <summary>
    /// Null for a text that is not ASCII: no JWT's compact form is (RFC 7515 §7.1), so it is never looked up, and the
    /// digest is of one byte per character, half the bytes of the UTF-16 text (docs/benchmarks.md, change 70).
    /// </summary>
    public static TokenDigest? Of(string token)
    {
        var rented = token.Length > StackLimit ? ArrayPool<byte>.Shared.Rent(token.Length) : null;
        try
        {
            Span<byte> text = rented ?? stackalloc byte[StackLimit];
            if (Ascii.FromUtf16(token, text, out var written) != OperationStatus.Done)
                return null;
            Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData(text[..written], hash);
            var words = MemoryMarshal.Cast<byte, ulong>(hash);
            return new TokenDigest(words[0], words[1], words[2], words[3]);
        }
        finally
        {
            // A bearer token's text must not linger in a buffer the whole process shares.
            if (rented is not null)
                ArrayPool<byte>.Shared.Return(rented, clearArray: true);
        }
    }

    private const int StackLimit = 2048;
}

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
    /// Tokens already verified, by their digest: the ES256 check is the largest single cost of a bearer request
    /// (docs/benchmarks.md), and a token's signature cannot change. Lifetime is still checked on every use against
    /// the server's clock; whether the session is live is not this class's concern and is read every time.
    /// Every login and refresh adds a token (<see cref="SignRemembered"/>), so a busy node keeps it full, and each
    /// compaction walks and sorts all its entries: a quarter goes each time, one compaction at a time
    /// (<see cref="BoundedCache{TKey,TValue}"/>; docs/benchmarks.md, changes 35 and 48).
    /// </summary>
    private readonly BoundedCache<(JwtKind, TokenDigest), VerifiedJwt>? _verified = options.Value.Sessions.VerifiedTokenCacheEntries > 0
        ? new(options.Value.Sessions.VerifiedTokenCacheEntries)
        : null;

    public void Dispose() => _verified?.Dispose();

    /// <summary>
    /// Signed by the maintained library, which checks it in <see cref="CheckAsync"/>, over a payload written here: the
    /// access tokens, which resource servers verify with the JWKS. Auth tokens, which only this server checks, are
    /// written and signed by <see cref="SignMac"/>.
    /// </summary>
    /// <param name="claims">Strings, or dictionaries of strings for claims that are JSON objects; never a registered claim.</param>
    public string Sign(JwtKind kind, IDictionary<string, object> claims, DateTimeOffset issuedAt, DateTimeOffset expiresAt) =>
        SignWith(kind, keys.Current(kind.Algorithm), issuer.Current, claims, issuedAt, expiresAt);

    /// <summary>
    /// The library writes the header, encodes, and signs; the payload is JSON written here, with the library's own
    /// order and escaping, so the token is the one its descriptor wrote. From a descriptor the library wrote the claim
    /// dictionary through growing buffers: a quarter of all a new user's login allocated (docs/benchmarks.md, change 71).
    /// </summary>
    private static string SignWith(JwtKind kind, SigningCredentials credentials, string issuedBy, IDictionary<string, object> claims,
        DateTimeOffset issuedAt, DateTimeOffset expiresAt) =>
        Writer.CreateToken(PayloadOf(kind, issuedBy, claims, issuedAt, expiresAt), credentials, kind.Header);

    private static string PayloadOf(JwtKind kind, string issuedBy, IDictionary<string, object> claims, DateTimeOffset issuedAt, DateTimeOffset expiresAt)
    {
        var writer = _threadWriter ??= new TokenWriter();
        writer.Payload.ResetWrittenCount();
        var json = writer.Json;
        json.Reset(writer.Payload);
        json.WriteStartObject();
        json.WriteString(Claims.Aud, kind.Audience);
        json.WriteString(Claims.Iss, issuedBy);
        json.WriteNumber(Claims.Exp, expiresAt.ToUnixTimeSeconds());
        json.WriteNumber(Claims.Iat, issuedAt.ToUnixTimeSeconds());
        json.WriteNumber(Claims.Nbf, issuedAt.ToUnixTimeSeconds());
        foreach (var (name, value) in claims)
        {
            // The library let the descriptor's value win over a claim of the same name; here it is a mistake.
            if (name is "aud" or "iss" or "exp" or "iat" or "nbf")
                throw new ArgumentException($"{name} is written from the token's kind, issuer and times, not from its claims.", nameof(claims));
            WriteClaim(json, name, value);
        }
        json.WriteEndObject();
        json.Flush();
        return Encoding.UTF8.GetString(writer.Payload.WrittenSpan);
    }

    private static void WriteClaim(Utf8JsonWriter json, string name, object? value)
    {
        switch (value)
        {
            case string text:
                json.WriteString(name, text);
                break;
            case IDictionary<string, object> members:
                json.WriteStartObject(name);
                foreach (var (member, memberValue) in members)
                    WriteClaim(json, member, memberValue);
                json.WriteEndObject();
                break;
            case null:
                throw new ArgumentException($"Claim {name} has no value; tokens carry strings and objects of strings.", nameof(value));
            default:
                throw new ArgumentException($"Claim {name} is a {value.GetType().Name}; tokens carry strings and objects of strings.", nameof(value));
        }
    }

    /// <summary>
    /// An HS256 token (RFC 7515 compact form) written here rather than by the library: the mint is the most frequent
    /// server-to-server call, and the library's descriptor, claim dictionary and growing buffers were half of all a
    /// mint allocated and a tenth of its CPU, where this writer allocates the token's string alone
    /// (docs/benchmarks.md, change 51). What it writes is checked by the library in <see cref="CheckAsync"/>, as every
    /// token is, so a token it wrote wrongly would be refused, never accepted. Synchronous, as is <see cref="PayloadOf"/>,
    /// so the per-thread buffers are never shared.
    /// </summary>
    /// <param name="writeClaims">
    /// Writes the kind's own claims; the registered ones (iss, aud, iat, nbf, exp) follow. It must not sign a token
    /// itself: that would reset the thread's buffers under this one.
    /// </param>
    public string SignMac<TState>(JwtKind kind, TState state, Action<Utf8JsonWriter, TState> writeClaims, DateTimeOffset issuedAt,
        DateTimeOffset expiresAt)
    {
        if (kind.Algorithm != SecurityAlgorithms.HmacSha256)
            throw new ArgumentException($"{kind.Type} is not signed with HS256.", nameof(kind));
        var credentials = keys.Current(kind.Algorithm);
        var key = (SymmetricSecurityKey)credentials.Key;
        var header = MacHeaderOf(kind, key);
        var writer = _threadWriter ??= new TokenWriter();

        writer.Payload.ResetWrittenCount();
        writer.Json.Reset(writer.Payload);
        writer.Json.WriteStartObject();
        writeClaims(writer.Json, state);
        writer.Json.WriteString(Claims.Iss, issuer.Current);
        writer.Json.WriteString(Claims.Aud, kind.Audience);
        writer.Json.WriteNumber(Claims.Iat, issuedAt.ToUnixTimeSeconds());
        writer.Json.WriteNumber(Claims.Nbf, issuedAt.ToUnixTimeSeconds());
        writer.Json.WriteNumber(Claims.Exp, expiresAt.ToUnixTimeSeconds());
        writer.Json.WriteEndObject();
        writer.Json.Flush();
        var payload = writer.Payload.WrittenSpan;

        // header "." payload "." signature, all base64url: the signing input is written as bytes, then the whole
        // token as chars, and only the final string is allocated.
        var inputLength = header.Length + 1 + Base64Url.GetEncodedLength(payload.Length);
        var tokenLength = inputLength + 1 + Base64Url.GetEncodedLength(SHA256.HashSizeInBytes);
        var input = writer.Input(inputLength);
        header.CopyTo(input);
        input[header.Length] = (byte)'.';
        Base64Url.EncodeToUtf8(payload, input[(header.Length + 1)..]);

        Span<byte> mac = stackalloc byte[SHA256.HashSizeInBytes];
        var hmac = writer.Mac(key);
        hmac.AppendData(input);
        hmac.GetHashAndReset(mac);

        var token = writer.Chars(tokenLength);
        Encoding.ASCII.GetChars(input, token);
        token[inputLength] = '.';
        Base64Url.EncodeToChars(mac, token[(inputLength + 1)..]);
        return new string(token);
    }

    private static class Claims
    {
        public static readonly JsonEncodedText Iss = JsonEncodedText.Encode("iss");
        public static readonly JsonEncodedText Aud = JsonEncodedText.Encode("aud");
        public static readonly JsonEncodedText Iat = JsonEncodedText.Encode("iat");
        public static readonly JsonEncodedText Nbf = JsonEncodedText.Encode("nbf");
        public static readonly JsonEncodedText Exp = JsonEncodedText.Encode("exp");
    }

    private sealed record MacHeader(JwtKind Kind, SymmetricSecurityKey Key, byte[] Encoded);

    /// <summary>The header is the same for every token of a kind and key: encoded once, again only after a rotation.</summary>
    private MacHeader? _macHeader;

    private ReadOnlySpan<byte> MacHeaderOf(JwtKind kind, SymmetricSecurityKey key)
    {
        if (_macHeader is { } known && ReferenceEquals(known.Key, key) && known.Kind == kind)
            return known.Encoded;
        var json = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(json, TokenWriter.JsonOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("alg", kind.Algorithm);
            writer.WriteString("kid", key.KeyId);
            writer.WriteString("typ", kind.Type);
            writer.WriteEndObject();
        }
        var encoded = new byte[Base64Url.GetEncodedLength(json.WrittenCount)];
        Base64Url.EncodeToUtf8(json.WrittenSpan, encoded);
        _macHeader = new MacHeader(kind, key, encoded);
        return encoded;
    }

    [ThreadStatic]
    private static TokenWriter? _threadWriter;

    /// <summary>One thread's buffers and keyed HMAC, reused by every token that thread writes or signs.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001",
        Justification = "Lives as long as its thread; the JSON writer only holds a managed buffer, and a replaced HMAC is disposed.")]
    private sealed class TokenWriter
    {
        /// <summary>A JWT is never HTML: "+" stays as it is rather than "\u002B".</summary>
        public static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

        public readonly ArrayBufferWriter<byte> Payload = new(1024);
        public readonly Utf8JsonWriter Json = new(Stream.Null, JsonOptions);
        private byte[] _input = new byte[2048];
        private char[] _chars = new char[2048];
        private (SymmetricSecurityKey Key, IncrementalHash Hmac)? _mac;

        public Span<byte> Input(int length)
        {
            if (_input.Length < length)
                _input = new byte[length];
            return _input.AsSpan(0, length);
        }

        public Span<char> Chars(int length)
        {
            if (_chars.Length < length)
                _chars = new char[length];
            return _chars.AsSpan(0, length);
        }

        /// <summary>Keyed once per key: setting the key up for every token cost more than the MAC itself.</summary>
        public IncrementalHash Mac(SymmetricSecurityKey key)
        {
            if (_mac is { } known && ReferenceEquals(known.Key, key))
                return known.Hmac;
            _mac?.Hmac.Dispose();
            var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key.Key);
            _mac = (key, hmac);
            return hmac;
        }
    }

    /// <summary>
    /// <see cref="Sign"/>, with the token remembered as verified: it was signed here a moment ago, so its first use (an
    /// app's next request after every login and refresh, or its logout) need not check the signature again
    /// (docs/benchmarks.md, change 29). Everything else is still checked on that use, as for any remembered token.
    /// What it is remembered as comes from what was signed, not from parsing the token again (change 67).
    /// </summary>
    /// <param name="claims">Handed over: they are remembered as they are, so the caller must not change them.</param>
    public string SignRemembered(JwtKind kind, IDictionary<string, object> claims, DateTimeOffset issuedAt, DateTimeOffset expiresAt)
    {
        // One key and one issuer for the token and what it is remembered as, even if either changes meanwhile.
        var credentials = keys.Current(kind.Algorithm);
        var issuedBy = issuer.Current;
        var token = SignWith(kind, credentials, issuedBy, claims, issuedAt, expiresAt);
        if (_verified is not null && kind.Remembered)
            Remember(kind, TokenDigest.Of(token), VerifiedJwt.Signed(kind, credentials.Kid, issuedBy, claims, issuedAt, expiresAt));
        return token;
    }

    /// <param name="token">Null for a kind not remembered, or a text that is not ASCII.</param>
    private void Remember(JwtKind kind, TokenDigest? token, VerifiedJwt verified)
    {
        if (token is { } digest)
            _verified?.Set((kind, digest), verified, verified.ValidTo);
    }

    /// <summary>Times come from the injected clock, never the handler's own.</summary>
    private static readonly JsonWebTokenHandler Writer = new() { SetDefaultTimesOnTokenCreation = false };

    public async Task<JwtCheck> CheckAsync(string token, JwtKind kind)
    {
        // The kind is part of the key: a token verified as one kind never passes as another.
        var digest = _verified is null || !kind.Remembered ? null : TokenDigest.Of(token);
        // A token remembered as verified is still refused once its key is retired.
        if (_verified is not null && digest is { } key && _verified.TryGet((kind, key), out var known) && known is not null && keys.Find(known.Kid, kind.Algorithm) is not null)
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
            var read = (JsonWebToken)result.SecurityToken;
            var verified = VerifiedJwt.Read(kind, read, keys.Find(read.Kid, kind.Algorithm)?.KeyId ?? read.Kid,
                read.Issuer == issuer.Current ? issuer.Current : read.Issuer);
            Remember(kind, digest, verified);
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
