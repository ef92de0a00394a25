using Gatehouse.Server.Networks;
using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Server.Console;

/// <summary>The portal owner's list of networks, and where new ones are created.</summary>
internal sealed class NetworksModel(NetworkAdministration networks, ConsoleAccess access) : ConsolePage(access)
{
    public string? Error { get; private set; }

    public IActionResult OnGet() => CurrentAdmin.IsSuperAdmin ? Page() : Refused();

    public async Task<IActionResult> OnPostAsync(string? name)
    {
        if (!CurrentAdmin.IsSuperAdmin)
            return Refused();
        name = name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 100)
        {
            Error = "A network name is required, up to 100 characters.";
            return Page();
        }
        var network = await networks.CreateAsync(name, Actor, HttpContext.RequestAborted);
        Status = $"Network {network.Name} created.";
        return Redirect($"/console/n/{network.Id}/integrations");
    }
}
