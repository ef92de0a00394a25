using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Server.Console;

/// <summary>The network switcher's target: a plain GET form, so it works without script.</summary>
internal sealed class SwitchModel(ConsoleAccess access) : ConsolePage(access)
{
    public IActionResult OnGet(string? networkId) =>
        Nav.Networks.Any(n => n.Id == networkId) ? Redirect($"/console/n/{networkId}/integrations") : NotFound();
}
