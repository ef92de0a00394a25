using System.Text.Json;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Server.AuthTokens;

/// <summary>
/// The short-lived proof, minted by the customer's backend with its server key, that lets one user of one
/// network open a session in secure mode. Stateless: a JWT of its own type and audience, HS256 because only this
/// server ever checks one (the SDK passes it through unread); a MAC is what lets minting run near the framework's
/// own speed (docs/benchmarks.md). Banning a user does not invalidate one already minted (as the hosted product
/// documents). It is accepted only while the server key that minted it is valid (current, or in its grace period):
/// replacing a leaked key past its grace, or letting it expire, ends what it minted at once, on every node, because
/// the key's row is read at each check.
/// </summary>
internal sealed class AuthTokens(Jwt jwt, TimeProvider clock)
{
    private static readonly CompiledQuery<Guid, DateTimeOffset, string?> NetworkOfValidKey =
        new((db, keyId, now, ct) => db.ServerKeys.AsNoTracking()
            .Where(k => k.Id == keyId && (k.ExpiresAt == null || k.ExpiresAt > now))
            .Select(k => k.NetworkId)
            .FirstOrDefault());

    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(10);
    /// <summary>
    /// Not remembered once verified: a login checks its auth token once (and spends it, in a network that wants each
    /// used once), and checking an HS256 token again costs microseconds, so a kept one would only take the place of an
    /// access token in the verified-token cache (docs/benchmarks.md, change 70).
    /// </summary>
    internal static readonly JwtKind Kind = new("gatehouse-auth+jwt", "gatehouse:sessions", SecurityAlgorithms.HmacSha256, "nid", "sub", "skid", "jti")
    {
        Remembered = false,
    };
    private const int MaxLength = 4096;

    public (string Token, DateTimeOffset ExpiresAt) Mint(string networkId, string userId, Guid serverKeyId)
    {
        var now = clock.GetUtcNow();
        var expiresAt = now + Lifetime;
        var token = jwt.SignMac(Kind, (userId, networkId, serverKeyId), static (json, claims) =>
        {
            json.WriteString(Claim.Sub, claims.userId);
            json.WriteString(Claim.Nid, claims.networkId);
            json.WriteString(Claim.Skid, claims.serverKeyId);
            Span<byte> jti = stackalloc byte[16];
            IdRandom.Fill(jti);
            Span<char> hex = stackalloc char[32];
            Convert.TryToHexStringLower(jti, hex, out _);
            json.WriteString(Claim.Jti, hex);
        }, now, expiresAt);
        return (token, expiresAt);
    }

    private static class Claim
    {
        public static readonly JsonEncodedText Sub = JsonEncodedText.Encode("sub");
        public static readonly JsonEncodedText Nid = JsonEncodedText.Encode("nid");
        public static readonly JsonEncodedText Skid = JsonEncodedText.Encode("skid");
        public static readonly JsonEncodedText Jti = JsonEncodedText.Encode("jti");
    }

    /// <summary>
    /// Null when the token opens a session for this user of this network. With <paramref name="singleUse"/> the token is
    /// also spent here, once: its id is inserted, and a second insert of the same id (on any node) fails.
    /// </summary>
    public async Task<Refusal?> CheckAsync(string token, string networkId, string userId, bool singleUse, GatehouseDb db, CancellationToken ct)
    {
        if (token.Length > MaxLength)
            return Errors.AuthTokenInvalid;
        var check = await jwt.CheckAsync(token, Kind);
        if (check.Failure == JwtFailure.Expired)
            return Errors.AuthTokenExpired;
        if (check.Token is not { } valid)
            return Errors.AuthTokenInvalid;
        if (!valid.TryGetString("nid", out var nid) || nid != networkId)
            return Errors.AuthTokenOtherNetwork;
        if (!valid.TryGetString("sub", out var subject) || subject != userId)
            return Errors.AuthTokenOtherUser;
        if (!valid.TryGetString("skid", out var skid) || !Guid.TryParse(skid, out var keyId)
            || await NetworkOfValidKey.RunAsync(db, keyId, clock.GetUtcNow(), ct) != networkId)
        {
            return Errors.AuthTokenKeyEnded;
        }

        if (!singleUse)
            return null;
        // Tokens minted before 0.2.0 carry no id and cannot be spent once, so a single-use network refuses them.
        if (!valid.TryGetString("jti", out var jti) || jti.Length is 0 or > 64)
            return Errors.AuthTokenInvalid;
        var spent = new SpentAuthToken { Jti = jti, NetworkId = networkId, ExpiresAt = valid.ValidTo };
        db.SpentAuthTokens.Add(spent);
        try
        {
            await db.SaveChangesAsync(ct);
            return null;
        }
        catch (DbUpdateException)
        {
            return Errors.AuthTokenUsed;
        }
        finally
        {
            db.Entry(spent).State = EntityState.Detached;
        }
    }
}

/// <summary>An auth token already used, in a network where each opens one session only; kept until it would have expired.</summary>
internal sealed class SpentAuthToken
{
    public required string Jti { get; init; }
    public required string NetworkId { get; init; }
    public DateTimeOffset ExpiresAt { get; init; }
}
