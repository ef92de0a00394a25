using Gatehouse.Server.Admins;
using Gatehouse.Server.Api;
using Gatehouse.Server.RateLimits;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Gatehouse.Server.Console;

[RateLimited(LimitedAs.ConsoleSignIn)]
internal sealed class SignInModel(AdminAccounts admins) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    [BindProperty]
    public string Email { get; set; } = "";

    public string? Error { get; private set; }

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync(string? password)
    {
        var (admin, error, secondFactorOwed) = await admins.SignInAsync(Email ?? "", password ?? "", HttpContext.Origin(), HttpContext.RequestAborted);
        if (admin is null)
        {
            Error = error?.Message;
            Response.StatusCode = StatusCodes.Status401Unauthorized;
            return Page();
        }
        var next = SafeReturnUrl(Url, ReturnUrl);
        if (secondFactorOwed)
        {
            await HttpContext.SignInAsync(ConsoleSetup.SecondFactorScheme, ConsoleSetup.PrincipalFor(admin, ConsoleSetup.SecondFactorScheme));
            return LocalRedirect($"/console/signin/code?returnUrl={Uri.EscapeDataString(next)}");
        }
        // A fresh cookie at every sign-in: nothing issued before it (to anyone) carries over.
        await HttpContext.SignInAsync(ConsoleSetup.Scheme, ConsoleSetup.PrincipalFor(admin));
        return LocalRedirect(next);
    }

    /// <summary>Where to go after signing in: a console page the request named, or the console's start.</summary>
    public static string SafeReturnUrl(IUrlHelper url, string? returnUrl) =>
        url.IsLocalUrl(returnUrl) && returnUrl.StartsWith("/console", StringComparison.Ordinal) ? returnUrl : "/console";
}
