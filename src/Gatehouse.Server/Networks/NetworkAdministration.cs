using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Networks;

/// <summary>What an operator (and later the console) does to a network. Every change is audited.</summary>
public sealed class NetworkAdministration(GatehouseDb db, AuditLog audit, TimeProvider clock, IOptions<GatehouseOptions> options)
{
    public async Task<Network> CreateAsync(string name, string actor, CancellationToken ct = default)
    {
        var now = clock.GetUtcNow();
        var network = new Network
        {
            Id = Secrets.NewId(now),
            Name = name,
            Region = options.Value.Region,
            ApiKey = ApiKeys.Create(options.Value.Region),
            CreatedAt = now,
        };
        db.Networks.Add(network);
        await db.SaveChangesAsync(ct);
        audit.Record(AuditKinds.NetworkCreated, Outcomes.Success, actor, network.Id, detail: $"name={name}");
        return network;
    }

    public Task<Network?> FindAsync(string networkId, CancellationToken ct = default) =>
        db.Networks.FirstOrDefaultAsync(n => n.Id == networkId, ct);

    public Task<List<Network>> ListAsync(CancellationToken ct = default) =>
        db.Networks.AsNoTracking().OrderBy(n => n.CreatedAt).ToListAsync(ct);

    /// <summary>The old key stops at once: every app that ships it must be updated.</summary>
    public async Task<string> RegenerateApiKeyAsync(Network network, string actor, CancellationToken ct = default)
    {
        network.ApiKey = ApiKeys.Create(network.Region);
        await db.SaveChangesAsync(ct);
        audit.Record(AuditKinds.ApiKeyRegenerated, Outcomes.Success, actor, network.Id);
        return network.ApiKey;
    }

    /// <summary>Returns why the switch is refused, or null once it is done.</summary>
    public async Task<string?> SetSecureModeAsync(Network network, bool on, string actor, CancellationToken ct = default)
    {
        if (network.SecureMode == on)
            return null;
        if (!on && network.MtlsEnabled)
            return "Secure mode cannot be turned off while mTLS is on: turn mTLS off first.";
        network.SecureMode = on;
        await db.SaveChangesAsync(ct);
        audit.Record(AuditKinds.SecureModeChanged, Outcomes.Success, actor, network.Id, detail: on ? "on" : "off");
        return null;
    }
}
