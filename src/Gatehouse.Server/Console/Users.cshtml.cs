using Gatehouse.Server.Api;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Users;
using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Server.Console;

/// <summary>
/// Users: find a network's users by userId or display name, see a user's live sessions, end one or all, ban and unban
/// with a reason. Every change is audited and asks first; a Viewer only reads.
/// </summary>
internal sealed class UsersModel(UserAdministration users, AuditLog audit, ConsoleAccess access) : ConsolePage(access)
{
    public const int PageSize = 20;
    private const int ReasonMaxLength = 200;

    [BindProperty(SupportsGet = true)]
    public string? Search { get; set; }

    /// <summary>signed-in (the default), visitor, bot or all.</summary>
    [BindProperty(SupportsGet = true)]
    public string? Type { get; set; }

    [BindProperty(SupportsGet = true, Name = "p")]
    public int PageNumber { get; set; } = 1;

    /// <summary>The user whose sessions are shown.</summary>
    [BindProperty(SupportsGet = true)]
    public string? UserId { get; set; }

    /// <summary>Which confirmation is open: end-all, ban, unban, or end (with <see cref="SessionId"/>).</summary>
    [BindProperty(SupportsGet = true)]
    public string? Confirm { get; set; }

    [BindProperty(SupportsGet = true)]
    public Guid? SessionId { get; set; }

    public UserPage Found { get; private set; } = new([], 0);
    public User? Selected { get; private set; }
    public IReadOnlyList<Session> Sessions { get; private set; } = [];

    public bool DialogOpen => Selected is not null && Access.CanManageSettings && Confirm is "end-all" or "ban" or "unban" or "end";

    public string Here => $"/console/n/{Access.Network.Id}/users";

    public string UserLink(string userId) => $"{Here}?userId={Uri.EscapeDataString(userId)}";

    public async Task OnGetAsync()
    {
        var ct = HttpContext.RequestAborted;
        PageNumber = Math.Clamp(PageNumber, 1, 100_000);
        UserKind? kind = Type == "all" ? null : UserKinds.FromWireName(Type) ?? UserKind.SignedIn;
        var search = Search?.Trim() is { Length: > 0 } text ? text[..Math.Min(text.Length, 1024)] : null;
        Found = await users.ListAsync(Access.Network.Id, search, kind, PageNumber, PageSize, ct);
        if (!string.IsNullOrEmpty(UserId))
        {
            Selected = await users.FindAsync(Access.Network.Id, UserId, ct);
            if (Selected is not null)
                Sessions = await users.LiveSessionsAsync(Selected, ct);
        }
    }

    public async Task<IActionResult> OnPostEndSessionAsync(string userId, Guid sessionId)
    {
        var (user, refusal) = await ChangeableAsync(userId);
        if (refusal is not null)
            return refusal;
        if (await users.EndSessionAsync(user!, sessionId, Actor, HttpContext.Origin(), HttpContext.RequestAborted))
            Status = "The session was ended: its tokens are refused from now on.";
        else
            Problem = "That session had already ended.";
        return Redirect(UserLink(userId));
    }

    public async Task<IActionResult> OnPostEndAllAsync(string userId)
    {
        var (user, refusal) = await ChangeableAsync(userId);
        if (refusal is not null)
            return refusal;
        var ended = await users.RevokeSessionsAsync(user!, "admin_revoked", Actor, HttpContext.Origin(), HttpContext.RequestAborted);
        Status = $"{(ended == 1 ? "1 session" : $"{ended} sessions")} of {userId} ended.";
        return Redirect(UserLink(userId));
    }

    public async Task<IActionResult> OnPostBanAsync(string userId, bool banned, string? reason)
    {
        var (user, refusal) = await ChangeableAsync(userId);
        if (refusal is not null)
            return refusal;
        var why = reason?.Trim();
        if (why is { Length: > ReasonMaxLength })
        {
            Problem = $"The reason can be at most {ReasonMaxLength} characters.";
            return Redirect(UserLink(userId));
        }
        await users.SetBanAsync(user!, banned, Actor, HttpContext.Origin(), HttpContext.RequestAborted, why);
        Status = banned ? $"{userId} is banned: its sessions ended and it cannot log in." : $"{userId} is no longer banned.";
        return Redirect(UserLink(userId));
    }

    /// <summary>The user, if this admin may change users and it is one of this network's; otherwise how to answer.</summary>
    private async Task<(User? User, IActionResult? Refusal)> ChangeableAsync(string userId)
    {
        if (!Access.CanManageSettings)
        {
            audit.Record(SecurityEvents.NotPermitted(AuditKinds.UserSessionsRevoked, Actor, Access.Network.Id), HttpContext.Origin());
            return (null, Refused());
        }
        if (await users.FindAsync(Access.Network.Id, userId ?? "", HttpContext.RequestAborted) is not { } user)
        {
            Problem = "There is no such user in this network.";
            return (null, Redirect(Here));
        }
        return (user, null);
    }

    public string PageLink(int page) =>
        $"{Here}?search={Uri.EscapeDataString(Search ?? "")}&type={Uri.EscapeDataString(Type ?? "")}&p={page}";
}
