using Gatehouse.Server.Admins;
using Gatehouse.Server.Api;
using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Server.Console;

/// <summary>The portal owner creates console accounts and decides what each may do in each network.</summary>
internal sealed class AdminsModel(AdminAccounts admins, TwoFactor twoFactor, OneTimeReveals reveals, ConsoleAccess access) : ConsolePage(access)
{
    private const string RevealKind = "admins";

    protected override bool SuperAdminsOnly => true;

    /// <summary>The one-time slot (<see cref="OneTimeReveals"/>) a creation redirected here with.</summary>
    [BindProperty(SupportsGet = true)]
    public Guid? Reveal { get; set; }

    /// <summary>The slot was already taken (a reload): the page says the password is not shown again.</summary>
    public bool RevealGone { get; private set; }

    /// <summary>Which confirmation is open (reset), for which admin.</summary>
    [BindProperty(SupportsGet = true)]
    public string? Confirm { get; set; }

    [BindProperty(SupportsGet = true)]
    public Guid? AdminId { get; set; }

    public IReadOnlyList<Admin> Admins { get; private set; } = [];

    /// <summary>Accounts whose sign-ins are locked now, with until when.</summary>
    public IReadOnlyDictionary<Guid, DateTimeOffset> LockedUntil { get; private set; } = new Dictionary<Guid, DateTimeOffset>();

    public Admin? ToReset => Confirm == "reset" ? Admins.FirstOrDefault(a => a.Id == AdminId && !a.IsSuperAdmin) : null;

    public Admin? ToDisable => Confirm == "disable" ? Admins.FirstOrDefault(a => a.Id == AdminId && MayDisable(a) && a.DisabledAt is null) : null;

    public Admin? ToResetTwoFactor => Confirm == "reset-two-factor" ? Admins.FirstOrDefault(a => a.Id == AdminId && MayResetTwoFactor(a)) : null;

    public bool DialogOpen => OneTimePassword is not null || ToReset is not null || ToDisable is not null || ToResetTwoFactor is not null;

    /// <summary>Super admins are managed by the operator; nobody disables its own account from under itself.</summary>
    public bool MayDisable(Admin admin) => !admin.IsSuperAdmin && admin.Id != CurrentAdmin.Id;

    /// <summary>
    /// Another admin's lost authenticator; one's own second factor is turned off on its own page, with its password,
    /// and a super admin's by the operator (<c>admin two-factor-reset</c>), as super admins are managed there.
    /// </summary>
    public bool MayResetTwoFactor(Admin admin) => admin.HasTwoFactor && !admin.IsSuperAdmin && admin.Id != CurrentAdmin.Id;

    public AdminMembership? MembershipIn(Admin admin, string networkId) => Memberships[admin.Id].FirstOrDefault(m => m.NetworkId == networkId);
    public ILookup<Guid, AdminMembership> Memberships { get; private set; } = Array.Empty<AdminMembership>().ToLookup(m => m.AdminId);
    public string? Error { get; private set; }
    public string? CreatedEmail { get; private set; }
    public string? OneTimePassword { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        if (Reveal is { } slot)
        {
            var values = await reveals.TakeAsync(slot, CurrentAdmin.Id, RevealKind, HttpContext.RequestAborted);
            CreatedEmail = values?.GetValueOrDefault("email");
            OneTimePassword = values?.GetValueOrDefault("password");
            WasReset = values?.ContainsKey("reset") == true;
            RevealGone = values is null;
        }
        await LoadAsync();
        return Page();
    }

    public async Task<IActionResult> OnPostCreateAsync(string? email)
    {
        var (admin, password, error) = await admins.CreateAsync(email ?? "", superAdmin: false, Actor, HttpContext.RequestAborted);
        if (error is not null)
        {
            Error = error.Message;
            await LoadAsync();
            return Page();
        }
        var slot = await reveals.PutAsync(CurrentAdmin.Id, RevealKind,
            new Dictionary<string, string> { ["email"] = admin!.Email, ["password"] = password! }, HttpContext.RequestAborted);
        return Redirect($"/console/admins?reveal={slot}");
    }

    public async Task<IActionResult> OnPostRoleAsync(Guid adminId, string? networkId, string? role, bool accessSecureMode)
    {
        var target = await admins.FindAsync(adminId, HttpContext.RequestAborted);
        if (target is null || target.IsSuperAdmin || Nav.Networks.All(n => n.Id != networkId))
        {
            Error = "Choose an admin (not a super admin) and a network.";
            await LoadAsync();
            return Page();
        }
        ConsoleRole? parsed = Enum.TryParse<ConsoleRole>(role, out var value) ? value : null;
        await admins.SetMembershipAsync(adminId, networkId!, parsed, parsed is not null && accessSecureMode, Actor, ct: HttpContext.RequestAborted);
        Status = $"Rights of {target.Email} updated.";
        return Redirect("/console/admins");
    }

    public async Task<IActionResult> OnPostResetPasswordAsync(Guid adminId)
    {
        if (await admins.FindAsync(adminId, HttpContext.RequestAborted) is not { IsSuperAdmin: false } target)
        {
            Problem = "Choose an admin (not a super admin).";
            return Redirect("/console/admins");
        }
        var password = await admins.ResetPasswordAsync(target, Actor, HttpContext.Origin(), HttpContext.RequestAborted);
        var slot = await reveals.PutAsync(CurrentAdmin.Id, RevealKind,
            new Dictionary<string, string> { ["email"] = target.Email, ["password"] = password, ["reset"] = "true" }, HttpContext.RequestAborted);
        return Redirect($"/console/admins?reveal={slot}");
    }

    public async Task<IActionResult> OnPostUnlockAsync(Guid adminId)
    {
        if (await admins.FindAsync(adminId, HttpContext.RequestAborted) is not { } target)
        {
            Problem = "There is no such admin.";
            return Redirect("/console/admins");
        }
        await admins.UnlockAsync(target, Actor, HttpContext.Origin(), HttpContext.RequestAborted);
        Status = $"{target.Email} can sign in again.";
        return Redirect("/console/admins");
    }

    public async Task<IActionResult> OnPostDisableAsync(Guid adminId, bool disabled)
    {
        if (await admins.FindAsync(adminId, HttpContext.RequestAborted) is not { } target || !MayDisable(target))
        {
            Problem = "Choose another admin (not a super admin, not yourself).";
            return Redirect("/console/admins");
        }
        await admins.SetDisabledAsync(target, disabled, Actor, HttpContext.Origin(), HttpContext.RequestAborted);
        Status = disabled ? $"{target.Email} is disabled: signed out everywhere, its admin tokens revoked." : $"{target.Email} can sign in again.";
        return Redirect("/console/admins");
    }

    public async Task<IActionResult> OnPostResetTwoFactorAsync(Guid adminId)
    {
        if (await admins.FindAsync(adminId, HttpContext.RequestAborted) is not { } target || !MayResetTwoFactor(target))
        {
            Problem = "Choose another admin whose two-factor sign-in is on.";
            return Redirect("/console/admins");
        }
        await twoFactor.TurnOffAsync(target, Actor, HttpContext.Origin(), HttpContext.RequestAborted);
        Status = TwoFactorRequired
            ? $"Two-factor sign-in of {target.Email} removed: it sets up a new authenticator at its next sign-in."
            : $"Two-factor sign-in of {target.Email} removed: its password alone signs in now.";
        return Redirect("/console/admins");
    }

    public async Task<IActionResult> OnPostRequireTwoFactorAsync(bool required)
    {
        await twoFactor.SetRequiredAsync(required, Actor, HttpContext.Origin(), HttpContext.RequestAborted);
        Status = required
            ? "Two-factor sign-in is required: an admin without it sets it up before anything else."
            : "Two-factor sign-in is optional again.";
        return Redirect("/console/admins");
    }

    /// <summary>Set when the password shown is a reset's, not a new account's.</summary>
    public bool WasReset { get; private set; }

    public string NetworkName(string id) => Nav.Networks.FirstOrDefault(n => n.Id == id)?.Name ?? id;

    private async Task LoadAsync()
    {
        Admins = await admins.ListAsync(HttpContext.RequestAborted);
        var all = new List<AdminMembership>();
        foreach (var admin in Admins)
            all.AddRange(await admins.MembershipsAsync(admin.Id, HttpContext.RequestAborted));
        Memberships = all.ToLookup(m => m.AdminId);
        var locked = new Dictionary<Guid, DateTimeOffset>();
        foreach (var admin in Admins)
        {
            if (await admins.LockedUntilAsync(admin, HttpContext.RequestAborted) is { } until)
                locked[admin.Id] = until;
        }
        LockedUntil = locked;
    }
}
