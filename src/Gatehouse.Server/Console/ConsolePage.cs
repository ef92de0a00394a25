using Gatehouse.Server.Admins;
using Gatehouse.Server.Networks;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.Mvc.ViewFeatures;

namespace Gatehouse.Server.Console;

/// <summary>A refused page, shown inside the console's layout and navigation (<c>_Refused.cshtml</c>).</summary>
internal sealed record RefusedView(string Title, string Message, string Back);

/// <summary>What the layout shows: who is signed in, the networks they can switch to, the one in view.</summary>
internal sealed record ConsoleNav(Admin Admin, IReadOnlyList<Network> Networks, Network? Current);

/// <summary>
/// Every signed-in page: loads the admin (checked against its security stamp by the cookie handler), forces
/// a password change while one is owed, then the set-up of a second factor while the portal requires one, and resolves the network in the route with the admin's rights there.
/// </summary>
internal abstract class ConsolePage(ConsoleAccess access) : PageModel
{
    public Admin CurrentAdmin { get; private set; } = null!;
    public ConsoleNav Nav { get; private set; } = null!;

    /// <summary>The portal's setting: every admin must sign in with a second factor.</summary>
    public bool TwoFactorRequired { get; private set; }

    /// <summary>The network of a /console/n/{networkId}/… page, with what the admin may do in it.</summary>
    public NetworkAccess Access { get; private set; } = null!;

    /// <summary>What the last action did, shown once by the page it redirected to (green, <c>role=status</c>).</summary>
    [TempData]
    public string? Status { get; set; }

    /// <summary>Why the last action was refused, shown once by the page it redirected to (red, <c>role=alert</c>).</summary>
    [TempData]
    public string? Problem { get; set; }

    protected virtual bool AllowedWhilePasswordChangeIsOwed => false;

    /// <summary>Reachable by an admin without a second factor while the portal requires one (set-up, password, sign-out).</summary>
    protected virtual bool AllowedWhileTwoFactorIsOwed => false;

    /// <summary>A portal page: refused to anyone else before any handler runs, whichever handler a request names.</summary>
    protected virtual bool SuperAdminsOnly => false;

    public override async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        if (HttpContext.Features.Get<Admin>() is not { } admin)
        {
            context.Result = Challenge(ConsoleSetup.Scheme);
            return;
        }
        CurrentAdmin = admin;
        if (admin.MustChangePassword && !AllowedWhilePasswordChangeIsOwed)
        {
            context.Result = RedirectToPage("/ChangePassword");
            return;
        }
        TwoFactorRequired = await access.TwoFactorRequiredAsync(HttpContext.RequestAborted);
        if (!admin.HasTwoFactor && !AllowedWhileTwoFactorIsOwed && TwoFactorRequired)
        {
            context.Result = RedirectToPage("/TwoFactor");
            return;
        }

        if (SuperAdminsOnly && !admin.IsSuperAdmin)
        {
            Nav = new ConsoleNav(admin, await access.VisibleNetworksAsync(admin, HttpContext.RequestAborted), null);
            ViewData["Nav"] = Nav;
            context.Result = Refused();
            return;
        }

        Network? current = null;
        if (RouteData.Values.TryGetValue("networkId", out var value) && value is string networkId)
        {
            if (await access.ForAsync(admin, networkId, HttpContext.RequestAborted) is not { } granted)
            {
                Nav = new ConsoleNav(admin, await access.VisibleNetworksAsync(admin, HttpContext.RequestAborted), null);
                ViewData["Nav"] = Nav;
                context.Result = Shown(StatusCodes.Status404NotFound,
                    new RefusedView("Not found", "There is no such network, or you have no role in it.", "/console"));
                return;
            }
            Access = granted;
            current = granted.Network;
        }
        Nav = new ConsoleNav(admin, await access.VisibleNetworksAsync(admin, HttpContext.RequestAborted), current);
        ViewData["Nav"] = Nav;
        await next();
    }

    /// <summary>
    /// A change the admin has no right to: refused on the server whatever the page showed, answered 403 with a page
    /// that keeps the console's navigation.
    /// </summary>
    protected IActionResult Refused() => Shown(StatusCodes.Status403Forbidden,
        new RefusedView("Not permitted", "Your role does not allow this. Nothing was changed.", Request.Path));

    private PartialViewResult Shown(int status, RefusedView view) => new()
    {
        ViewName = "/Console/_Refused.cshtml",
        ViewData = new ViewDataDictionary<RefusedView>(ViewData, view),
        StatusCode = status,
    };

    protected string Actor => AdminAccounts.Actor(CurrentAdmin);
}
