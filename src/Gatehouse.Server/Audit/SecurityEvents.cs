using System.Globalization;

namespace Gatehouse.Server.Audit;

/// <summary>
/// A security event as the rules raise it: its kind, outcome, who, where, why, and a detail for people. Made only by
/// <see cref="SecurityEvents"/>, one factory per kind, and recorded only by <see cref="AuditLog.Record"/>.
/// </summary>
public sealed record SecurityEvent(string Kind, string Outcome, string Actor, string? NetworkId = null, string? UserId = null,
    string? Reason = null, string? Detail = null)
{
    /// <summary>
    /// Stored by the transaction of the change it describes (a session's creation): recording it only logs and counts
    /// it, so it is never written twice.
    /// </summary>
    public bool StoredWithChange { get; init; }
}

/// <summary>Every kind of security event, with what each one says. The audit log's kinds are <see cref="AuditKinds"/>.</summary>
public static class SecurityEvents
{
    private static string Time(DateTimeOffset at) => at.ToString("O", CultureInfo.InvariantCulture);

    /// <summary>A credential refused before anything else was read: its kind is the credential's (server_key.refused, access.refused, ...).</summary>
    public static SecurityEvent CredentialRefused(string kind, string actor, string? networkId, string? userId, string reason) =>
        new(kind, Outcomes.Refused, actor, networkId, userId, reason);

    /// <summary>A minute's introspections of one network's tokens, summed up (a resource server may ask on every request).</summary>
    public static SecurityEvent TokensIntrospected(string networkId, long active, long inactive) =>
        new(AuditKinds.TokensIntrospected, Outcomes.Success, "server-key", networkId, Detail: $"active={active} inactive={inactive}");

    /// <summary>A request over one of the abuse limits (<c>limit</c>: client_login, auth_token_mint, console_sign_in, admin_api).</summary>
    public static SecurityEvent RateLimited(string limit, string actor, string? networkId) =>
        new(AuditKinds.RateLimited, Outcomes.Refused, actor, networkId, Reason: "rate_limited", Detail: $"limit={limit}");

    public static SecurityEvent MtlsRefused(string actor, string? networkId, string? userId, string reason) =>
        new(AuditKinds.MtlsRefused, Outcomes.Refused, actor, networkId, userId, reason);

    public static SecurityEvent NetworkCreated(string actor, string networkId, string name) =>
        new(AuditKinds.NetworkCreated, Outcomes.Success, actor, networkId, Detail: $"name={name}");

    public static SecurityEvent ApiKeyRegenerated(string actor, string networkId) => new(AuditKinds.ApiKeyRegenerated, Outcomes.Success, actor, networkId);

    public static SecurityEvent SecureModeChanged(string actor, string networkId, bool on, bool keptSessions, int sessions) =>
        new(AuditKinds.SecureModeChanged, Outcomes.Success, actor, networkId, Detail: !on ? "off"
            : keptSessions ? $"on; kept {sessions} session(s) opened without an auth token"
            : $"on; ended {sessions} session(s) opened without an auth token");

    public static SecurityEvent VisitorModeChanged(string actor, string networkId, bool on, int sessionsEnded) =>
        new(AuditKinds.VisitorModeChanged, Outcomes.Success, actor, networkId, Detail: on ? "on" : $"off; ended {sessionsEnded} visitor session(s)");

    public static SecurityEvent BotModeChanged(string actor, string networkId, bool on, int sessionsEnded) =>
        new(AuditKinds.BotModeChanged, Outcomes.Success, actor, networkId, Detail: on ? "on" : $"off; ended {sessionsEnded} bot session(s)");

    public static SecurityEvent VisitorSecretGenerated(string actor, string networkId, Guid secretId, DateTimeOffset previousValidUntil) =>
        new(AuditKinds.VisitorSecretGenerated, Outcomes.Success, actor, networkId, Detail: $"secret={secretId} previous_valid_until={Time(previousValidUntil)}");

    public static SecurityEvent UsersPruned(string networkId, int visitors, int bots) =>
        new(AuditKinds.UsersPruned, Outcomes.Success, "retention", networkId, Detail: $"inactive visitors={visitors} bots={bots}");

    public static SecurityEvent AuthTokenUseChanged(string actor, string networkId, bool singleUse) =>
        new(AuditKinds.AuthTokenUseChanged, Outcomes.Success, actor, networkId, Detail: singleUse ? "single_use" : "reusable");

    public static SecurityEvent ChatSettingsChanged(string actor, string networkId, string settings) =>
        new(AuditKinds.ChatSettingsChanged, Outcomes.Success, actor, networkId, Detail: settings);

    /// <summary>A console action the admin's rights do not allow (its kind is the action's).</summary>
    /// <param name="forAdmin">The admin the refused change was for, when the actor is someone else (the operator).</param>
    public static SecurityEvent NotPermitted(string kind, string actor, string? networkId, string? forAdmin = null) =>
        new(kind, Outcomes.Refused, actor, networkId, Reason: "not_permitted", Detail: forAdmin is null ? null : $"admin={forAdmin}");

    public static SecurityEvent ServerKeyGenerated(string actor, string networkId, Guid keyId, DateTimeOffset previousValidUntil) =>
        new(AuditKinds.ServerKeyGenerated, Outcomes.Success, actor, networkId, Detail: $"key={keyId} previous_valid_until={Time(previousValidUntil)}");

    /// <param name="mtls">Whether the backend called with a verified client certificate (the dashboard's share of calls over mTLS).</param>
    public static SecurityEvent AuthTokenMinted(string actor, string networkId, string userId, bool mtls) =>
        new(AuditKinds.AuthTokenMinted, Outcomes.Success, actor, networkId, userId, Detail: Mtls(mtls));

    /// <summary>Last in a detail, so that no value before it (a device id) can pass for it.</summary>
    private static string Mtls(bool verified) => verified ? "mtls=true" : "mtls=false";

    public static SecurityEvent AuthTokenRefused(string actor, string networkId, string? userId, string reason) =>
        new(AuditKinds.AuthTokenRefused, Outcomes.Refused, actor, networkId, userId, reason);

    /// <param name="backend">The server key that opened the session for its app, if a backend did.</param>
    /// <param name="backendMtls">Whether that backend called with a verified client certificate.</param>
    /// <param name="deviceId">The app's own text: stored percent-encoded, so a space or "=" in it cannot read as another field.</param>
    public static SecurityEvent SessionCreated(string userId, string networkId, Guid sessionId, string deviceId, string? backend = null, bool backendMtls = false) =>
        new(AuditKinds.SessionCreated, Outcomes.Success, backend ?? $"user:{userId}", networkId, userId,
            Detail: backend is null ? $"session={sessionId} device={Uri.EscapeDataString(deviceId)}"
                : $"session={sessionId} device={Uri.EscapeDataString(deviceId)} {Mtls(backendMtls)}")
        {
            StoredWithChange = true,
        };

    /// <param name="backend">The server key that asked, when a backend asked for the session.</param>
    public static SecurityEvent SessionRefused(string networkId, string? userId, string reason, string? backend = null) =>
        new(AuditKinds.SessionRefused, Outcomes.Refused, backend ?? "api-key", networkId, userId, reason);

    public static SecurityEvent RefreshReused(string networkId, string reason) =>
        new(AuditKinds.RefreshReuse, Outcomes.Refused, "api-key", networkId, Reason: reason);

    public static SecurityEvent SessionRefreshed(string userId, string networkId, Guid sessionId) =>
        new(AuditKinds.SessionRefreshed, Outcomes.Success, $"user:{userId}", networkId, userId, Detail: $"session={sessionId}");

    public static SecurityEvent LoggedOut(string userId, string networkId, Guid sessionId, string reason) =>
        new(AuditKinds.SessionRevoked, Outcomes.Success, $"user:{userId}", networkId, userId, reason, $"session={sessionId}");

    public static SecurityEvent UserSessionsRevoked(string actor, string networkId, string userId, string reason, int sessions) =>
        new(AuditKinds.UserSessionsRevoked, Outcomes.Success, actor, networkId, userId, reason, $"sessions={sessions}");

    /// <param name="why">What the admin wrote as the reason, if anything.</param>
    public static SecurityEvent UserBanChanged(string actor, string networkId, string userId, bool banned, string? why = null) =>
        new(banned ? AuditKinds.UserBanned : AuditKinds.UserUnbanned, Outcomes.Success, actor, networkId, userId,
            Detail: string.IsNullOrWhiteSpace(why) ? null : $"reason: {why}");

    public static SecurityEvent SessionEndedByAdmin(string actor, string networkId, string userId, Guid sessionId) =>
        new(AuditKinds.SessionRevoked, Outcomes.Success, actor, networkId, userId, "admin_revoked", $"session={sessionId}");

    public static SecurityEvent AdminCreated(string actor, string email, bool superAdmin) =>
        new(AuditKinds.AdminCreated, Outcomes.Success, actor, Detail: $"admin={email} super_admin={superAdmin}");

    public static SecurityEvent AdminSignInRefused(string actor, string reason) => new(AuditKinds.AdminSignInRefused, Outcomes.Refused, actor, Reason: reason);

    internal static SecurityEvent AdminSignedIn(string actor, Admins.SecondFactor? secondFactor) => new(AuditKinds.AdminSignedIn, Outcomes.Success, actor,
        Detail: secondFactor switch
        {
            Admins.SecondFactor.AuthenticatorCode => "second_factor=authenticator_code",
            Admins.SecondFactor.RecoveryCode => "second_factor=recovery_code",
            _ => null,
        });

    public static SecurityEvent AdminAccountDisabled(string actor, string email, bool disabled) =>
        new(disabled ? AuditKinds.AdminDisabled : AuditKinds.AdminEnabled, Outcomes.Success, actor, Detail: $"admin={email}");

    public static SecurityEvent TwoFactorEnabled(string actor) => new(AuditKinds.TwoFactorEnabled, Outcomes.Success, actor);

    public static SecurityEvent TwoFactorDisabled(string actor, string email) =>
        new(AuditKinds.TwoFactorDisabled, Outcomes.Success, actor, Detail: $"admin={email}");

    public static SecurityEvent RecoveryCodesGenerated(string actor) => new(AuditKinds.RecoveryCodesGenerated, Outcomes.Success, actor);

    public static SecurityEvent RecoveryCodeUsed(string actor) => new(AuditKinds.RecoveryCodeUsed, Outcomes.Success, actor);

    public static SecurityEvent TwoFactorRequirementChanged(string actor, bool required) =>
        new(AuditKinds.TwoFactorRequirementChanged, Outcomes.Success, actor, Detail: required ? "required" : "optional");

    public static SecurityEvent AdminSignedOut(string actor) => new(AuditKinds.AdminSignedOut, Outcomes.Success, actor);

    public static SecurityEvent AdminPasswordChanged(string actor) => new(AuditKinds.AdminPasswordChanged, Outcomes.Success, actor);

    public static SecurityEvent AdminPasswordReset(string actor, string email) =>
        new(AuditKinds.AdminPasswordReset, Outcomes.Success, actor, Detail: $"admin={email}");

    public static SecurityEvent AdminUnlocked(string actor, string email) => new(AuditKinds.AdminUnlocked, Outcomes.Success, actor, Detail: $"admin={email}");

    public static SecurityEvent AdminRequested(string actor, string networkId, string email, string role, bool canAccessSecureMode) =>
        new(AuditKinds.AdminRequested, Outcomes.Success, actor, networkId, Detail: $"email={email} role={role} access_secure_mode={canAccessSecureMode}");

    public static SecurityEvent AdminRequestDeclined(string actor, string networkId, string email) =>
        new(AuditKinds.AdminRequestDeclined, Outcomes.Success, actor, networkId, Detail: $"email={email}");

    public static SecurityEvent AdminRoleChanged(string actor, string networkId, Guid adminId, string? role, bool canAccessSecureMode, bool disabled) =>
        new(AuditKinds.AdminRoleChanged, Outcomes.Success, actor, networkId,
            Detail: $"admin={adminId} role={role ?? "none"} access_secure_mode={canAccessSecureMode} disabled={disabled}");

    /// <param name="forAdmin">The admin holding the token, when the actor is not that admin (the operator generated it).</param>
    public static SecurityEvent AdminTokenGenerated(string actor, string networkId, Guid tokenId, DateTimeOffset expires, DateTimeOffset? previousValidUntil,
        string? forAdmin = null) =>
        new(AuditKinds.AdminTokenGenerated, Outcomes.Success, actor, networkId,
            Detail: (forAdmin is null ? "" : $"admin={forAdmin} ")
                + $"token={tokenId} expires={Time(expires)} previous={(previousValidUntil is { } until ? $"valid_until_{Time(until)}" : "revoked")}");

    public static SecurityEvent AdminTokenRevoked(string actor, string networkId, Guid tokenId, string? reason = null) =>
        new(AuditKinds.AdminTokenRevoked, Outcomes.Success, actor, networkId, Reason: reason, Detail: $"token={tokenId}");

    public static SecurityEvent SigningKeyRotated(string actor, string kid) => new(AuditKinds.SigningKeyRotated, Outcomes.Success, actor, Detail: kid);

    public static SecurityEvent SigningKeyRetired(string actor, string kid) => new(AuditKinds.SigningKeyRetired, Outcomes.Success, actor, Detail: kid);

    public static SecurityEvent CertificateCreated(string actor, string networkId, Guid certificateId, string name, string fingerprint) =>
        new(AuditKinds.CertificateCreated, Outcomes.Success, actor, networkId, Detail: $"certificate={certificateId} name={name} fingerprint={fingerprint}");

    public static SecurityEvent CertificateRefused(string actor, string networkId, string why) =>
        new(AuditKinds.CertificateCreated, Outcomes.Refused, actor, networkId, "invalid_request", why);

    public static SecurityEvent CertificateRevoked(string actor, string networkId, Guid certificateId, string name) =>
        new(AuditKinds.CertificateRevoked, Outcomes.Success, actor, networkId, Detail: $"certificate={certificateId} name={name}");

    public static SecurityEvent MtlsChanged(string actor, string networkId, bool on) =>
        new(AuditKinds.MtlsChanged, Outcomes.Success, actor, networkId, Detail: on ? "on" : "off");
}
