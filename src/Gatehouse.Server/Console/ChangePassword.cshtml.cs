using Gatehouse.Server.Admins;
using Gatehouse.Server.Api;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Server.Console;

internal sealed class ChangePasswordModel(AdminAccounts admins, ConsoleAccess access) : ConsolePage(access)
{
    public string? Error { get; private set; }

    protected override bool AllowedWhilePasswordChangeIsOwed => true;

    protected override bool AllowedWhileTwoFactorIsOwed => true;

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync(string? current, string? replacement)
    {
        Error = (await admins.ChangePasswordAsync(CurrentAdmin, current ?? "", replacement ?? "", HttpContext.Origin(), HttpContext.RequestAborted))?.Message;
        if (Error is not null)
            return Page();
        // The change rotated the security stamp, ending every other sign-in; this one gets a new cookie.
        await HttpContext.SignInAsync(ConsoleSetup.Scheme, ConsoleSetup.PrincipalFor(CurrentAdmin));
        Status = "Your password was changed.";
        return Redirect("/console");
    }
}
