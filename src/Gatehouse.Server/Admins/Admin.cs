namespace Gatehouse.Server.Admins;

/// <summary>A console account. Roles and permissions per network arrive with the console.</summary>
public sealed class Admin
{
    public Guid Id { get; init; }
    public required string Email { get; init; }
    public required string PasswordHash { get; set; }
    public bool IsSuperAdmin { get; init; }

    /// <summary>True for a generated one-time password: the console demands a new one at first sign-in.</summary>
    public bool MustChangePassword { get; set; }

    public DateTimeOffset CreatedAt { get; init; }
}
