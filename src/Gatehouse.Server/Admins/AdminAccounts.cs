using System.Buffers.Text;
using System.Net.Mail;
using System.Security.Cryptography;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Storage;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Admins;

/// <summary>Console accounts. Passwords are hashed with ASP.NET Core Identity's PBKDF2 hasher.</summary>
public sealed class AdminAccounts(GatehouseDb db, AuditLog audit, TimeProvider clock)
{
    private static readonly PasswordHasher<Admin> Hasher = new();

    public Task<bool> AnyAsync(CancellationToken ct = default) => db.Admins.AnyAsync(ct);

    /// <summary>Creates an account with a one-time password, returned once, to be changed at first sign-in.</summary>
    public async Task<(Admin? Admin, string? Password, string? Error)> CreateAsync(string email, bool superAdmin, string actor, CancellationToken ct = default)
    {
        if (!MailAddress.TryCreate(email, out var parsed) || parsed.Address != email || email.Length > 254)
            return (null, null, $"'{email}' is not an email address.");
        var normalized = email.ToLowerInvariant();
        if (await db.Admins.AnyAsync(a => a.Email == normalized, ct))
            return (null, null, $"An admin with the email '{normalized}' already exists.");

        var password = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(15));
        var admin = new Admin
        {
            Id = Guid.CreateVersion7(clock.GetUtcNow()),
            Email = normalized,
            PasswordHash = "",
            IsSuperAdmin = superAdmin,
            MustChangePassword = true,
            CreatedAt = clock.GetUtcNow(),
        };
        admin.PasswordHash = Hasher.HashPassword(admin, password);
        db.Admins.Add(admin);
        await db.SaveChangesAsync(ct);
        audit.Record(AuditKinds.AdminCreated, Outcomes.Success, actor, detail: $"admin={admin.Id} super_admin={superAdmin}");
        return (admin, password, null);
    }
}
