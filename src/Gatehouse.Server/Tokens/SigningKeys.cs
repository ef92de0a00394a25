using System.Collections.Frozen;
using System.Security.Cryptography;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Server.Tokens;

/// <summary>
/// The ES256 keys that sign access tokens, each with the random HS256 key that signs auth tokens under the same id.
/// One signs; retired ones keep verifying until every token they signed has expired, so a rotation never logs
/// anyone out.
/// </summary>
internal sealed class SigningKeys(
    IDbContextFactory<GatehouseDb> dbs,
    IDataProtectionProvider dataProtection,
    TimeProvider clock,
    IOptions<GatehouseOptions> options,
    Audit.AuditLog audit) : IDisposable
{
    private readonly IDataProtector _protector = dataProtection.CreateProtector("Gatehouse.SigningKeys.v1");
    private readonly IDataProtector _macProtector = dataProtection.CreateProtector("Gatehouse.AuthTokenKeys.v1");
    private static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(1);
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private KeySet? _keys;
    private DateTimeOffset _refreshedAt;

    /// <summary>
    /// The key that signs with <paramref name="algorithm"/> now: ES256 for tokens anyone may verify with the JWKS,
    /// HS256 for tokens only this server ever verifies.
    /// </summary>
    public SigningCredentials Current(string algorithm) => algorithm switch
    {
        SecurityAlgorithms.EcdsaSha256 => Keys.Signing,
        SecurityAlgorithms.HmacSha256 => Keys.MacSigning,
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "Gatehouse signs with ES256 or HS256 only."),
    };

    /// <summary>
    /// Only our own keys, and only of the expected algorithm: a <c>kid</c> is never used to fetch or build a key
    /// (RFC 8725 §3.10), and a token of one kind can never be checked with the other kind's key (§2.1).
    /// </summary>
    public SecurityKey? Find(string? kid, string algorithm)
    {
        var set = algorithm switch
        {
            SecurityAlgorithms.EcdsaSha256 => Keys.Verifying,
            SecurityAlgorithms.HmacSha256 => Keys.MacVerifying,
            _ => null,
        };
        return kid is not null && set is not null && set.TryGetValue(kid, out var key) ? key : null;
    }

    public JsonWebKeySetResponse Jwks => Keys.Published;

    public bool Loaded => _keys is not null;

    public void Dispose() => _refresh.Dispose();

    private KeySet Keys => _keys ?? throw new InvalidOperationException("Signing keys are not loaded yet.");

    /// <summary>
    /// Loads the keys, creating the first one on a new database. Keys of a release before 0.2.0 get their own MAC
    /// key here (their auth tokens, minutes long at most, must be minted again).
    /// </summary>
    public async Task LoadAsync(CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        if (!await db.SigningKeys.AnyAsync(k => k.RetiredAt == null, ct))
        {
            db.SigningKeys.Add(NewKey());
            await db.SaveChangesAsync(ct);
        }
        foreach (var withoutMac in await db.SigningKeys.Where(k => k.ProtectedMacKey == null).ToListAsync(ct))
            withoutMac.ProtectedMacKey = NewMacKey();
        await db.SaveChangesAsync(ct);
        await ReloadAsync(db, ct);
    }

    /// <summary>
    /// Another node may have rotated: a token with a key id we do not hold makes us re-read the keys (at most
    /// once a second, so a flood of forged key ids costs one query a second). True when the set changed.
    /// </summary>
    public async Task<bool> RefreshAsync(CancellationToken ct = default)
    {
        var before = _keys;
        await _refresh.WaitAsync(ct);
        try
        {
            if (!ReferenceEquals(before, _keys))
                return true;
            var now = clock.GetUtcNow();
            if (now - _refreshedAt < RefreshInterval)
                return false;
            _refreshedAt = now;
            return await ReloadWhenChangedAsync(ct);
        }
        finally
        {
            _refresh.Release();
        }
    }

    /// <summary>
    /// A new key signs from now on; the old one only verifies. This node signs with it at once, the others within
    /// <see cref="ReReadInterval"/> (<see cref="SigningKeyWatch"/>).
    /// </summary>
    public async Task<string> RotateAsync(string actor, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var now = clock.GetUtcNow();
        var key = NewKey();
        await using (var transaction = await db.Database.BeginTransactionAsync(ct))
        {
            // Rotations take turns (SQLite's writer lock does this alone): without it two at once on PostgreSQL each
            // retire only the keys they see and leave two keys signing.
            if (db.Database.IsNpgsql())
                await db.Database.ExecuteSqlRawAsync("SELECT pg_advisory_xact_lock(4711002)", ct);
            await db.SigningKeys.Where(k => k.RetiredAt == null).ExecuteUpdateAsync(s => s.SetProperty(k => k.RetiredAt, now), ct);
            db.SigningKeys.Add(key);
            await db.SaveChangesAsync(ct);
            await transaction.CommitAsync(ct);
        }
        await ReloadAsync(db, ct);
        audit.Record(Audit.SecurityEvents.SigningKeyRotated(actor, key.Id));
        return key.Id;
    }

    /// <summary>
    /// Ends a key that no longer signs: every token it signed is refused, on this node at once and on the others
    /// within <see cref="ReReadInterval"/>, and the JWKS stops publishing it. For a key that leaked; rotate first.
    /// </summary>
    public async Task<RetireOutcome> RetireAsync(string kid, string actor, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var now = clock.GetUtcNow();
        // One conditional update: of retirements at once, exactly one ends the key (and is audited).
        if (await db.SigningKeys.Where(k => k.Id == kid && k.RetiredAt != null && k.EndedAt == null)
                .ExecuteUpdateAsync(s => s.SetProperty(k => k.EndedAt, now), ct) == 0)
        {
            var key = await db.SigningKeys.AsNoTracking().FirstOrDefaultAsync(k => k.Id == kid, ct);
            return key switch
            {
                null => RetireOutcome.NotFound,
                { EndedAt: not null } => RetireOutcome.AlreadyEnded,
                _ => RetireOutcome.StillSigning,
            };
        }
        await ReloadAsync(db, ct);
        audit.Record(Audit.SecurityEvents.SigningKeyRetired(actor, kid));
        return RetireOutcome.Ended;
    }

    /// <summary>Every key with what it does now, the signing one first, then newest first (the console and <c>signing-key list</c>).</summary>
    public async Task<IReadOnlyList<SigningKeyState>> ListAsync(CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var horizon = clock.GetUtcNow() - options.Value.Sessions.AccessTokenLifetime;
        var rows = await db.SigningKeys.AsNoTracking().ToListAsync(ct);
        return [.. rows.OrderBy(k => k.RetiredAt is null ? 0 : 1).ThenByDescending(k => k.CreatedAt).Select(k => new SigningKeyState(k.Id, k.CreatedAt, k.RetiredAt, k.EndedAt,
            k.EndedAt is not null ? SigningKeyUse.Ended
            : k.RetiredAt is null ? SigningKeyUse.Signing
            : k.RetiredAt > horizon ? SigningKeyUse.Verifying
            : SigningKeyUse.Expired,
            k.RetiredAt is { } retired && k.EndedAt is null ? retired + options.Value.Sessions.AccessTokenLifetime : null))];
    }

    /// <summary>How often every node re-reads the keys, so a rotation or a retirement on another node reaches it.</summary>
    public static readonly TimeSpan ReReadInterval = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Re-reads the keys when the stored set differs from the one in memory (a cheap query of ids and states;
    /// the keys are decrypted only on a change). True when it changed.
    /// </summary>
    public async Task<bool> ReloadIfChangedAsync(CancellationToken ct = default)
    {
        await _refresh.WaitAsync(ct);
        try
        {
            return await ReloadWhenChangedAsync(ct);
        }
        finally
        {
            _refresh.Release();
        }
    }

    private async Task<bool> ReloadWhenChangedAsync(CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var stored = Stamp(await InUse(db).Select(k => new StampRow(k.Id, k.RetiredAt == null)).ToListAsync(ct));
        if (_keys is { } loaded && loaded.Stamp == stored)
            return false;
        await ReloadAsync(db, ct);
        return true;
    }

    private IQueryable<SigningKey> InUse(GatehouseDb db)
    {
        // A key retired longer ago than any token lives has nothing left to verify; an ended one verifies nothing.
        var horizon = clock.GetUtcNow() - options.Value.Sessions.AccessTokenLifetime;
        return db.SigningKeys.AsNoTracking().Where(k => k.EndedAt == null && (k.RetiredAt == null || k.RetiredAt > horizon));
    }

    private sealed record StampRow(string Id, bool Signing);

    private static string Stamp(IEnumerable<StampRow> rows) =>
        string.Join(',', rows.OrderBy(r => r.Id, StringComparer.Ordinal).Select(r => r.Signing ? r.Id + "*" : r.Id));

    private async Task ReloadAsync(GatehouseDb db, CancellationToken ct)
    {
        var rows = await InUse(db).OrderByDescending(k => k.CreatedAt).ToListAsync(ct);
        var loaded = rows.Select(row => (row, key: Unprotect(row))).ToList();
        var signing = loaded.First(k => k.row.RetiredAt == null);
        var macs = loaded.Where(k => k.row.ProtectedMacKey is not null)
            .ToFrozenDictionary(k => k.row.Id, k => (SecurityKey)UnprotectMac(k.row), StringComparer.Ordinal);
        _keys = new KeySet(
            new SigningCredentials(signing.key, SecurityAlgorithms.EcdsaSha256),
            loaded.ToFrozenDictionary(k => k.row.Id, k => (SecurityKey)k.key, StringComparer.Ordinal),
            new SigningCredentials(macs[signing.row.Id], SecurityAlgorithms.HmacSha256),
            macs,
            new JsonWebKeySetResponse(loaded.Select(k => PublicJwk.Of(k.key)).ToList()),
            Stamp(rows.Select(r => new StampRow(r.Id, r.RetiredAt == null))));
    }

    private SigningKey NewKey()
    {
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var kid = Base64UrlEncoder.Encode(new ECDsaSecurityKey(ecdsa).ComputeJwkThumbprint());
        return new SigningKey
        {
            Id = kid,
            ProtectedPrivateKey = _protector.Protect(Convert.ToBase64String(ecdsa.ExportPkcs8PrivateKey())),
            ProtectedMacKey = NewMacKey(),
            CreatedAt = clock.GetUtcNow(),
        };
    }

    /// <summary>
    /// A random key of its own rather than one derived from the ES256 private key: nothing about it follows from any
    /// other secret, so it is exactly as safe as its own protection (docs/security.md, "Auth-token MAC keys").
    /// HS256 costs about 4 µs to sign or check an auth token, against 25 µs and 69 µs with ES256 (docs/benchmarks.md).
    /// </summary>
    private string NewMacKey()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        try
        {
            return _macProtector.Protect(Convert.ToBase64String(key));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    private SymmetricSecurityKey UnprotectMac(SigningKey row) =>
        new(Convert.FromBase64String(_macProtector.Unprotect(row.ProtectedMacKey!))) { KeyId = row.Id };

    private ECDsaSecurityKey Unprotect(SigningKey row)
    {
        var ecdsa = ECDsa.Create();
        ecdsa.ImportPkcs8PrivateKey(Convert.FromBase64String(_protector.Unprotect(row.ProtectedPrivateKey)), out _);
        return new ECDsaSecurityKey(ecdsa) { KeyId = row.Id };
    }

    private sealed record KeySet(
        SigningCredentials Signing,
        FrozenDictionary<string, SecurityKey> Verifying,
        SigningCredentials MacSigning,
        FrozenDictionary<string, SecurityKey> MacVerifying,
        JsonWebKeySetResponse Published,
        string Stamp);
}

internal enum RetireOutcome
{
    Ended,
    NotFound,
    StillSigning,
    AlreadyEnded,
}

internal enum SigningKeyUse
{
    /// <summary>Signs new tokens (one key).</summary>
    Signing,

    /// <summary>Replaced by a rotation; verifies the tokens it signed until they have all expired.</summary>
    Verifying,

    /// <summary>Every token it signed has expired.</summary>
    Expired,

    /// <summary>Retired by an operator: verifies nothing.</summary>
    Ended,
}

internal sealed record SigningKeyState(string Id, DateTimeOffset CreatedAt, DateTimeOffset? RetiredAt, DateTimeOffset? EndedAt, SigningKeyUse Use, DateTimeOffset? VerifiesUntil);

/// <summary>RFC 7517 key set: public halves only.</summary>
internal sealed record JsonWebKeySetResponse(IReadOnlyList<PublicJwk> Keys);

internal sealed record PublicJwk(string Kty, string Crv, string X, string Y, string Kid, string Use, string Alg)
{
    public static PublicJwk Of(ECDsaSecurityKey key)
    {
        var p = key.ECDsa.ExportParameters(includePrivateParameters: false);
        return new PublicJwk("EC", "P-256", Base64UrlEncoder.Encode(p.Q.X), Base64UrlEncoder.Encode(p.Q.Y), key.KeyId, "sig", "ES256");
    }
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
[System.Text.Json.Serialization.JsonSerializable(typeof(JsonWebKeySetResponse))]
internal sealed partial class JwksJson : System.Text.Json.Serialization.JsonSerializerContext;
