using Gatehouse.Server.Audit;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Users;

internal sealed record UserPage(IReadOnlyList<User> Users, int Total);

/// <summary>What an admin does to a network's users: find them, end their sessions, ban and unban them.</summary>
internal sealed class UserAdministration(RequestDb requestDb, KnownUsers known, AuditLog audit, TimeProvider clock)
{
    private GatehouseDb Db => requestDb.Context;

    /// <summary>Every admin-API call on a user starts here: translated once (docs/benchmarks.md).</summary>
    private static readonly CompiledQuery<string, string, User?> ByUserId =
        new((db, networkId, userId, ct) => db.Users.FirstOrDefault(u => u.NetworkId == networkId && u.UserId == userId));

    private static readonly CompiledQuery<string, string, User?> ViewByUserId =
        new((db, networkId, userId, ct) => db.Users.AsNoTracking().FirstOrDefault(u => u.NetworkId == networkId && u.UserId == userId));

    /// <summary>Tracked: a ban changes the row it returns.</summary>
    public Task<User?> FindAsync(string networkId, string userId, CancellationToken ct) => ByUserId.RunAsync(Db, networkId, userId, ct);

    /// <summary>The user as last committed, to show, never to change: the row may be shared with other requests.</summary>
    public ValueTask<User?> ViewAsync(string networkId, string userId, CancellationToken ct) =>
        known.GetAsync(networkId, userId, (Administration: this, networkId, userId, ct),
            static read => ViewByUserId.RunAsync(read.Administration.Db, read.networkId, read.userId, read.ct));

    /// <param name="kind">Only users of this kind; null for every kind.</param>
    public async Task<UserPage> ListAsync(string networkId, string? search, UserKind? kind, int page, int limit, CancellationToken ct)
    {
        var query = Db.Users.AsNoTracking().Where(u => u.NetworkId == networkId);
        if (kind is { } only)
            query = query.Where(u => u.Kind == only);
        if (!string.IsNullOrEmpty(search))
            query = query.Where(u => u.UserId.Contains(search) || (u.DisplayName != null && u.DisplayName.Contains(search)));
        var total = await query.CountAsync(ct);
        var users = await query.OrderBy(u => u.UserId).Skip((page - 1) * limit).Take(limit).ToListAsync(ct);
        return new UserPage(users, total);
    }

    /// <summary>How many users of each kind the network has (the console shows visitors and bots apart).</summary>
    public async Task<Dictionary<UserKind, int>> CountByKindAsync(string networkId, CancellationToken ct) =>
        await Db.Users.AsNoTracking().Where(u => u.NetworkId == networkId).GroupBy(u => u.Kind)
            .Select(g => new { Kind = g.Key, Count = g.Count() })
            .ToDictionaryAsync(g => g.Kind, g => g.Count, ct);

    /// <summary>The user's sessions that still stand (not ended, not expired), newest first.</summary>
    public Task<List<Session>> LiveSessionsAsync(User user, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        return Db.Sessions.AsNoTracking().Where(s => s.UserRef == user.Id && s.RevokedAt == null && s.ExpiresAt > now)
            .OrderByDescending(s => s.CreatedAt).ToListAsync(ct);
    }

    /// <summary>Ends one session of the user; false when it is not the user's or already ended.</summary>
    public async Task<bool> EndSessionAsync(User user, Guid sessionId, string actor, RequestOrigin? origin, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var ended = await Db.Sessions.Where(s => s.Id == sessionId && s.UserRef == user.Id && s.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.RevokedAt, now).SetProperty(x => x.RevokedReason, "admin_revoked"), ct) == 1;
        if (ended)
            audit.Record(SecurityEvents.SessionEndedByAdmin(actor, user.NetworkId, user.UserId, sessionId), origin);
        return ended;
    }

    /// <summary>Ends every live session of the user: its access and refresh tokens are refused from now on.</summary>
    public async Task<int> RevokeSessionsAsync(User user, string reason, string actor, RequestOrigin? origin, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var ended = await SessionEnds.EndAsync(Db, s => s.UserRef == user.Id, reason, now, ct);
        audit.Record(SecurityEvents.UserSessionsRevoked(actor, user.NetworkId, user.UserId, reason, ended), origin);
        return ended;
    }

    /// <summary>
    /// A ban refuses the user's logins and live tokens with 400312 and ends its sessions, so an unban does not
    /// bring old tokens back. Auth tokens already minted stay valid (as the hosted product documents).
    /// </summary>
    /// <param name="why">The admin's reason, kept in the audit log.</param>
    public async Task SetBanAsync(User user, bool banned, string actor, RequestOrigin? origin, CancellationToken ct, string? why = null)
    {
        var now = clock.GetUtcNow();
        await using var tx = await Db.Database.BeginTransactionAsync(ct);
        user.IsGlobalBan = banned;
        user.UpdatedAt = now;
        await Db.SaveChangesAsync(ct);
        if (banned)
        {
            await SessionEnds.EndAsync(Db, s => s.UserRef == user.Id, RevokeReasons.Banned, now, ct);
        }
        await tx.CommitAsync(ct);
        audit.Record(SecurityEvents.UserBanChanged(actor, user.NetworkId, user.UserId, banned, why), origin);
    }
}
