using Gatehouse.Server.Admins;
using Gatehouse.Server.Networks;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Gatehouse.Server.Console;

/// <summary>What the layout shows: who is signed in, the networks they can switch to, the one in view.</summary>
internal sealed record ConsoleNav(Admin Admin, IReadOnlyList<Network> Networks, Network? Current);

/// <summary>
/// Every signed-in page: loads the admin (checked against its security stamp by the cookie handler), forces
/// a password change while one is owed, and resolves the network in the route with the admin's rights there.
/// </summary>
internal abstract class ConsolePage(ConsoleAccess access) : PageModel
{
    public Admin CurrentAdmin { get; private set; } = null!;
    public ConsoleNav Nav { get; private set; } = null!;

    /// <summary>The network of a /console/n/{networkId}/… page, with what the admin may do in it.</summary>
    public NetworkAccess Access { get; private set; } = null!;

    [TempData]
    public string? Status { get; set; }

    protected virtual bool AllowedWhilePasswordChangeIsOwed => false;

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

        if (SuperAdminsOnly && !admin.IsSuperAdmin)
        {
            context.Result = Refused();
            return;
        }

        Network? current = null;
        if (RouteData.Values.TryGetValue("networkId", out var value) && value is string networkId)
        {
            if (await access.ForAsync(admin, networkId, HttpContext.RequestAborted) is not { } granted)
            {
                context.Result = NotFound();
                return;
            }
            Access = granted;
            current = granted.Network;
        }
        Nav = new ConsoleNav(admin, await access.VisibleNetworksAsync(admin, HttpContext.RequestAborted), current);
        ViewData["Nav"] = Nav;
        await next();
    }

    /// <summary>A change the admin has no right to: refused on the server whatever the page showed.</summary>
    protected IActionResult Refused() => StatusCode(StatusCodes.Status403Forbidden);

    protected string Actor => AdminAccounts.Actor(CurrentAdmin);
}
