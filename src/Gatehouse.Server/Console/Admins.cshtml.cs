using Gatehouse.Server.Admins;
using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Server.Console;

/// <summary>The portal owner creates console accounts and decides what each may do in each network.</summary>
internal sealed class AdminsModel(AdminAccounts admins, ConsoleAccess access) : ConsolePage(access)
{
    public IReadOnlyList<Admin> Admins { get; private set; } = [];
    public ILookup<Guid, AdminMembership> Memberships { get; private set; } = Array.Empty<AdminMembership>().ToLookup(m => m.AdminId);
    public string? Error { get; private set; }
    public string? CreatedEmail { get; private set; }
    public string? OneTimePassword { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        if (!CurrentAdmin.IsSuperAdmin)
            return Refused();
        await LoadAsync();
        return Page();
    }

    public async Task<IActionResult> OnPostCreateAsync(string? email)
    {
        if (!CurrentAdmin.IsSuperAdmin)
            return Refused();
        var (admin, password, error) = await admins.CreateAsync(email ?? "", superAdmin: false, Actor, HttpContext.RequestAborted);
        Error = error?.Message;
        CreatedEmail = admin?.Email;
        OneTimePassword = password;
        await LoadAsync();
        return Page();
    }

    public async Task<IActionResult> OnPostRoleAsync(Guid adminId, string? networkId, string? role, bool accessSecureMode)
    {
        if (!CurrentAdmin.IsSuperAdmin)
            return Refused();
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

    public string NetworkName(string id) => Nav.Networks.FirstOrDefault(n => n.Id == id)?.Name ?? id;

    private async Task LoadAsync()
    {
        Admins = await admins.ListAsync(HttpContext.RequestAborted);
        var all = new List<AdminMembership>();
        foreach (var admin in Admins)
            all.AddRange(await admins.MembershipsAsync(admin.Id, HttpContext.RequestAborted));
        Memberships = all.ToLookup(m => m.AdminId);
    }
}
