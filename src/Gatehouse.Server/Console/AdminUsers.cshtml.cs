using Gatehouse.Server.AdminTokens;
using Gatehouse.Server.Admins;
using Gatehouse.Server.Api;
using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Server.Console;

internal sealed record NetworkAdmin(Admin Admin, AdminMembership Membership);

/// <summary>Settings → Admin Users: the network's admins, and the admin tokens that open its admin API.</summary>
internal sealed class AdminUsersModel(AdminAccounts admins, AdminTokenService tokens, OneTimeReveals reveals, TimeProvider clock, ConsoleAccess access)
    : ConsolePage(access)
{
    [BindProperty(SupportsGet = true)]
    public string? Confirm { get; set; }

    /// <summary>The one-time slot (<see cref="OneTimeReveals"/>) a generation redirected here with.</summary>
    [BindProperty(SupportsGet = true)]
    public Guid? Reveal { get; set; }

    /// <summary>The slot was already taken (a reload): the page says the secret is not shown again.</summary>
    public bool RevealGone { get; private set; }

    /// <summary>With <c>?confirm=revoke</c>: the token the confirmation dialog names.</summary>
    [BindProperty(SupportsGet = true)]
    public Guid? TokenId { get; set; }

    public AdminTokenView? TokenToRevoke => Confirm == "revoke"
        ? Tokens.FirstOrDefault(t => t.Token.Id == TokenId && t.Token.IsActive(Now) && CanRevoke(t))
        : null;

    public IReadOnlyList<NetworkAdmin> Admins { get; private set; } = [];
    public IReadOnlyList<AdminRequest> Requests { get; private set; } = [];
    public IReadOnlyList<AdminTokenView> Tokens { get; private set; } = [];
    public AdminTokenMetrics Metrics { get; private set; } = new(0, null, []);
    public string? WhyNoToken { get; private set; }
    public string? Error { get; private set; }

    /// <summary>Taken from their slot by the GET a creation redirected to: the one time they are shown.</summary>
    public string? NewToken { get; private set; }
    public string? NewAdminEmail { get; private set; }
    public string? NewAdminPassword { get; private set; }

    public DateTimeOffset Now => clock.GetUtcNow();
    public string Here => $"/console/n/{Access.Network.Id}/admin-users";
    public bool DialogOpen => NewToken is not null || NewAdminPassword is not null || TokenToRevoke is not null
        || (Confirm == "token" && WhyNoToken is null);

    public async Task OnGetAsync()
    {
        if (Reveal is { } slot)
        {
            var values = await reveals.TakeAsync(slot, CurrentAdmin.Id, RevealKind, HttpContext.RequestAborted);
            NewToken = values?.GetValueOrDefault("adminToken");
            NewAdminEmail = values?.GetValueOrDefault("email");
            NewAdminPassword = values?.GetValueOrDefault("password");
            RevealGone = values is null;
        }
        await LoadAsync();
    }

    private string RevealKind => "admin-users:" + Access.Network.Id;

    private async Task<IActionResult> RevealAsync(Dictionary<string, string> values)
    {
        var slot = await reveals.PutAsync(CurrentAdmin.Id, RevealKind, values, HttpContext.RequestAborted);
        return Redirect($"{Here}?reveal={slot}");
    }

    public async Task<IActionResult> OnPostGenerateTokenAsync(int days = 365, bool revokePrevious = false)
    {
        var (token, error) = await tokens.GenerateAsync(CurrentAdmin, Access.Network.Id, TimeSpan.FromDays(days), revokePrevious, HttpContext.Origin(),
            HttpContext.RequestAborted);
        if (error is not null)
        {
            await LoadAsync();
            Error = error.Message;
            Response.StatusCode = StatusCodes.Status403Forbidden;
            return Page();
        }
        return await RevealAsync(new() { ["adminToken"] = token! });
    }

    public async Task<IActionResult> OnPostRevokeTokenAsync(Guid tokenId)
    {
        var error = await tokens.RevokeAsync(CurrentAdmin, Access.Network.Id, tokenId, HttpContext.Origin(), HttpContext.RequestAborted);
        if (error is not null)
        {
            await LoadAsync();
            Error = error.Message;
            Response.StatusCode = StatusCodes.Status403Forbidden;
            return Page();
        }
        Status = "The admin token was revoked; it is refused from now on.";
        return Redirect(Here);
    }

    /// <summary>
    /// Nobody raises their own rights: an admin does not edit its own membership, and grants Access Secure Mode
    /// only if it holds it (super admins grant anything).
    /// </summary>
    public bool MayGrant(bool accessSecureMode) => CurrentAdmin.IsSuperAdmin || !accessSecureMode || Access.CanAccessSecureMode;

    public async Task<IActionResult> OnPostAddAdminAsync(string? email, string? role, bool accessSecureMode)
    {
        if (!Access.CanManageSettings || !MayGrant(accessSecureMode))
            return Refused();
        if (!Enum.TryParse<ConsoleRole>(role, out var parsed))
            parsed = ConsoleRole.Viewer;
        if (!CurrentAdmin.IsSuperAdmin)
        {
            // An Admin asks; a super admin adds. The answer is the same whether or not the email has an account.
            if (await admins.RequestAsync(email ?? "", Access.Network.Id, parsed, accessSecureMode, Actor, HttpContext.RequestAborted) is { } invalid)
            {
                Error = invalid.Message;
                await LoadAsync();
                return Page();
            }
            Status = $"Request recorded: a super admin can now add {email?.Trim().ToLowerInvariant()} to this network as {parsed}.";
            return Redirect(Here);
        }
        var (password, error) = await admins.AddToNetworkAsync(email ?? "", Access.Network.Id, parsed, accessSecureMode, Actor, HttpContext.RequestAborted);
        if (error is not null)
        {
            Error = error.Message;
            await LoadAsync();
            return Page();
        }
        if (password is null)
        {
            Status = $"{email} now has the {parsed} role in this network.";
            return Redirect(Here);
        }
        return await RevealAsync(new() { ["email"] = email!.Trim().ToLowerInvariant(), ["password"] = password });
    }

    public async Task<IActionResult> OnPostDecideRequestAsync(Guid requestId, bool approve)
    {
        if (!CurrentAdmin.IsSuperAdmin)
            return Refused();
        var (email, password, error) = await admins.DecideRequestAsync(requestId, Access.Network.Id, approve, Actor, HttpContext.RequestAborted);
        if (error is not null)
        {
            Error = error.Message;
            await LoadAsync();
            return Page();
        }
        if (password is null)
        {
            Status = approve ? $"{email} now has its role in this network." : $"The request for {email} was declined.";
            return Redirect(Here);
        }
        return await RevealAsync(new() { ["email"] = email!, ["password"] = password });
    }

    public async Task<IActionResult> OnPostUpdateAdminAsync(Guid adminId, string? role, bool accessSecureMode, bool disabled)
    {
        if (!Access.CanManageSettings || adminId == CurrentAdmin.Id || !MayGrant(accessSecureMode))
            return Refused();
        await LoadAsync();
        var target = Admins.FirstOrDefault(a => a.Admin.Id == adminId);
        if (target is null || !Enum.TryParse<ConsoleRole>(role, out var parsed))
        {
            Error = "There is no such admin in this network.";
            return Page();
        }
        // Rights flow down, never up: an admin without Access Secure Mode cannot demote, disable or remove one who has it.
        if (target.Membership.CanAccessSecureMode && !CurrentAdmin.IsSuperAdmin && !Access.CanAccessSecureMode)
            return Refused();
        await admins.SetMembershipAsync(adminId, Access.Network.Id, parsed, accessSecureMode, Actor, disabled, HttpContext.RequestAborted);
        Status = "Admin updated.";
        return Redirect(Here);
    }

    /// <summary>Whether this page offers to change the admin: never oneself, and never one who holds a permission the caller lacks.</summary>
    public bool MayEdit(NetworkAdmin other) =>
        Access.CanManageSettings && other.Admin.Id != CurrentAdmin.Id
        && (CurrentAdmin.IsSuperAdmin || Access.CanAccessSecureMode || !other.Membership.CanAccessSecureMode);

    public bool CanRevoke(AdminTokenView view) => CurrentAdmin.IsSuperAdmin || view.Token.AdminId == CurrentAdmin.Id;

    public string TokenState(AdminToken token) =>
        token.RevokedAt is { } revoked ? $"Revoked {revoked:yyyy-MM-dd HH:mm} UTC"
        : token.ExpiresAt <= Now ? $"Expired {token.ExpiresAt:yyyy-MM-dd HH:mm} UTC"
        : token.ReplacedAt is not null ? $"Replaced; works until {token.ExpiresAt:yyyy-MM-dd HH:mm} UTC"
        : "Active";

    private async Task LoadAsync()
    {
        var ct = HttpContext.RequestAborted;
        var memberships = await admins.MembershipsOfNetworkAsync(Access.Network.Id, ct);
        var accounts = (await admins.ListAsync(ct)).ToDictionary(a => a.Id);
        Admins = memberships.Where(m => accounts.ContainsKey(m.AdminId))
            .Select(m => new NetworkAdmin(accounts[m.AdminId], m)).OrderBy(a => a.Admin.Email, StringComparer.Ordinal).ToList();
        Tokens = await tokens.ListAsync(Access.Network.Id, ct);
        Requests = CurrentAdmin.IsSuperAdmin ? await admins.RequestsAsync(Access.Network.Id, ct) : [];
        Metrics = await tokens.MetricsAsync(Access.Network.Id, ct);
        WhyNoToken = AdminTokenService.WhyNoToken(CurrentAdmin, memberships.FirstOrDefault(m => m.AdminId == CurrentAdmin.Id))?.Message;
    }
}
