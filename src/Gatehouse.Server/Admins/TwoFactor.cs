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
internal sealed record TwoFactorEnrolment(string Secret, string OtpAuthUri, string QrCodeSvg);

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
    private const string Issuer = "Gatehouse";
    private static readonly VerificationWindow Drift = new(previous: 1, future: 1);
    private readonly IDataProtector _protector = dataProtection.CreateProtector("Gatehouse.Admins.TwoFactor.v1");

    /// <summary>A super admin's switch: whether every admin must sign in with a second factor.</summary>
    public async Task SetRequiredAsync(bool required, string actor, RequestOrigin? origin, CancellationToken ct = default)
    {
        var settings = await db.PortalSettings.FirstOrDefaultAsync(ct);
        if (settings is null)
        {
            settings = new PortalSettings();
            db.PortalSettings.Add(settings);
        }
        settings.TwoFactorRequired = required;
        await db.SaveChangesAsync(ct);
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
        if (admin.TwoFactorSecret is null)
        {
            admin.TwoFactorSecret = _protector.Protect(Base32Encoding.ToString(KeyGeneration.GenerateRandomKey(20)));
            await db.SaveChangesAsync(ct);
        }
        var secret = _protector.Unprotect(admin.TwoFactorSecret);
        var uri = $"otpauth://totp/{Uri.EscapeDataString(Issuer)}:{Uri.EscapeDataString(admin.Email)}" +
            $"?secret={secret}&issuer={Uri.EscapeDataString(Issuer)}&algorithm=SHA1&digits=6&period=30";
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(uri, QRCodeGenerator.ECCLevel.M);
        return new TwoFactorEnrolment(Grouped(secret), uri, new SvgQRCode(data).GetGraphic(6));
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

    /// <summary>A fresh set of recovery codes; the old ones stop working.</summary>
    public async Task<IReadOnlyList<string>?> RegenerateRecoveryCodesAsync(Admin admin, RequestOrigin? origin, CancellationToken ct = default)
    {
        if (!admin.HasTwoFactor)
            return null;
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
        await db.RecoveryCodes.Where(c => c.AdminId == target.Id).ExecuteDeleteAsync(ct);
        await db.SaveChangesAsync(ct);
        audit.Record(SecurityEvents.TwoFactorDisabled(actor, target.Email), origin);
    }

    /// <summary>
    /// Checks a code given at sign-in: a 6-digit code from the authenticator, or one of the recovery codes (each used
    /// once). Null when it is wrong, already used, or the account has no second factor.
    /// </summary>
    public async Task<SecondFactor?> VerifyAsync(Admin admin, string code, CancellationToken ct = default)
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
            audit.Record(SecurityEvents.RecoveryCodeUsed(AdminAccounts.Actor(admin)));
        return used ? SecondFactor.RecoveryCode : null;
    }

    /// <summary>The time step a 6-digit code matches (the current one, or one either side), or null. Whether it was used is the caller's check.</summary>
    private long? MatchedStep(Admin admin, string code)
    {
        var digits = new string(code.Where(c => !char.IsWhiteSpace(c)).ToArray());
        if (admin.TwoFactorSecret is null || digits.Length != 6 || !digits.All(char.IsAsciiDigit))
            return null;
        byte[] secret;
        try
        {
            secret = Base32Encoding.ToBytes(_protector.Unprotect(admin.TwoFactorSecret));
        }
        catch (CryptographicException)
        {
            // A secret the key ring can no longer open (a lost key ring): no code can match it.
            return null;
        }
        var totp = new Totp(secret);
        return totp.VerifyTotp(clock.GetUtcNow().UtcDateTime, digits, out var step, Drift) ? step : null;
    }

    private async Task<IReadOnlyList<string>> ReplaceRecoveryCodesAsync(Admin admin, CancellationToken ct)
    {
        await db.RecoveryCodes.Where(c => c.AdminId == admin.Id).ExecuteDeleteAsync(ct);
        var codes = new List<string>(RecoveryCodeCount);
        var now = clock.GetUtcNow();
        for (var i = 0; i < RecoveryCodeCount; i++)
        {
            // 50 bits each, written as two groups of five base32 letters: easy to type from paper, not to guess.
            var code = Grouped(Base32Encoding.ToString(RandomNumberGenerator.GetBytes(10))[..10].ToLowerInvariant());
            codes.Add(code);
            db.RecoveryCodes.Add(new RecoveryCode { Id = Guid.CreateVersion7(now), AdminId = admin.Id, Digest = RecoveryDigest(admin.Id, code)! });
        }
        await db.SaveChangesAsync(ct);
        return codes;
    }

    /// <summary>The digest of a recovery code as typed (case, spaces and dashes ignored), or null if it cannot be one.</summary>
    private static string? RecoveryDigest(Guid adminId, string code)
    {
        var letters = new StringBuilder(10);
        foreach (var c in code)
        {
            if (char.IsAsciiLetterOrDigit(c))
                letters.Append(char.ToLowerInvariant(c));
            else if (c is not ('-' or ' '))
                return null;
        }
        return letters.Length == 10 ? Secrets.Digest($"recovery-code:{adminId}:{letters}") : null;
    }

    /// <summary>Groups of five, as authenticator apps and paper show them.</summary>
    private static string Grouped(string text) =>
        string.Join(text.Length == 10 ? "-" : " ", Enumerable.Range(0, (text.Length + 4) / 5).Select(i => text.Substring(i * 5, Math.Min(5, text.Length - i * 5))));
}
