using Gatehouse.Server.Admins;
using Gatehouse.Server.Api;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Server.Console;

internal sealed class SignOutModel(AdminAccounts admins, ConsoleAccess access) : ConsolePage(access)
{
    protected override bool AllowedWhilePasswordChangeIsOwed => true;

    protected override bool AllowedWhileTwoFactorIsOwed => true;

    public IActionResult OnGet() => Redirect("/console");

    /// <summary>Ends the sign-in on the server too: a copied cookie stops working with this one.</summary>
    public async Task<IActionResult> OnPostAsync()
    {
        await admins.EndSessionsAsync(CurrentAdmin, HttpContext.Origin(), HttpContext.RequestAborted);
        await HttpContext.SignOutAsync(ConsoleSetup.Scheme);
        return Redirect("/console/signin");
    }
}
