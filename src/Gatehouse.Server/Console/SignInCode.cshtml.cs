using System.Security.Claims;
using Gatehouse.Server.Admins;
using Gatehouse.Server.Api;
using Gatehouse.Server.RateLimits;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Gatehouse.Server.Console;

/// <summary>
/// The second step of signing in to an account with two-factor on: a code from the authenticator app, or a recovery
/// code. Reached only with the short-lived cookie a right password gave; a wrong code counts towards the lockout.
/// </summary>
[RateLimited(LimitedAs.ConsoleSignIn)]
internal sealed class SignInCodeModel(AdminAccounts admins, TwoFactor twoFactor) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public string? Error { get; private set; }

    public async Task<IActionResult> OnGetAsync() => await PendingAdminAsync() is null ? Restart() : Page();

    public async Task<IActionResult> OnPostAsync(string? code)
    {
        if (await PendingAdminAsync() is not { } admin)
            return Restart();
        var error = await admins.SecondFactorAsync(admin, code ?? "", twoFactor, HttpContext.Origin(), HttpContext.RequestAborted);
        if (error is not null)
        {
            Error = error.Message;
            Response.StatusCode = error.Status;
            return Page();
        }
        await HttpContext.SignOutAsync(ConsoleSetup.SecondFactorScheme);
        await HttpContext.SignInAsync(ConsoleSetup.Scheme, ConsoleSetup.PrincipalFor(admin));
        return LocalRedirect(SignInModel.SafeReturnUrl(Url, ReturnUrl));
    }

    /// <summary>The admin whose password was right a moment ago, if the cookie is still good and nothing changed since.</summary>
    private async Task<Admin?> PendingAdminAsync()
    {
        var result = await HttpContext.AuthenticateAsync(ConsoleSetup.SecondFactorScheme);
        var id = result.Principal?.FindFirstValue(ClaimTypes.NameIdentifier);
        var stamp = result.Principal?.FindFirstValue(ConsoleSetup.StampClaim);
        var admin = result.Succeeded && Guid.TryParse(id, out var adminId) ? await admins.FindAsync(adminId, HttpContext.RequestAborted) : null;
        return admin is { HasTwoFactor: true } && string.Equals(admin.SecurityStamp, stamp, StringComparison.Ordinal) ? admin : null;
    }

    private RedirectResult Restart() => Redirect("/console/signin");
}
