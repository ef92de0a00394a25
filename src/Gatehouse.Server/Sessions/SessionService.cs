using Gatehouse.Server.Api;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Networks;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Sessions;

/// <summary>What a client is handed when a session opens or refreshes.</summary>
public sealed record IssuedSession(Session Session, User User, string AccessToken, string RefreshToken, DateTimeOffset IssuedAt);

public static class RevokeReasons
{
    public const string DeviceRebound = "device_rebound";
    public const string SessionCap = "session_cap";
    public const string Logout = "logout";
    public const string RefreshReuse = "refresh_reuse";
    public const string Banned = "banned";
}

/// <summary>Opens, refreshes and ends sessions. Each change is one transaction.</summary>
public sealed class SessionService(GatehouseDb db, AccessTokens accessTokens, SessionRefreshLimiter refreshLimiter, TimeProvider clock,
    IOptions<GatehouseOptions> options)
{
    private const string RefreshPrefix = "grt_";

    public async Task<(IssuedSession? Issued, ApiError? Error)> CreateAsync(Network network, SessionRequest request, CancellationToken ct)
    {
        // A first login that races another for the same new userId loses on the unique index; once more
        // finds the user the other created.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await TryCreateAsync(network, request, ct);
            }
            catch (DbUpdateException) when (attempt < 3)
            {
                db.ChangeTracker.Clear();
            }
        }
    }

    private async Task<(IssuedSession? Issued, ApiError? Error)> TryCreateAsync(Network network, SessionRequest request, CancellationToken ct)
    {
        var settings = options.Value.Sessions;
        var now = clock.GetUtcNow();
        var deviceId = request.DeviceId!;
        await using var tx = await db.Database.BeginTransactionAsync(ct);

        var user = await db.Users.FirstOrDefaultAsync(u => u.NetworkId == network.Id && u.UserId == request.UserId, ct);
        if (user is null)
        {
            user = new User
            {
                Id = Secrets.NewId(),
                NetworkId = network.Id,
                UserId = request.UserId!,
                DisplayName = request.DisplayName,
                CreatedAt = now,
                UpdatedAt = now,
            };
            db.Users.Add(user);
        }
        else if (user.IsGlobalBan)
        {
            return (null, Errors.UserBanned);
        }
        else if (request.DisplayName is { Length: > 0 } displayName && displayName != user.DisplayName)
        {
            user.DisplayName = displayName;
            user.UpdatedAt = now;
        }

        // A device belongs to one user at a time: whoever registered it before is signed out of it. The binding
        // row is written first so concurrent logins on this device wait for each other.
        var bound = await db.DeviceBindings.Where(d => d.NetworkId == network.Id && d.DeviceId == deviceId)
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.UserRef, user.Id).SetProperty(d => d.BoundAt, now), ct);
        if (bound == 0)
            db.DeviceBindings.Add(new DeviceBinding { NetworkId = network.Id, DeviceId = deviceId, UserRef = user.Id, BoundAt = now });
        await db.Sessions
            .Where(s => s.NetworkId == network.Id && s.DeviceId == deviceId && s.UserRef != user.Id && s.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.RevokedAt, now).SetProperty(x => x.RevokedReason, RevokeReasons.DeviceRebound), ct);

        // The SDKs renew by opening a new session; the cap keeps renewals from piling up live tokens.
        var beyondCap = await db.Sessions
            .Where(s => s.UserRef == user.Id && s.DeviceId == deviceId && s.RevokedAt == null && s.ExpiresAt > now)
            .OrderByDescending(s => s.CreatedAt)
            .Skip(settings.MaxPerUserAndDevice - 1)
            .Select(s => s.Id)
            .ToListAsync(ct);
        if (beyondCap.Count > 0)
        {
            await db.Sessions.Where(s => beyondCap.Contains(s.Id))
                .ExecuteUpdateAsync(s => s.SetProperty(x => x.RevokedAt, now).SetProperty(x => x.RevokedReason, RevokeReasons.SessionCap), ct);
        }

        var session = new Session
        {
            Id = Guid.CreateVersion7(now),
            NetworkId = network.Id,
            UserRef = user.Id,
            DeviceId = deviceId,
            DeviceKind = request.DeviceInfo?.Kind,
            DeviceModel = request.DeviceInfo?.Model,
            SdkVersion = request.DeviceInfo?.SdkVersion,
            CreatedAt = now,
            ExpiresAt = accessTokens.ExpiryFrom(now),
        };
        db.Sessions.Add(session);
        var refreshToken = AddRefreshToken(session.Id, now);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);

        return (new IssuedSession(session, user, accessTokens.Issue(session, user.UserId, now), refreshToken, now), null);
    }

    /// <summary>Trades a refresh token for new tokens; a second use of one ends the session.</summary>
    public async Task<(IssuedSession? Issued, ApiError? Error)> RefreshAsync(Network network, string presented, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var digest = Secrets.Digest(presented);
        await using var tx = await db.Database.BeginTransactionAsync(ct);

        var row = await db.RefreshTokens.AsNoTracking().FirstOrDefaultAsync(r => r.Digest == digest, ct);
        var session = row is null ? null : await db.Sessions.FirstOrDefaultAsync(s => s.Id == row.SessionId, ct);
        if (row is null || session is null || session.NetworkId != network.Id || !Secrets.DigestsEqual(row.Digest, digest))
            return (null, Errors.RefreshTokenInvalid);
        if (!refreshLimiter.TryAcquire(session.Id))
            // The window is a minute, so a minute is the longest wait.
            return (null, Errors.TooManyRequests(60));
        var user = await db.Users.FirstAsync(u => u.Id == session.UserRef, ct);
        if (user.IsGlobalBan)
            return (null, Errors.UserBanned);
        if (session.RevokedAt is not null)
            return (null, Errors.SessionEnded);

        if (row.UsedAt is null && now >= row.ExpiresAt)
            return (null, Errors.RefreshTokenExpired);

        // Claimed with a conditional update, so of many concurrent uses exactly one wins.
        var claimed = row.UsedAt is null && await db.RefreshTokens
            .Where(r => r.Digest == digest && r.UsedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.UsedAt, now), ct) == 1;
        if (!claimed)
        {
            session.RevokedAt = now;
            session.RevokedReason = RevokeReasons.RefreshReuse;
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
            return (null, Errors.RefreshTokenReused);
        }

        session.ExpiresAt = accessTokens.ExpiryFrom(now);
        var refreshToken = AddRefreshToken(session.Id, now);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return (new IssuedSession(session, user, accessTokens.Issue(session, user.UserId, now), refreshToken, now), null);
    }

    /// <summary>Ends a session at once: its access and refresh tokens are refused from now on.</summary>
    public async Task<bool> RevokeAsync(Guid sessionId, string reason, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        return await db.Sessions
            .Where(s => s.Id == sessionId && s.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.RevokedAt, now).SetProperty(x => x.RevokedReason, reason), ct) == 1;
    }

    private string AddRefreshToken(Guid sessionId, DateTimeOffset now)
    {
        var secret = Secrets.Create(RefreshPrefix);
        db.RefreshTokens.Add(new RefreshToken
        {
            Digest = Secrets.Digest(secret),
            SessionId = sessionId,
            IssuedAt = now,
            ExpiresAt = now + options.Value.Sessions.RefreshTokenLifetime,
        });
        return secret;
    }
}
