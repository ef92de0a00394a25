namespace Gatehouse.Server.Admins;

/// <summary>A console account.</summary>
public sealed class Admin
{
    public Guid Id { get; init; }
    public required string Email { get; init; }
    public required string PasswordHash { get; set; }

    /// <summary>The portal owner: creates networks and admins and assigns roles, but generates no keys.</summary>
    public bool IsSuperAdmin { get; init; }

    /// <summary>True for a generated one-time password: the console demands a new one at first sign-in.</summary>
    public bool MustChangePassword { get; set; }

    public int FailedSignIns { get; set; }
    public DateTimeOffset? LockedUntil { get; set; }

    /// <summary>Changes on sign-out and password change; a console cookie carrying an older one is refused.</summary>
    public required string SecurityStamp { get; set; }

    public DateTimeOffset CreatedAt { get; init; }
}

public enum ConsoleRole
{
    Viewer,
    Admin,
}

/// <summary>What one admin may do in one network. No row: nothing (deny by default).</summary>
public sealed class AdminMembership
{
    public Guid AdminId { get; init; }
    public required string NetworkId { get; init; }
    public ConsoleRole Role { get; set; }

    /// <summary>The "Access Secure Mode" permission: generating server keys (and, later, admin tokens).</summary>
    public bool CanAccessSecureMode { get; set; }

    /// <summary>A disabled admin keeps its row (and its audit trail) but can do nothing here, tokens included.</summary>
    public bool Disabled { get; set; }
}
