using System.Security.Cryptography;
using System.Text;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using OtpNet;
using QRCoder;

namespace Gatehouse.Server.Admins;

/// <summary>What an authenticator app needs to be set up: the secret, as text and as a QR code drawn on the server.</summary>
internal sealed record TwoFactorEnrolment(string Secret, string QrCodeSvg);

/// <summary>How a second factor was proven at sign-in.</summary>
internal enum SecondFactor
{
    AuthenticatorCode,
    RecoveryCode,
}

/// <summary>
/// Console two-factor sign-in: TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, the step before and after
/// accepted for clock drift), with single-use recovery codes for a lost authenticator. The TOTP secret must be read
/// back to check a code, so it is encrypted with Data Protection (whose key ring the key-encryption key seals); recovery
/// codes are only compared, so only their digests are kept. Every code is good once: the last accepted step is stored
/// and moved forward with a conditional update, so a code seen over a shoulder or sent twice at once opens nothing.
/// </summary>
internal sealed class TwoFactor(GatehouseDb db, AuditLog audit, TimeProvider clock, IDataProtectionProvider dataProtection)
{
    public const int RecoveryCodeCount = 10;
    private const int RecoveryCodeLength = 16;
    private const string Issuer = "Gatehouse";
    private static readonly VerificationWindow Drift = new(previous: 1, future: 1);
    private readonly IDataProtector _protector = dataProtection.CreateProtector("Gatehouse.Admins.TwoFactor.v1");

    /// <summary>A super admin's switch: whether every admin must sign in with a second factor.</summary>
    public async Task SetRequiredAsync(bool required, string actor, RequestOrigin? origin, CancellationToken ct = default)
    {
        // The one row is made by the first switch; two first switches at once: one insert wins, the other updates.
        if (await db.PortalSettings.ExecuteUpdateAsync(s => s.SetProperty(p => p.TwoFactorRequired, required), ct) == 0)
        {
            var row = new PortalSettings { TwoFactorRequired = required };
            db.PortalSettings.Add(row);
            try
            {
                await db.SaveChangesAsync(ct);
            }
            catch (DbUpdateException)
            {
                db.Entry(row).State = EntityState.Detached;
                await db.PortalSettings.ExecuteUpdateAsync(s => s.SetProperty(p => p.TwoFactorRequired, required), ct);
            }
        }
        audit.Record(SecurityEvents.TwoFactorRequirementChanged(actor, required), origin);
    }

    /// <summary>
    /// The secret being set up, made on the first call and the same on every later one until it is confirmed or
    /// cancelled (a reload of the page shows the same QR code). Null once two-factor is on: the secret is never shown again.
    /// </summary>
    public async Task<TwoFactorEnrolment?> EnrolmentAsync(Admin admin, CancellationToken ct = default)
    {
        if (admin.HasTwoFactor)
            return null;
        var secret = admin.TwoFactorSecret is null ? null : Unprotected(admin.TwoFactorSecret);
        if (secret is null)
        {
            // None yet, or one the key ring can no longer open (a lost key ring): a new one, so the set-up can go on.
            secret = Base32Encoding.ToString(KeyGeneration.GenerateRandomKey(20));
            admin.TwoFactorSecret = _protector.Protect(secret);
            await db.SaveChangesAsync(ct);
        }
        var uri = $"otpauth://totp/{Uri.EscapeDataString(Issuer)}:{Uri.EscapeDataString(admin.Email)}" +
            $"?secret={secret}&issuer={Uri.EscapeDataString(Issuer)}&algorithm=SHA1&digits=6&period=30";
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(uri, QRCodeGenerator.ECCLevel.M);
        return new TwoFactorEnrolment(Grouped(secret, 5, ' '), new SvgQRCode(data).GetGraphic(6));
    }

    /// <summary>Turns two-factor on with a first code from the authenticator; the recovery codes come back, to be shown once.</summary>
    public async Task<(IReadOnlyList<string>? RecoveryCodes, Refusal? Error)> ConfirmAsync(Admin admin, string code, RequestOrigin? origin,
        CancellationToken ct = default)
    {
        if (admin.HasTwoFactor)
            return (null, Errors.TwoFactorAlreadyOn);
        if (admin.TwoFactorSecret is null)
            return (null, Errors.TwoFactorNotStarted);
        if (MatchedStep(admin, code) is not { } step)
            return (null, Errors.TwoFactorCodeWrong);
        admin.TwoFactorEnabledAt = clock.GetUtcNow();
        admin.TwoFactorLastStep = step;
        // Every sign-in made with the password alone ends: a session taken before stays no longer than the password.
        admin.SecurityStamp = AdminAccounts.NewStamp();
        var codes = await ReplaceRecoveryCodesAsync(admin, ct);
        audit.Record(SecurityEvents.TwoFactorEnabled(AdminAccounts.Actor(admin)), origin);
        return (codes, null);
    }

    /// <summary>Stops an enrolment that was never confirmed.</summary>
    public async Task CancelEnrolmentAsync(Admin admin, CancellationToken ct = default)
    {
        if (admin.HasTwoFactor || admin.TwoFactorSecret is null)
            return;
        admin.TwoFactorSecret = null;
        await db.SaveChangesAsync(ct);
    }

    /// <summary>A fresh set of recovery codes; the old ones stop working, and so does every other sign-in of the account.</summary>
    public async Task<IReadOnlyList<string>?> RegenerateRecoveryCodesAsync(Admin admin, RequestOrigin? origin, CancellationToken ct = default)
    {
        if (!admin.HasTwoFactor)
            return null;
        admin.SecurityStamp = AdminAccounts.NewStamp();
        var codes = await ReplaceRecoveryCodesAsync(admin, ct);
        audit.Record(SecurityEvents.RecoveryCodesGenerated(AdminAccounts.Actor(admin)), origin);
        return codes;
    }

    public Task<int> RecoveryCodesLeftAsync(Admin admin, CancellationToken ct = default) =>
        db.RecoveryCodes.CountAsync(c => c.AdminId == admin.Id && c.UsedAt == null, ct);

    /// <summary>
    /// Removes the second factor: the admin's own choice, or a super admin's (or the operator's) for one who lost its
    /// authenticator and recovery codes. Every console sign-in of the account ends with it.
    /// </summary>
    public async Task TurnOffAsync(Admin target, string actor, RequestOrigin? origin, CancellationToken ct = default)
    {
        target.TwoFactorSecret = null;
        target.TwoFactorEnabledAt = null;
        target.TwoFactorLastStep = 0;
        target.SecurityStamp = AdminAccounts.NewStamp();
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            await db.RecoveryCodes.Where(c => c.AdminId == target.Id).ExecuteDeleteAsync(ct);
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
        }
        audit.Record(SecurityEvents.TwoFactorDisabled(actor, target.Email), origin);
    }

    /// <summary>
    /// Checks a code given at sign-in: a 6-digit code from the authenticator, or one of the recovery codes (each used
    /// once). Null when it is wrong, already used, or the account has no second factor.
    /// </summary>
    public async Task<SecondFactor?> VerifyAsync(Admin admin, string code, RequestOrigin? origin, CancellationToken ct = default)
    {
        if (!admin.HasTwoFactor || code.Length > 64)
            return null;
        if (MatchedStep(admin, code) is { } step)
        {
            // Claimed like a refresh token: of two uses of one code, at most one moves the step.
            var claimed = await db.Admins.Where(a => a.Id == admin.Id && a.TwoFactorLastStep < step)
                .ExecuteUpdateAsync(s => s.SetProperty(a => a.TwoFactorLastStep, step), ct) == 1;
            return claimed ? SecondFactor.AuthenticatorCode : null;
        }
        var digest = RecoveryDigest(admin.Id, code);
        if (digest is null)
            return null;
        var now = clock.GetUtcNow();
        var used = await db.RecoveryCodes.Where(c => c.AdminId == admin.Id && c.Digest == digest && c.UsedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.UsedAt, now), ct) == 1;
        if (used)
            audit.Record(SecurityEvents.RecoveryCodeUsed(AdminAccounts.Actor(admin)), origin);
        return used ? SecondFactor.RecoveryCode : null;
    }

    /// <summary>The time step a 6-digit code matches (the current one, or one either side), or null. Whether it was used is the caller's check.</summary>
    private long? MatchedStep(Admin admin, string code)
    {
        var digits = new string(code.Where(c => !char.IsWhiteSpace(c)).ToArray());
        if (admin.TwoFactorSecret is null || digits.Length != 6 || !digits.All(char.IsAsciiDigit))
            return null;
        // A secret the key ring can no longer open (a lost key ring) matches no code.
        if (Unprotected(admin.TwoFactorSecret) is not { } text)
            return null;
        var secret = Base32Encoding.ToBytes(text);
        var totp = new Totp(secret);
        return totp.VerifyTotp(clock.GetUtcNow().UtcDateTime, digits, out var step, Drift) ? step : null;
    }

    private string? Unprotected(string protectedSecret)
    {
        try
        {
            return _protector.Unprotect(protectedSecret);
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    /// <summary>New codes replacing the old, with the admin's pending changes, in one transaction.</summary>
    private async Task<IReadOnlyList<string>> ReplaceRecoveryCodesAsync(Admin admin, CancellationToken ct)
    {
        var codes = new List<string>(RecoveryCodeCount);
        var now = clock.GetUtcNow();
        for (var i = 0; i < RecoveryCodeCount; i++)
        {
            // 80 bits each (too many to search even with the digests in hand), as four groups of four base32 letters.
            var code = Grouped(Base32Encoding.ToString(RandomNumberGenerator.GetBytes(10)).ToLowerInvariant(), 4, '-');
            codes.Add(code);
            db.RecoveryCodes.Add(new RecoveryCode { Id = Guid.CreateVersion7(now), AdminId = admin.Id, Digest = RecoveryDigest(admin.Id, code)! });
        }
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await db.RecoveryCodes.Where(c => c.AdminId == admin.Id).ExecuteDeleteAsync(ct);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return codes;
    }

    /// <summary>The digest of a recovery code as typed (case, spaces and dashes ignored), or null if it cannot be one.</summary>
    private static string? RecoveryDigest(Guid adminId, string code)
    {
        var letters = new StringBuilder(RecoveryCodeLength);
        foreach (var c in code)
        {
            if (char.IsAsciiLetterOrDigit(c))
                letters.Append(char.ToLowerInvariant(c));
            else if (c is not ('-' or ' '))
                return null;
        }
        return letters.Length == RecoveryCodeLength ? Secrets.Digest($"recovery-code:{adminId}:{letters}") : null;
    }

    /// <summary>Short groups, as authenticator apps and paper show them.</summary>
    private static string Grouped(string text, int size, char separator) =>
        string.Join(separator, text.Chunk(size).Select(group => new string(group)));
}
