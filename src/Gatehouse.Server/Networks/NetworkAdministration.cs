using System.Linq.Expressions;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Networks;

/// <summary>What an operator (and later the console) does to a network. Every change is audited.</summary>
internal sealed class NetworkAdministration(GatehouseDb db, AuditLog audit, TimeProvider clock, IOptions<GatehouseOptions> options)
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
        audit.Record(SecurityEvents.NetworkCreated(actor, network.Id, name));
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
        audit.Record(SecurityEvents.ApiKeyRegenerated(actor, network.Id));
        return network.ApiKey;
    }

    /// <summary>
    /// Switches secure mode. Turning it on ends every live session opened without an auth token (a session that
    /// never proved who its user is must not outlive the switch), unless <paramref name="keepSessions"/>; the count,
    /// ended or kept, is returned and audited. Returns why the switch is refused, or null once it is done.
    /// </summary>
    public async Task<(string? Refusal, int Sessions)> SetSecureModeAsync(Network network, bool on, string actor, bool keepSessions = false,
        CancellationToken ct = default)
    {
        if (network.SecureMode == on)
            return (null, 0);
        if (!on && network.MtlsEnabled)
            return ("Secure mode cannot be turned off while mTLS is on: turn mTLS off first.", 0);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        network.SecureMode = on;
        await db.SaveChangesAsync(ct);
        var now = clock.GetUtcNow();
        var sessions = !on ? 0
            : keepSessions ? await CountSessionsWithoutAuthTokenAsync(network.Id, ct)
            : await SessionEnds.EndAsync(db, OpenedWithoutAuthToken(network.Id), RevokeReasons.SecureModeOn, now, ct);
        await transaction.CommitAsync(ct);
        audit.Record(SecurityEvents.SecureModeChanged(actor, network.Id, on, keepSessions, sessions));
        return (null, sessions);
    }

    /// <summary>Each auth token opens one session (on), or any number until it expires (off, as hosted).</summary>
    public async Task SetSingleUseAuthTokensAsync(Network network, bool singleUse, string actor, CancellationToken ct = default)
    {
        if (network.SingleUseAuthTokens == singleUse)
            return;
        network.SingleUseAuthTokens = singleUse;
        await db.SaveChangesAsync(ct);
        audit.Record(SecurityEvents.AuthTokenUseChanged(actor, network.Id, singleUse));
    }

    /// <summary>
    /// Allows or refuses visitors' (or bots') logins. Turning it off also ends their live sessions: a network that no
    /// longer wants anonymous readers must not keep the ones it has for the rest of their tokens' 30 days.
    /// Returns how many sessions ended.
    /// </summary>
    public async Task<int> SetAnonymousModeAsync(Network network, UserKind kind, bool on, string actor, CancellationToken ct = default)
    {
        if ((kind == UserKind.Visitor ? network.VisitorsAllowed : network.BotsAllowed) == on)
            return 0;
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        if (kind == UserKind.Visitor)
            network.VisitorsAllowed = on;
        else
            network.BotsAllowed = on;
        await db.SaveChangesAsync(ct);
        var now = clock.GetUtcNow();
        var ended = on ? 0 : await SessionEnds.EndAsync(db,
            s => s.NetworkId == network.Id && db.Users.Any(u => u.Id == s.UserRef && u.Kind == kind), RevokeReasons.AnonymousModeOff, now, ct);
        await transaction.CommitAsync(ct);
        audit.Record(kind == UserKind.Visitor
            ? SecurityEvents.VisitorModeChanged(actor, network.Id, on, ended)
            : SecurityEvents.BotModeChanged(actor, network.Id, on, ended));
        return ended;
    }

    /// <summary>How many live sessions turning secure mode on would end now (for the confirmation).</summary>
    public Task<int> CountSessionsWithoutAuthTokenAsync(string networkId, CancellationToken ct = default) =>
        db.Sessions.Where(s => s.RevokedAt == null).Where(OpenedWithoutAuthToken(networkId)).CountAsync(ct);

    private static Expression<Func<Session, bool>> OpenedWithoutAuthToken(string networkId) =>
        s => s.NetworkId == networkId && !s.OpenedWithAuthToken;
}
