namespace Gatehouse.Server.Admins;

/// <summary>A console account.</summary>
internal sealed class Admin
{
    public Guid Id { get; init; }
    public required string Email { get; init; }
    public required string PasswordHash { get; set; }

    /// <summary>The portal owner: creates networks and admins and assigns roles, but generates no keys.</summary>
    public bool IsSuperAdmin { get; init; }

    /// <summary>True for a generated one-time password: the console demands a new one at first sign-in.</summary>
    public bool MustChangePassword { get; set; }

    /// <summary>Release 0.1.0's lockout counter; from 0.2.0 on the lockout lives in <see cref="SignInLock"/> (kept while 0.1.0 may serve).</summary>
    public int FailedSignIns { get; set; }

    /// <summary>Release 0.1.0's lockout end; see <see cref="FailedSignIns"/>.</summary>
    public DateTimeOffset? LockedUntil { get; set; }

    /// <summary>Changes on sign-out and password change; a console cookie carrying an older one is refused.</summary>
    public required string SecurityStamp { get; set; }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Set by a super admin: the account signs in nowhere and its admin tokens were revoked; its rows and audit trail stay.</summary>
    public DateTimeOffset? DisabledAt { get; set; }

    /// <summary>
    /// The TOTP secret (RFC 6238), encrypted with Data Protection (<see cref="TwoFactor"/>); set but not yet confirmed
    /// while <see cref="TwoFactorEnabledAt"/> is null.
    /// </summary>
    public string? TwoFactorSecret { get; set; }

    /// <summary>When the admin proved its authenticator with a code: from then on sign-in asks for one.</summary>
    public DateTimeOffset? TwoFactorEnabledAt { get; set; }

    /// <summary>The last TOTP time step accepted: a code is good once, so one seen over a shoulder cannot be replayed.</summary>
    public long TwoFactorLastStep { get; set; }

    public bool HasTwoFactor => TwoFactorEnabledAt is not null;
}

/// <summary>One of an admin's single-use recovery codes, kept as a digest; used when the authenticator is lost.</summary>
internal sealed class RecoveryCode
{
    public Guid Id { get; init; }
    public Guid AdminId { get; init; }
    public required string Digest { get; init; }
    public DateTimeOffset? UsedAt { get; set; }
}

/// <summary>Settings of the whole portal, one row, changed by a super admin.</summary>
internal sealed class PortalSettings
{
    public const int SingletonId = 1;
    public int Id { get; init; } = SingletonId;

    /// <summary>Every console admin must sign in with a second factor; one who has none is asked to set it up first.</summary>
    public bool TwoFactorRequired { get; set; }
}

/// <summary>
/// The console's sign-in lockout for one email address, whether or not an account has it, so an unknown address
/// answers and locks exactly as a known one does. Keyed by a digest of the normalised address: addresses nobody
/// owns are not kept in clear. Counted with conditional updates, so parallel attempts check at most the limit.
/// </summary>
internal sealed class SignInLock
{
    public required string EmailDigest { get; init; }

    /// <summary>Attempts counted since the last success or lock, including those still being checked.</summary>
    public int Attempts { get; set; }

    public DateTimeOffset? LockedUntil { get; set; }
}

/// <summary>
/// An Admin's request to add an email to its network. Only a super admin adds it (creating the account, or linking
/// one that exists), so an Admin can neither link someone else's account into its network nor learn whether an email
/// has an account: the request is answered the same either way.
/// </summary>
internal sealed class AdminRequest
{
    public Guid Id { get; init; }
    public required string NetworkId { get; init; }
    public required string Email { get; init; }
    public ConsoleRole Role { get; set; }
    public bool CanAccessSecureMode { get; set; }
    public required string RequestedBy { get; set; }
    public DateTimeOffset RequestedAt { get; set; }
}

internal enum ConsoleRole
{
    Viewer,
    Admin,
}

/// <summary>What one admin may do in one network. No row: nothing (deny by default).</summary>
internal sealed class AdminMembership
{
    public Guid AdminId { get; init; }
    public required string NetworkId { get; init; }
    public ConsoleRole Role { get; set; }

    /// <summary>The "Access Secure Mode" permission: generating server keys (and, later, admin tokens).</summary>
    public bool CanAccessSecureMode { get; set; }

    /// <summary>A disabled admin keeps its row (and its audit trail) but can do nothing here, tokens included.</summary>
    public bool Disabled { get; set; }
}
