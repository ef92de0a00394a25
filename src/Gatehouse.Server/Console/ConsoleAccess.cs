using Gatehouse.Server.Admins;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Console;

/// <summary>
/// What the signed-in admin may do in one network, decided on the server for every request. Deny by default:
/// no membership, no access; super admins see every network and manage settings, but (as the hosted product
/// insists) never generate a server key.
/// </summary>
internal sealed record NetworkAccess(Network Network, bool IsSuperAdmin, ConsoleRole? Role, bool CanAccessSecureMode)
{
    public bool CanManageSettings => IsSuperAdmin || Role == ConsoleRole.Admin;

    /// <summary>
    /// The switches that decide who may sign in and how (secure mode, mTLS, certificates) and others' admin tokens:
    /// a super admin, or an Admin of this network with the Access Secure Mode permission.
    /// </summary>
    public bool CanChangeSecurity => IsSuperAdmin || (Role == ConsoleRole.Admin && CanAccessSecureMode);

    public bool CanGenerateServerKey => WhyNoServerKey is null;

    public string? WhyNoServerKey =>
        IsSuperAdmin ? "A super admin cannot generate a server key; an Admin of this network with the Access Secure Mode permission can."
        : Role != ConsoleRole.Admin ? "Only an Admin of this network can generate a server key."
        : !CanAccessSecureMode ? "Generating a server key needs the Access Secure Mode permission."
        : !Network.SecureMode ? "Turn secure mode on first."
        : null;
}

internal sealed class ConsoleAccess(GatehouseDb db)
{
    public Task<bool> TwoFactorRequiredAsync(CancellationToken ct) => db.PortalSettings.AnyAsync(s => s.TwoFactorRequired, ct);

    public async Task<List<Network>> VisibleNetworksAsync(Admin admin, CancellationToken ct)
    {
        if (admin.IsSuperAdmin)
            return await db.Networks.AsNoTracking().OrderBy(n => n.Name).ToListAsync(ct);
        return await db.AdminMemberships.Where(m => m.AdminId == admin.Id && !m.Disabled)
            .Join(db.Networks, m => m.NetworkId, n => n.Id, (_, n) => n)
            .AsNoTracking().OrderBy(n => n.Name).ToListAsync(ct);
    }

    /// <summary>Null when the admin may not see the network at all (answered as "not found").</summary>
    public async Task<NetworkAccess?> ForAsync(Admin admin, string networkId, CancellationToken ct)
    {
        var network = await db.Networks.FirstOrDefaultAsync(n => n.Id == networkId, ct);
        if (network is null)
            return null;
        if (admin.IsSuperAdmin)
            return new NetworkAccess(network, true, null, false);
        var membership = await db.AdminMemberships.AsNoTracking().FirstOrDefaultAsync(m => m.AdminId == admin.Id && m.NetworkId == networkId, ct);
        return membership is null || membership.Disabled ? null : new NetworkAccess(network, false, membership.Role, membership.CanAccessSecureMode);
    }
}
