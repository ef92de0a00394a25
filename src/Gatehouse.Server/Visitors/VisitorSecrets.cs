using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Visitors;

/// <summary>
/// A network's visitor secrets: generated on demand, shown once, kept encrypted. A new secret puts the previous
/// one on the server keys' grace period (<c>Gatehouse:ServerKeyGracePeriod</c>), so backends can be redeployed;
/// one already in its grace ends at once, so a network never has more than two valid secrets.
/// </summary>
internal sealed class VisitorSecrets(GatehouseDb db, IDataProtectionProvider dataProtection, AuditLog audit, TimeProvider clock,
    IOptions<GatehouseOptions> options)
{
    private const string Prefix = "gvs_";
    private readonly IDataProtector _protector = dataProtection.CreateProtector("Gatehouse.VisitorSecrets.v1");

    /// <summary>Returns the new secret: the only moment it is shown.</summary>
    public async Task<string> GenerateAsync(Network network, string actor, CancellationToken ct = default)
    {
        var now = clock.GetUtcNow();
        var graceEnds = now + options.Value.ServerKeyGracePeriod;
        var secret = Secrets.Create(Prefix);
        var row = new VisitorSecret
        {
            Id = Guid.CreateVersion7(now),
            NetworkId = network.Id,
            ProtectedSecret = _protector.Protect(secret),
            CreatedAt = now,
            CreatedBy = actor,
        };
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            await db.LockNetworkAsync(network.Id, ct);
            await db.VisitorSecrets.Where(s => s.NetworkId == network.Id && s.ExpiresAt != null && s.ExpiresAt > now)
                .ExecuteUpdateAsync(s => s.SetProperty(x => x.ExpiresAt, now), ct);
            await db.VisitorSecrets.Where(s => s.NetworkId == network.Id && s.ExpiresAt == null)
                .ExecuteUpdateAsync(s => s.SetProperty(x => x.ExpiresAt, graceEnds), ct);
            db.VisitorSecrets.Add(row);
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
        }
        audit.Record(SecurityEvents.VisitorSecretGenerated(actor, network.Id, row.Id, graceEnds));
        return secret;
    }

    /// <summary>The secrets a signature may be made with now (the newest, and one in its grace).</summary>
    public async Task<IReadOnlyList<string>> ValidAsync(string networkId, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var rows = await db.VisitorSecrets.AsNoTracking()
            .Where(s => s.NetworkId == networkId && (s.ExpiresAt == null || s.ExpiresAt > now))
            .Select(s => s.ProtectedSecret)
            .ToListAsync(ct);
        return rows.Select(_protector.Unprotect).ToList();
    }

    public Task<List<VisitorSecret>> ListAsync(string networkId, CancellationToken ct = default) =>
        db.VisitorSecrets.AsNoTracking().Where(s => s.NetworkId == networkId).OrderByDescending(s => s.CreatedAt).ToListAsync(ct);
}
