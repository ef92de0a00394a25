using Gatehouse.Server.Admins;
using Gatehouse.Server.Api;
using Gatehouse.Server.Refusals;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Server.Console;

/// <summary>
/// The signed-in admin's own second factor: set up an authenticator app (QR code, then a first code), new recovery
/// codes (shown once), or turn it off (not while the portal requires it). Each of these asks for the password again,
/// so a stolen session alone cannot change how the account signs in, and each ends the account's other sign-ins.
/// </summary>
internal sealed class TwoFactorModel(TwoFactor twoFactor, AdminAccounts admins, OneTimeReveals reveals, ConsoleAccess access) : ConsolePage(access)
{
    public const string Here = "/console/account/two-factor";
    private const string RevealKind = "recovery-codes";

    protected override bool AllowedWhileTwoFactorIsOwed => true;

    [BindProperty(SupportsGet = true)]
    public Guid? Reveal { get; set; }

    /// <summary>Which confirmation is open: <c>regenerate</c> or <c>off</c>.</summary>
    [BindProperty(SupportsGet = true)]
    public string? Confirm { get; set; }

    public TwoFactorEnrolment? Enrolment { get; private set; }
    public IReadOnlyList<string>? RecoveryCodes { get; private set; }
    public bool RevealGone { get; private set; }
    public int RecoveryCodesLeft { get; private set; }

    public bool DialogOpen => RecoveryCodes is not null || (CurrentAdmin.HasTwoFactor && Confirm is "regenerate" or "off");

    public async Task OnGetAsync()
    {
        var ct = HttpContext.RequestAborted;
        if (Reveal is { } slot)
        {
            var values = await reveals.TakeAsync(slot, CurrentAdmin.Id, RevealKind, ct);
            RecoveryCodes = values?.OrderBy(v => v.Key, StringComparer.Ordinal).Select(v => v.Value).ToList();
            RevealGone = values is null;
        }
        if (!CurrentAdmin.HasTwoFactor && CurrentAdmin.TwoFactorSecret is not null)
            Enrolment = await twoFactor.EnrolmentAsync(CurrentAdmin, ct);
        if (CurrentAdmin.HasTwoFactor)
            RecoveryCodesLeft = await twoFactor.RecoveryCodesLeftAsync(CurrentAdmin, ct);
    }

    public async Task<IActionResult> OnPostBeginAsync()
    {
        await twoFactor.EnrolmentAsync(CurrentAdmin, HttpContext.RequestAborted);
        return Redirect(Here);
    }

    public async Task<IActionResult> OnPostCancelAsync()
    {
        await twoFactor.CancelEnrolmentAsync(CurrentAdmin, HttpContext.RequestAborted);
        Status = "Set-up cancelled: two-factor sign-in is off.";
        return Redirect(Here);
    }

    public async Task<IActionResult> OnPostConfirmAsync(string? code, string? password)
    {
        if (await admins.ReauthenticateAsync(CurrentAdmin, password ?? "", HttpContext.Origin(), HttpContext.RequestAborted) is { } refused)
            return Refuse(refused, "Two-factor sign-in is still off.");
        var (codes, error) = await twoFactor.ConfirmAsync(CurrentAdmin, code ?? "", HttpContext.Origin(), HttpContext.RequestAborted);
        if (error is not null)
            return Refuse(error, "");
        Status = "Two-factor sign-in is on: every sign-in now asks for a code, and your other sign-ins have ended.";
        return await RevealAsync(codes!);
    }

    public async Task<IActionResult> OnPostRegenerateAsync(string? password)
    {
        if (!CurrentAdmin.HasTwoFactor)
            return Refuse(Errors.TwoFactorNotStarted, "");
        if (await admins.ReauthenticateAsync(CurrentAdmin, password ?? "", HttpContext.Origin(), HttpContext.RequestAborted) is { } refused)
            return Refuse(refused, "Your recovery codes are unchanged.");
        var codes = (await twoFactor.RegenerateRecoveryCodesAsync(CurrentAdmin, HttpContext.Origin(), HttpContext.RequestAborted))!;
        Status = "New recovery codes made: the old ones no longer work.";
        return await RevealAsync(codes);
    }

    public async Task<IActionResult> OnPostTurnOffAsync(string? password)
    {
        if (TwoFactorRequired)
        {
            Problem = "The portal requires two-factor sign-in for every admin, so it cannot be turned off.";
            return Redirect(Here);
        }
        if (!CurrentAdmin.HasTwoFactor)
            return Redirect(Here);
        if (await admins.ReauthenticateAsync(CurrentAdmin, password ?? "", HttpContext.Origin(), HttpContext.RequestAborted) is { } refused)
            return Refuse(refused, "Two-factor sign-in is still on.");
        await twoFactor.TurnOffAsync(CurrentAdmin, Actor, HttpContext.Origin(), HttpContext.RequestAborted);
        await KeepThisSignInAsync();
        Status = "Two-factor sign-in is off.";
        return Redirect(Here);
    }

    private RedirectResult Refuse(Refusal refusal, string consequence)
    {
        Problem = (refusal.Message + " " + consequence).Trim();
        return Redirect(Here);
    }

    /// <summary>The change ended every sign-in of the account (a stolen cookie included); this one gets a new cookie.</summary>
    private Task KeepThisSignInAsync() => HttpContext.SignInAsync(ConsoleSetup.Scheme, ConsoleSetup.PrincipalFor(CurrentAdmin));

    private async Task<IActionResult> RevealAsync(IReadOnlyList<string> codes)
    {
        await KeepThisSignInAsync();
        var values = codes.Select((code, i) => (Key: i.ToString("00", System.Globalization.CultureInfo.InvariantCulture), code))
            .ToDictionary(v => v.Key, v => v.code);
        var slot = await reveals.PutAsync(CurrentAdmin.Id, RevealKind, values, HttpContext.RequestAborted);
        return Redirect($"{Here}?reveal={slot}");
    }
}
