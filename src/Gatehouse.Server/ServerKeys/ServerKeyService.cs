using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.ServerKeys;

/// <summary>A server key found by its digest, with its network's mTLS switch.</summary>
internal sealed record KnownServerKey(ServerKey Key, bool MtlsEnabled);

/// <summary>
/// Server keys the mint path found, by digest, so the next mint with the same key costs no database read. Any
/// committed change to a key or a network (a new key ending the previous one's grace, an expiry, the mTLS or
/// secure-mode switch), on this node or another, makes every entry stale (<see cref="CommittedRowCache{TKey,TValue}"/>).
/// Unknown keys are never kept.
/// </summary>
internal sealed class ServerKeyCache(CommittedWrites writes, IOptions<GatehouseOptions> options) : IDisposable
{
    private readonly CommittedRowCache<string, KnownServerKey> _rows = new(writes, options.Value.ServerKeyCacheEntries, ["ServerKeys", "Networks"]);

    public ValueTask<KnownServerKey?> GetAsync<TState>(string digest, TState state, Func<TState, Task<KnownServerKey?>> read) =>
        _rows.GetAsync(digest, state, read);

    /// <summary>The network of a key already kept, without a database read (see <see cref="CommittedRowCache{TKey,TValue}.Peek"/>).</summary>
    public string? NetworkOf(string presented) =>
        presented.Length is > 0 and <= 128 && _rows.Peek(Secrets.Digest(presented)) is { } known ? known.Key.NetworkId : null;

    public void Dispose() => _rows.Dispose();
}

/// <summary>
/// Server keys: generated only with secure mode on, shown once, kept as a SHA-256 digest. A new key
/// puts the previous one on a grace period; a key already in its grace ends at once, so a network
/// never has more than two valid keys.
/// </summary>
internal sealed class ServerKeyService(RequestDb requestDb, ServerKeyCache known, AuditLog audit, TimeProvider clock, IOptions<GatehouseOptions> options)
{
    private const string Prefix = "gsk_";
    private const int MaxPresentedLength = 128;
    private static readonly TimeSpan LastUsedResolution = TimeSpan.FromMinutes(1);

    private GatehouseDb Db => requestDb.Context;

    private static readonly CompiledQuery<string, KnownServerKey?> KeyByDigest =
        new((db, digest, ct) => db.ServerKeys.AsNoTracking()
            .Where(k => k.Digest == digest)
            .Join(db.Networks, k => k.NetworkId, n => n.Id, (k, n) => new KnownServerKey(k, n.MtlsEnabled))
            .FirstOrDefault());

    /// <summary>Returns the new key: the only moment it exists outside the caller's hands.</summary>
    public async Task<(string? Key, Refusal? Error)> GenerateAsync(Network network, string actor, CancellationToken ct = default)
    {
        if (!network.SecureMode)
            return (null, Errors.SecureModeRequired);

        var now = clock.GetUtcNow();
        var graceEnds = now + options.Value.ServerKeyGracePeriod;
        var secret = Secrets.Create(Prefix);
        var key = new ServerKey
        {
            Id = Guid.CreateVersion7(now),
            NetworkId = network.Id,
            Digest = Secrets.Digest(secret),
            CreatedAt = now,
            CreatedBy = actor,
        };

        await using (var tx = await Db.Database.BeginTransactionAsync(ct))
        {
            await Db.LockNetworkAsync(network.Id, ct);
            await Db.ServerKeys
                .Where(k => k.NetworkId == network.Id && k.ExpiresAt != null && k.ExpiresAt > now)
                .ExecuteUpdateAsync(s => s.SetProperty(k => k.ExpiresAt, now), ct);
            await Db.ServerKeys
                .Where(k => k.NetworkId == network.Id && k.ExpiresAt == null)
                .ExecuteUpdateAsync(s => s.SetProperty(k => k.ExpiresAt, graceEnds), ct);
            Db.ServerKeys.Add(key);
            await Db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
        }

        audit.Record(SecurityEvents.ServerKeyGenerated(actor, network.Id, key.Id, graceEnds));
        return (secret, null);
    }

    public Task<List<ServerKey>> ListAsync(string networkId, CancellationToken ct = default) =>
        Db.ServerKeys.AsNoTracking().Where(k => k.NetworkId == networkId).OrderByDescending(k => k.CreatedAt).ToListAsync(ct);

    /// <summary>
    /// The key presented, whether it is valid now, and whether its network requires mTLS: read in the same query
    /// because the mint path is bound by its database round trips (docs/benchmarks.md). A key that is known but no
    /// longer valid comes back with its refusal, so mTLS can be judged before a caller learns that.
    /// </summary>
    public async Task<(ServerKey? Key, bool MtlsRequired, Refusal? Error)> AuthenticateAsync(string presented, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(presented))
            return (null, false, Errors.ServerKeyMissing);
        if (presented.Length > MaxPresentedLength)
            return (null, false, Errors.ServerKeyInvalid);

        // Looked up by digest: the index sees only a hash of the secret, and the final comparison is
        // constant-time, so response timing reveals nothing about how close a guess was.
        var digest = Secrets.Digest(presented);
        var found = await known.GetAsync(digest, (Service: this, digest, ct), static read => KeyByDigest.RunAsync(read.Service.Db, read.digest, read.ct));
        if (found is null || !Secrets.DigestsEqual(found.Key.Digest, digest))
            return (null, false, Errors.ServerKeyInvalid);
        var key = found.Key;

        var now = clock.GetUtcNow();
        if (key.ExpiresAt is { } expiresAt && now >= expiresAt)
            return (key, found.MtlsEnabled, Errors.ServerKeyExpired);

        // Last use is shown to a minute; writing it on every call would put a disk write on the mint path.
        if (key.LastUsedAt is not { } lastUsed || now - lastUsed >= LastUsedResolution)
        {
            var stale = now - LastUsedResolution;
            await Db.ServerKeys
                .Where(k => k.Id == key.Id && (k.LastUsedAt == null || k.LastUsedAt <= stale))
                .ExecuteUpdateAsync(s => s.SetProperty(k => k.LastUsedAt, now), ct);
        }
        return (key, found.MtlsEnabled, null);
    }
}
