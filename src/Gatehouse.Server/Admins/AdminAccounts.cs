using System.Buffers.Text;
using System.Net.Mail;
using System.Security.Cryptography;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Admins;

/// <summary>
/// Console accounts: creation with a one-time password, sign-in with lockout, password changes, and which
/// networks each admin may see or manage. Passwords are hashed with ASP.NET Core Identity's PBKDF2 hasher.
/// </summary>
internal sealed class AdminAccounts(GatehouseDb db, AuditLog audit, TimeProvider clock, IOptions<GatehouseOptions> options)
{
    public const int MinPasswordLength = 12;
    public const int MaxPasswordLength = 128;
    private static readonly PasswordHasher<Admin> Hasher = new();

    // Verifying against this for an unknown email keeps sign-in time the same whether or not the account exists.
    private static readonly string DecoyHash = Hasher.HashPassword(null!, "decoy password for unknown accounts");

    public Task<bool> AnyAsync(CancellationToken ct = default) => db.Admins.AnyAsync(ct);

    public Task<Admin?> FindAsync(Guid id, CancellationToken ct = default) => db.Admins.FirstOrDefaultAsync(a => a.Id == id, ct);

    public Task<Admin?> FindByEmailAsync(string email, CancellationToken ct = default)
    {
        var normalized = email.Trim().ToLowerInvariant();
        return db.Admins.FirstOrDefaultAsync(a => a.Email == normalized, ct);
    }

    public Task<List<Admin>> ListAsync(CancellationToken ct = default) => db.Admins.AsNoTracking().OrderBy(a => a.Email).ToListAsync(ct);

    /// <summary>Creates an account with a one-time password, returned once, to be changed at first sign-in.</summary>
    public async Task<(Admin? Admin, string? Password, Refusal? Error)> CreateAsync(string email, bool superAdmin, string actor, CancellationToken ct = default)
    {
        if (Normalized(email) is not { } normalized)
            return (null, null, NotAnEmail(email));
        if (await db.Admins.AnyAsync(a => a.Email == normalized, ct))
            return (null, null, Errors.AdminExists(normalized));

        var password = NewOneTimePassword();
        var now = clock.GetUtcNow();
        var admin = new Admin
        {
            Id = Guid.CreateVersion7(now),
            Email = normalized,
            PasswordHash = "",
            IsSuperAdmin = superAdmin,
            MustChangePassword = true,
            SecurityStamp = NewStamp(),
            CreatedAt = now,
        };
        admin.PasswordHash = Hasher.HashPassword(admin, password);
        db.Admins.Add(admin);
        await db.SaveChangesAsync(ct);
        audit.Record(SecurityEvents.AdminCreated(actor, admin.Email, superAdmin));
        return (admin, password, null);
    }

    /// <summary>
    /// Known and unknown addresses take the same steps (a counter row, a reservation, a PBKDF2 check against the
    /// account's hash or a decoy, the same answers), so neither the answer, its timing nor the lockout tells whether
    /// an address has an account. Each attempt reserves its place in the counter before the password is checked,
    /// with one conditional update, so however many arrive at once, at most the limit are checked.
    /// A right password for an account with two-factor on only gets as far as <see cref="SecondFactorAsync"/>: the
    /// counter is cleared by the code, not the password, so knowing the password gives no more guesses at codes.
    /// </summary>
    public async Task<(Admin? Admin, Refusal? Error, bool SecondFactorOwed)> SignInAsync(string email, string password, RequestOrigin? origin,
        CancellationToken ct = default)
    {
        var normalized = email.Trim().ToLowerInvariant();
        var admin = normalized.Length is > 0 and <= 254 ? await db.Admins.FirstOrDefaultAsync(a => a.Email == normalized, ct) : null;
        var digest = SignInDigest(normalized);
        var actor = admin is null ? "anonymous" : Actor(admin);

        if (await ReserveAttemptAsync(digest, actor, admin is null, origin, ct) is { } lockedOut)
            return (null, lockedOut, false);

        var verdict = PasswordVerificationResult.Failed;
        if (password.Length <= MaxPasswordLength)
        {
            // An unknown address is checked against a decoy hash, at the same cost, and fails.
            var checkedVerdict = Hasher.VerifyHashedPassword(admin!, admin?.PasswordHash ?? DecoyHash, password);
            verdict = admin is null ? PasswordVerificationResult.Failed : checkedVerdict;
        }
        if (verdict == PasswordVerificationResult.Failed)
            return (null, await FailAttemptAsync(digest, actor, admin is null, "wrong_password", Errors.WrongCredentials, origin, ct), false);

        if (verdict == PasswordVerificationResult.SuccessRehashNeeded)
        {
            admin!.PasswordHash = Hasher.HashPassword(admin, password);
            await db.SaveChangesAsync(ct);
        }
        if (admin!.DisabledAt is not null)
        {
            // Said only to whoever knows the password: to anyone else a disabled account answers like any other.
            audit.Record(SecurityEvents.AdminSignInRefused(actor, "account_disabled"), origin);
            return (null, Errors.AccountDisabled, false);
        }
        if (admin.HasTwoFactor)
            return (admin, null, true);

        await ClearSignInLockAsync(admin, ct);
        audit.Record(SecurityEvents.AdminSignedIn(actor, null), origin);
        return (admin, null, false);
    }

    /// <summary>
    /// The second step of a sign-in with two-factor on: a code from the authenticator or a recovery code, counted
    /// against the same lockout as the password.
    /// </summary>
    public async Task<Refusal?> SecondFactorAsync(Admin admin, string code, TwoFactor twoFactor, RequestOrigin? origin, CancellationToken ct = default)
    {
        var digest = SignInDigest(admin.Email);
        var actor = Actor(admin);
        if (await ReserveAttemptAsync(digest, actor, unknown: false, origin, ct) is { } lockedOut)
            return lockedOut;
        if (admin.DisabledAt is not null)
        {
            audit.Record(SecurityEvents.AdminSignInRefused(actor, "account_disabled"), origin);
            return Errors.AccountDisabled;
        }
        if (await twoFactor.VerifyAsync(admin, code, origin, ct) is not { } factor)
            return await FailAttemptAsync(digest, actor, unknown: false, "wrong_code", Errors.SecondFactorWrong, origin, ct);

        await ClearSignInLockAsync(admin, ct);
        audit.Record(SecurityEvents.AdminSignedIn(actor, factor), origin);
        return null;
    }

    /// <summary>Takes a place in the address's counter, or says why none is left (locked out, or the limit reached).</summary>
    private async Task<Refusal?> ReserveAttemptAsync(string digest, string actor, bool unknown, RequestOrigin? origin, CancellationToken ct)
    {
        var settings = options.Value.Console;
        var now = clock.GetUtcNow();
        await EnsureSignInLockAsync(digest, ct);
        var reserved = await db.SignInLocks
            .Where(l => l.EmailDigest == digest && (l.LockedUntil == null || l.LockedUntil <= now) && l.Attempts < settings.MaxFailedSignIns)
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.Attempts, l => l.Attempts + 1), ct) == 1;
        if (reserved)
            return null;
        // A counter filled by attempts that were not all failures (a right password, its code still owed) has no lock
        // yet: this attempt sets it, so the address waits out the lockout rather than staying refused for good.
        await db.SignInLocks
            .Where(l => l.EmailDigest == digest && l.Attempts >= settings.MaxFailedSignIns && (l.LockedUntil == null || l.LockedUntil <= now))
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.LockedUntil, now + settings.LockoutDuration).SetProperty(l => l.Attempts, 0), ct);
        var lockedUntil = await db.SignInLocks.Where(l => l.EmailDigest == digest).Select(l => l.LockedUntil).FirstOrDefaultAsync(ct);
        audit.Record(SecurityEvents.AdminSignInRefused(actor, unknown ? "unknown_account_locked_out" : "locked_out"), origin);
        return Errors.LockedOut(settings.MaxFailedSignIns, lockedUntil ?? now + settings.LockoutDuration);
    }

    /// <summary>A failed attempt: the one that fills the counter locks the address, and the counter starts again for after the lock.</summary>
    private async Task<Refusal> FailAttemptAsync(string digest, string actor, bool unknown, string reason, Refusal refusal, RequestOrigin? origin,
        CancellationToken ct)
    {
        var settings = options.Value.Console;
        var now = clock.GetUtcNow();
        var lockNow = await db.SignInLocks
            .Where(l => l.EmailDigest == digest && l.Attempts >= settings.MaxFailedSignIns)
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.LockedUntil, now + settings.LockoutDuration).SetProperty(l => l.Attempts, 0), ct) == 1;
        audit.Record(SecurityEvents.AdminSignInRefused(actor,
            (unknown, lockNow) switch
            {
                (true, true) => "unknown_account_locked_out_now",
                (true, false) => "unknown_account",
                (false, true) => "locked_out_now",
                _ => reason,
            }), origin);
        return refusal;
    }

    /// <summary>The address's counter row, created on its first attempt (two first attempts at once: one insert wins).</summary>
    private async Task EnsureSignInLockAsync(string digest, CancellationToken ct)
    {
        if (await db.SignInLocks.AnyAsync(l => l.EmailDigest == digest, ct))
            return;
        var row = new SignInLock { EmailDigest = digest };
        db.SignInLocks.Add(row);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // Another attempt created it first; the row is there either way.
        }
        finally
        {
            db.Entry(row).State = EntityState.Detached;
        }
    }

    private static bool PasswordMatches(Admin admin, string password) =>
        password.Length <= MaxPasswordLength && Hasher.VerifyHashedPassword(admin, admin.PasswordHash, password) != PasswordVerificationResult.Failed;

    /// <summary>
    /// Asks a signed-in admin for its password again before a change to how it signs in (a stolen session alone must
    /// not make that change): counted in the sign-in lockout and audited like a sign-in's password.
    /// </summary>
    public async Task<Refusal?> ReauthenticateAsync(Admin admin, string password, RequestOrigin? origin, CancellationToken ct = default)
    {
        var digest = SignInDigest(admin.Email);
        var actor = Actor(admin);
        if (await ReserveAttemptAsync(digest, actor, unknown: false, origin, ct) is { } lockedOut)
            return lockedOut;
        if (!PasswordMatches(admin, password))
            return await FailAttemptAsync(digest, actor, unknown: false, "wrong_password", Errors.CurrentPasswordWrong, origin, ct);
        await ClearSignInLockAsync(admin, ct);
        return null;
    }

    public async Task<Refusal?> ChangePasswordAsync(Admin admin, string current, string replacement, RequestOrigin? origin, CancellationToken ct = default)
    {
        if (await ReauthenticateAsync(admin, current, origin, ct) is { } refused)
            return refused;
        if (replacement.Length is < MinPasswordLength or > MaxPasswordLength)
            return Errors.PasswordLength(MinPasswordLength, MaxPasswordLength);
        if (replacement == current)
            return Errors.PasswordUnchanged;

        admin.PasswordHash = Hasher.HashPassword(admin, replacement);
        admin.MustChangePassword = false;
        admin.SecurityStamp = NewStamp();
        await db.SaveChangesAsync(ct);
        audit.Record(SecurityEvents.AdminPasswordChanged(Actor(admin)), origin);
        return null;
    }

    /// <summary>
    /// A super admin's reset: a new one-time password (returned once) that must be changed at the next sign-in, every
    /// console sign-in of the account ended, and its lockout lifted (the reset is the way back in).
    /// </summary>
    public async Task<string> ResetPasswordAsync(Admin target, string actor, RequestOrigin? origin, CancellationToken ct = default)
    {
        var password = NewOneTimePassword();
        target.PasswordHash = Hasher.HashPassword(target, password);
        target.MustChangePassword = true;
        target.SecurityStamp = NewStamp();
        await db.SaveChangesAsync(ct);
        await ClearSignInLockAsync(target, ct);
        audit.Record(SecurityEvents.AdminPasswordReset(actor, target.Email), origin);
        return password;
    }

    /// <summary>Until when the account's sign-ins are locked, if they are.</summary>
    public async Task<DateTimeOffset?> LockedUntilAsync(Admin admin, CancellationToken ct = default)
    {
        var now = clock.GetUtcNow();
        var digest = SignInDigest(admin.Email);
        var until = await db.SignInLocks.AsNoTracking().Where(l => l.EmailDigest == digest).Select(l => l.LockedUntil).FirstOrDefaultAsync(ct);
        return until > now ? until : null;
    }

    /// <summary>Lifts a lockout before it ends (and forgets the failures counted so far).</summary>
    public async Task UnlockAsync(Admin target, string actor, RequestOrigin? origin, CancellationToken ct = default)
    {
        await ClearSignInLockAsync(target, ct);
        audit.Record(SecurityEvents.AdminUnlocked(actor, target.Email), origin);
    }

    /// <summary>
    /// A super admin's switch for a whole account: disabled, it signs in nowhere, every console sign-in ends, and its
    /// admin tokens are revoked for good (enabling it again does not bring them back). Rights and audit trail stay.
    /// </summary>
    public async Task SetDisabledAsync(Admin target, bool disabled, string actor, RequestOrigin? origin, CancellationToken ct = default)
    {
        var now = clock.GetUtcNow();
        target.DisabledAt = disabled ? now : null;
        target.SecurityStamp = NewStamp();
        var revoked = disabled ? await db.AdminTokens.Where(t => t.AdminId == target.Id && t.RevokedAt == null).ToListAsync(ct) : [];
        foreach (var token in revoked)
        {
            token.RevokedAt = now;
            token.RevokedBy = actor;
        }
        await db.SaveChangesAsync(ct);
        audit.Record(SecurityEvents.AdminAccountDisabled(actor, target.Email, disabled), origin);
        foreach (var token in revoked)
            audit.Record(SecurityEvents.AdminTokenRevoked(actor, token.NetworkId, token.Id, "admin_disabled"), origin);
    }

    private async Task ClearSignInLockAsync(Admin admin, CancellationToken ct)
    {
        var digest = SignInDigest(admin.Email);
        await db.SignInLocks.Where(l => l.EmailDigest == digest)
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.Attempts, 0).SetProperty(l => l.LockedUntil, (DateTimeOffset?)null), ct);
    }

    private static string SignInDigest(string normalizedEmail) => Secrets.Digest("console-sign-in:" + normalizedEmail);

    private static string NewOneTimePassword() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(15));

    /// <summary>Every console cookie of this admin stops working, on every device.</summary>
    public async Task EndSessionsAsync(Admin admin, RequestOrigin? origin, CancellationToken ct = default)
    {
        admin.SecurityStamp = NewStamp();
        await db.SaveChangesAsync(ct);
        audit.Record(SecurityEvents.AdminSignedOut(Actor(admin)), origin);
    }

    public Task<List<AdminMembership>> MembershipsAsync(Guid adminId, CancellationToken ct = default) =>
        db.AdminMemberships.AsNoTracking().Where(m => m.AdminId == adminId).ToListAsync(ct);

    public Task<List<AdminMembership>> MembershipsOfNetworkAsync(string networkId, CancellationToken ct = default) =>
        db.AdminMemberships.AsNoTracking().Where(m => m.NetworkId == networkId).ToListAsync(ct);

    /// <summary>
    /// Gives an account a role in a network, creating the account (with a one-time password, returned once)
    /// when the email is new.
    /// </summary>
    public async Task<(string? Password, Refusal? Error)> AddToNetworkAsync(string email, string networkId, ConsoleRole role, bool canAccessSecureMode,
        string actor, CancellationToken ct = default)
    {
        var admin = await FindByEmailAsync(email, ct);
        string? password = null;
        if (admin is null)
        {
            (admin, password, var error) = await CreateAsync(email, superAdmin: false, actor, ct);
            if (error is not null)
                return (null, error);
        }
        else if (admin.IsSuperAdmin)
        {
            return (null, Errors.SuperAdminHasEveryNetwork);
        }
        else if (await db.AdminMemberships.AnyAsync(m => m.AdminId == admin.Id && m.NetworkId == networkId, ct))
        {
            return (null, Errors.AlreadyAdminOfNetwork(admin.Email));
        }
        await SetMembershipAsync(admin!.Id, networkId, role, canAccessSecureMode, actor, disabled: false, ct);
        return (password, null);
    }

    /// <summary>
    /// An Admin's way to add someone: a request a super admin approves. The same steps and the same answer whether
    /// or not the email has an account; asking again for the same email updates the request.
    /// </summary>
    public async Task<Refusal?> RequestAsync(string email, string networkId, ConsoleRole role, bool canAccessSecureMode, string actor,
        CancellationToken ct = default)
    {
        if (Normalized(email) is not { } normalized)
            return NotAnEmail(email);
        var request = await db.AdminRequests.FirstOrDefaultAsync(r => r.NetworkId == networkId && r.Email == normalized, ct);
        var now = clock.GetUtcNow();
        if (request is null)
        {
            request = new AdminRequest { Id = Guid.CreateVersion7(now), NetworkId = networkId, Email = normalized, RequestedBy = actor };
            db.AdminRequests.Add(request);
        }
        request.Role = role;
        request.CanAccessSecureMode = canAccessSecureMode;
        request.RequestedBy = actor;
        request.RequestedAt = now;
        await db.SaveChangesAsync(ct);
        audit.Record(SecurityEvents.AdminRequested(actor, networkId, normalized, role.ToString(), canAccessSecureMode));
        return null;
    }

    public Task<List<AdminRequest>> RequestsAsync(string networkId, CancellationToken ct = default) =>
        db.AdminRequests.AsNoTracking().Where(r => r.NetworkId == networkId).OrderBy(r => r.Email).ToListAsync(ct);

    /// <summary>A super admin's answer to a request: approved, it adds the email as <see cref="AddToNetworkAsync"/> does.</summary>
    public async Task<(string? Email, string? Password, Refusal? Error)> DecideRequestAsync(Guid requestId, string networkId, bool approve, string actor,
        CancellationToken ct = default)
    {
        var request = await db.AdminRequests.FirstOrDefaultAsync(r => r.Id == requestId && r.NetworkId == networkId, ct);
        if (request is null)
            return (null, null, Errors.RequestAlreadyAnswered);
        db.AdminRequests.Remove(request);
        await db.SaveChangesAsync(ct);
        if (!approve)
        {
            audit.Record(SecurityEvents.AdminRequestDeclined(actor, networkId, request.Email));
            return (request.Email, null, null);
        }
        var (password, error) = await AddToNetworkAsync(request.Email, networkId, request.Role, request.CanAccessSecureMode, actor, ct);
        return (request.Email, password, error);
    }

    /// <summary>Grants a role in a network, changes it, or (role null) takes every right there away.</summary>
    public async Task SetMembershipAsync(Guid adminId, string networkId, ConsoleRole? role, bool canAccessSecureMode, string actor,
        bool disabled = false, CancellationToken ct = default)
    {
        var membership = await db.AdminMemberships.FirstOrDefaultAsync(m => m.AdminId == adminId && m.NetworkId == networkId, ct);
        if (role is null)
        {
            if (membership is not null)
                db.AdminMemberships.Remove(membership);
        }
        else if (membership is null)
        {
            db.AdminMemberships.Add(new AdminMembership
            {
                AdminId = adminId,
                NetworkId = networkId,
                Role = role.Value,
                CanAccessSecureMode = canAccessSecureMode,
                Disabled = disabled,
            });
        }
        else
        {
            membership.Role = role.Value;
            membership.CanAccessSecureMode = canAccessSecureMode;
            membership.Disabled = disabled;
        }
        // An admin who may no longer hold an admin token loses the ones it has, for good: enabling it again, or
        // giving the right back, must not bring an old token back to life.
        var mayHoldTokens = role == ConsoleRole.Admin && canAccessSecureMode && !disabled;
        var revoked = mayHoldTokens ? [] : await db.AdminTokens
            .Where(t => t.AdminId == adminId && t.NetworkId == networkId && t.RevokedAt == null).ToListAsync(ct);
        foreach (var token in revoked)
        {
            token.RevokedAt = clock.GetUtcNow();
            token.RevokedBy = actor;
        }
        await db.SaveChangesAsync(ct);
        audit.Record(SecurityEvents.AdminRoleChanged(actor, networkId, adminId, role?.ToString(), canAccessSecureMode, disabled));
        foreach (var token in revoked)
            audit.Record(SecurityEvents.AdminTokenRevoked(actor, networkId, token.Id, "admin_rights_removed"));
    }

    public static string Actor(Admin admin) => $"admin:{admin.Email}";

    /// <summary>The address as stored (trimmed, lower case), or null when it is not one plain email address.</summary>
    private static string? Normalized(string email)
    {
        email = email.Trim();
        return email.Length <= 254 && MailAddress.TryCreate(email, out var parsed) && parsed.Address == email ? email.ToLowerInvariant() : null;
    }

    private static Refusal NotAnEmail(string email) => Errors.NotAnEmail(email);

    public static string NewStamp() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
}
