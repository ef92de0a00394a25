using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Server.Console;

internal sealed class IndexModel(ConsoleAccess access) : ConsolePage(access)
{
    public IActionResult OnGet()
    {
        if (Nav.Networks.Count > 0)
            return Redirect($"/console/n/{Nav.Networks[0].Id}/integrations");
        return CurrentAdmin.IsSuperAdmin ? Redirect("/console/networks") : Page();
    }
}
