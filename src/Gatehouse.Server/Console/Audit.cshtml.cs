using System.Globalization;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Console;

/// <summary>
/// Every security event of the network, newest first, filterable and paged; with them, the console-account events
/// that belong to no network (sign-ins, their refusals and lockouts, sign-outs, password changes): a super admin sees
/// everyone's, another admin only its own.
/// </summary>
internal sealed class AuditModel(GatehouseDb db, ConsoleAccess access) : ConsolePage(access)
{
    public const int PageSize = 50;

    public string? Kind { get; private set; }
    public string? UserId { get; private set; }
    public string? From { get; private set; }
    public string? To { get; private set; }
    public int PageNumber { get; private set; } = 1;
    public bool HasNext { get; private set; }
    public string? FilterError { get; private set; }
    public IReadOnlyList<AuditEvent> Events { get; private set; } = [];

    public async Task OnGetAsync(string? kind, string? userId, string? from, string? to, int page = 1)
    {
        Kind = AuditKinds.All.Contains(kind) ? kind : null;
        UserId = string.IsNullOrWhiteSpace(userId) ? null : userId.Trim();
        From = from;
        To = to;
        PageNumber = Math.Clamp(page, 1, 100_000);

        var networkId = Access.Network.Id;
        var everyone = CurrentAdmin.IsSuperAdmin;
        var self = Actor;
        var query = db.AuditEvents.AsNoTracking()
            .Where(e => e.NetworkId == networkId || (e.NetworkId == null && (everyone || e.Actor == self)));
        if (Kind is not null)
            query = query.Where(e => e.Kind == Kind);
        if (UserId is not null)
            query = query.Where(e => e.UserId == UserId);
        if (ParseTime(from, "From") is { } since)
            query = query.Where(e => e.OccurredAt >= since);
        if (ParseTime(to, "To") is { } until)
            query = query.Where(e => e.OccurredAt < until);

        var rows = await query.OrderByDescending(e => e.OccurredAt).ThenByDescending(e => e.Id)
            .Skip((PageNumber - 1) * PageSize).Take(PageSize + 1).ToListAsync(HttpContext.RequestAborted);
        HasNext = rows.Count > PageSize;
        Events = rows.Take(PageSize).ToList();
    }

    /// <summary>The browser's datetime-local value, read as UTC (the console shows every time in UTC).</summary>
    private DateTimeOffset? ParseTime(string? value, string field)
    {
        if (string.IsNullOrWhiteSpace(value))
            return null;
        if (DateTime.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed))
            return new DateTimeOffset(parsed, TimeSpan.Zero);
        FilterError = $"{field} is not a date and time.";
        return null;
    }

    public string PageLink(int page) =>
        $"?kind={Uri.EscapeDataString(Kind ?? "")}&userId={Uri.EscapeDataString(UserId ?? "")}&from={Uri.EscapeDataString(From ?? "")}&to={Uri.EscapeDataString(To ?? "")}&page={page}";
}
