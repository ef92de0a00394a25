using Gatehouse.Server.Audit;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using SessionOptions = Gatehouse.Server.Configuration.SessionOptions;

namespace Gatehouse.Server.Sessions;

internal static class RevokeReasons
{
    public const string DeviceRebound = "device_rebound";
    public const string SessionCap = "session_cap";
    public const string Logout = "logout";

    /// <summary>The app revoked one of the session's tokens (RFC 7009).</summary>
    public const string ClientRevoked = "revoked";
    public const string RefreshReuse = "refresh_reuse";
    public const string Banned = "banned";
    public const string SecureModeOn = "secure_mode_on";
    public const string AnonymousModeOff = "visitor_mode_off";
}

/// <summary>A login the rules apply: every field already checked at the edge.</summary>
/// <param name="Kind">A visitor or bot login names the user its device derives (<c>VisitorIdentity</c>).</param>
/// <param name="Backend">
/// The server key (its audit actor) of the customer's backend that opened this session for an app logging in with
/// the access token alone: the identity is proven as by an auth token, and no refresh token is made (the backend
/// opens the next session).
/// </param>
internal sealed record Login(string UserId, string DeviceId, string? DisplayName, string? DeviceKind, string? DeviceModel, string? SdkVersion,
    UserKind Kind = UserKind.SignedIn, string? Backend = null, bool BackendMtls = false);

/// <summary>A session opened or renewed, with the refresh token only the client will hold.</summary>
/// <param name="Raised">For a new session, its <c>session.created</c> event, stored in the same transaction.</param>
internal sealed record Opened(Session Session, User User, string? RefreshToken, DateTimeOffset IssuedAt, SecurityEvent? Raised = null)
{
    // The refresh token is a secret: never in a log line or a debugger's summary.
    public override string ToString() => $"Opened {{ Session = {Session.Id} }}";
}

/// <summary>The rows of one network that a group's logins read and change.</summary>
internal sealed class LoginRows
{
    /// <summary>
    /// The network's visitor and bot switches as read inside the group's transaction (only when the group has visitor
    /// or bot logins): a switch turned off while a login was on its way must refuse it, not let it outlive the
    /// revocation of its kind's sessions.
    /// </summary>
    public bool VisitorsAllowed { get; set; }
    public bool BotsAllowed { get; set; }

    public Dictionary<string, User> Users { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, DeviceBinding> Bindings { get; } = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<Session>> _unrevokedByDevice = new(StringComparer.Ordinal);

    /// <summary>The device's sessions not revoked when the group began, oldest first, plus those the group opened.</summary>
    public List<Session> UnrevokedSessionsOn(string deviceId)
    {
        if (!_unrevokedByDevice.TryGetValue(deviceId, out var sessions))
            _unrevokedByDevice.Add(deviceId, sessions = []);
        return sessions;
    }
}

/// <summary>The rows a group's logins create, written together after all of them are applied.</summary>
internal sealed class NewRows
{
    public List<User> Users { get; } = [];
    public List<DeviceBinding> Bindings { get; } = [];
    public List<Session> Sessions { get; } = [];
    public List<RefreshToken> RefreshTokens { get; } = [];
    public List<AuditEvent> AuditEvents { get; } = [];
}

/// <summary>
/// What logging in, refreshing and logging out do to a user's rows, decided on rows already read and at a given
/// time: no database, no clock, no HTTP, so each rule is tested on its own (SessionRulesTests). The session writer
/// reads the rows, applies these rules and writes what they changed.
/// </summary>
internal static class SessionRules
{
    private const string RefreshPrefix = "grt_";

    /// <summary>
    /// A login on <paramref name="rows"/>: the user is created on first login (or its display name updated), the
    /// device is bound to it (signing out whoever had it), sessions past the per-device cap end, and a session opens
    /// with its refresh token and its audit event. A user is one kind for life: a visitor or bot is never signed in as
    /// a user (488999 / 488998), and a device whose visitor id a signed-in user holds gets no visitor.
    /// </summary>
    public static (Opened? Opened, Refusal? Refusal) Login(LoginRows rows, NewRows created, Network network, Login login, string? clientAddress,
        DateTimeOffset now, SessionOptions settings)
    {
        var deviceId = login.DeviceId;
        if (login.Kind == UserKind.Visitor && !rows.VisitorsAllowed)
            return (null, Errors.VisitorModeOff);
        if (login.Kind == UserKind.Bot && !rows.BotsAllowed)
            return (null, Errors.BotModeOff);
        if (!rows.Users.TryGetValue(login.UserId, out var user))
        {
            user = new User
            {
                Id = Secrets.NewId(now),
                NetworkId = network.Id,
                UserId = login.UserId,
                DisplayName = login.Kind == UserKind.SignedIn ? login.DisplayName : null,
                Kind = login.Kind,
                CreatedAt = now,
                UpdatedAt = now,
            };
            created.Users.Add(user);
            rows.Users.Add(user.UserId, user);
        }
        else if (user.Kind != login.Kind)
        {
            return (null, Errors.NotPermittedFor(user.Kind) ?? Errors.DeviceHasSignedInUser);
        }
        else if (user.IsGlobalBan)
        {
            return (null, Errors.UserBanned);
        }
        else if (login.Kind == UserKind.SignedIn && login.DisplayName is { Length: > 0 } displayName && displayName != user.DisplayName)
        {
            user.DisplayName = displayName;
            user.UpdatedAt = now;
        }

        // A device belongs to one user at a time: whoever registered it before is signed out of it.
        if (rows.Bindings.TryGetValue(deviceId, out var binding))
        {
            // A returning user's device stays as it was bound: no row to write on the most frequent login.
            if (binding.UserRef != user.Id)
            {
                binding.UserRef = user.Id;
                binding.BoundAt = now;
            }
        }
        else
        {
            binding = new DeviceBinding { NetworkId = network.Id, DeviceId = deviceId, UserRef = user.Id, BoundAt = now };
            created.Bindings.Add(binding);
            rows.Bindings.Add(deviceId, binding);
        }
        var onDevice = rows.UnrevokedSessionsOn(deviceId);
        foreach (var other in onDevice.Where(s => s.UserRef != user.Id && s.RevokedAt is null))
            Revoke(other, now, RevokeReasons.DeviceRebound);

        // The SDKs renew by opening a new session; the cap keeps renewals from piling up live tokens. Newest first:
        // by creation time, then by the order written (a group can open several in the same instant).
        var beyondCap = onDevice
            .Select((session, order) => (session, order))
            .Where(x => x.session.UserRef == user.Id && x.session.RevokedAt is null && x.session.ExpiresAt > now)
            .OrderByDescending(x => x.session.CreatedAt).ThenByDescending(x => x.order)
            .Skip(settings.MaxPerUserAndDevice - 1)
            .ToList();
        foreach (var (session, _) in beyondCap)
            Revoke(session, now, RevokeReasons.SessionCap);

        var opened = new Session
        {
            Id = IdRandom.Version7(now),
            NetworkId = network.Id,
            UserRef = user.Id,
            DeviceId = deviceId,
            DeviceKind = login.DeviceKind,
            DeviceModel = login.DeviceModel,
            SdkVersion = login.SdkVersion,
            CreatedAt = now,
            ExpiresAt = now + settings.AccessTokenLifetime,
            OpenedWithAuthToken = network.SecureMode || login.Backend is not null,
            OpenedFrom = clientAddress,
        };
        created.Sessions.Add(opened);
        onDevice.Add(opened);

        string? refreshToken = null;
        if (login.Backend is null)
        {
            (var refreshRow, refreshToken) = NewRefreshToken(opened, now, settings);
            created.RefreshTokens.Add(refreshRow);
        }
        var raised = SecurityEvents.SessionCreated(user.UserId, network.Id, opened.Id, deviceId, login.Backend, login.BackendMtls);
        created.AuditEvents.Add(AuditLog.Row(raised, now, clientAddress));
        return (new Opened(opened, user, refreshToken, now, raised), null);
    }

    /// <summary>Whether a presented refresh token is one of this network's: it must exist and match in constant time.</summary>
    public static bool IsKnown(RefreshToken? row, Session? session, string networkId, string digest) =>
        row is not null && session is not null && session.NetworkId == networkId && Secrets.DigestsEqual(row.Digest, digest);

    /// <summary>
    /// Why a known refresh token may not renew its session, judged before it is claimed; null if it may: a ban, an
    /// ended session, a visitor or bot whose network no longer allows its kind, the session's absolute end, then the
    /// token's own expiry.
    /// </summary>
    public static Refusal? RenewalRefusal(RefreshToken row, Session session, User user, Network network, DateTimeOffset now, SessionOptions settings) =>
        user.IsGlobalBan ? Errors.UserBanned
        : user.Kind == UserKind.Visitor && !network.VisitorsAllowed ? Errors.VisitorModeOff
        : user.Kind == UserKind.Bot && !network.BotsAllowed ? Errors.BotModeOff
        : session.RevokedAt is not null ? Errors.SessionEnded
        : now >= session.EndsBy(settings.AbsoluteLifetime) ? Errors.SessionTooOld
        : row.UsedAt is null && now >= row.ExpiresAt ? Errors.RefreshTokenExpired
        : null;

    /// <summary>A refresh renews the tokens, never the session: both stop at its absolute end.</summary>
    public static (RefreshToken Row, string Secret) Renew(Session session, DateTimeOffset now, string? clientAddress, SessionOptions settings)
    {
        session.LastRefreshedAt = now;
        session.LastRefreshedFrom = clientAddress;
        session.ExpiresAt = Min(now + settings.AccessTokenLifetime, session.EndsBy(settings.AbsoluteLifetime));
        return NewRefreshToken(session, now, settings);
    }

    /// <summary>The row (a digest) and the secret it stands for, which only the client ever holds.</summary>
    public static (RefreshToken Row, string Secret) NewRefreshToken(Session session, DateTimeOffset now, SessionOptions settings)
    {
        var secret = Secrets.Create(RefreshPrefix);
        return (new RefreshToken
        {
            Digest = Secrets.Digest(secret),
            SessionId = session.Id,
            IssuedAt = now,
            ExpiresAt = Min(now + settings.RefreshTokenLifetime, session.EndsBy(settings.AbsoluteLifetime)),
        }, secret);
    }

    public static void Revoke(Session session, DateTimeOffset now, string reason)
    {
        session.RevokedAt = now;
        session.RevokedReason = reason;
    }

    private static DateTimeOffset Min(DateTimeOffset first, DateTimeOffset second) => first < second ? first : second;
}
