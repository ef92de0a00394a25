using System.Globalization;
using System.Text;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Storage;
using Microsoft.AspNetCore.Mvc;
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

    /// <summary>The emails of the admins the page's details name by id (<c>admin=&lt;guid&gt;</c>), read in one query.</summary>
    public IReadOnlyDictionary<Guid, string> AdminEmails { get; private set; } = new Dictionary<Guid, string>();

    /// <summary>The most rows one export writes; a longer period is exported in parts.</summary>
    public const int MaxExportRows = 100_000;

    public async Task OnGetAsync(string? kind, string? userId, string? from, string? to, int page = 1)
    {
        var query = Filtered(kind, userId, from, to, page);
        var rows = await query.Skip((PageNumber - 1) * PageSize).Take(PageSize + 1).ToListAsync(HttpContext.RequestAborted);
        HasNext = rows.Count > PageSize;
        Events = rows.Take(PageSize).ToList();
        var adminIds = AuditDisplay.AdminIds(Events.Select(e => e.Detail)).ToList();
        if (adminIds.Count > 0)
        {
            AdminEmails = await db.Admins.AsNoTracking().Where(a => adminIds.Contains(a.Id))
                .ToDictionaryAsync(a => a.Id, a => a.Email, HttpContext.RequestAborted);
        }
    }

    /// <summary>
    /// The current filter's events as CSV (newest first, at most <see cref="MaxExportRows"/>). A cell that a spreadsheet
    /// would read as a formula (=, +, -, @, tab, carriage return) is prefixed with an apostrophe.
    /// </summary>
    public async Task<IActionResult> OnGetCsvAsync(string? kind, string? userId, string? from, string? to)
    {
        var query = Filtered(kind, userId, from, to, 1);
        var csv = new StringBuilder("time,kind,outcome,actor,user_id,reason,detail,client_address\r\n");
        await foreach (var e in query.Take(MaxExportRows).AsAsyncEnumerable().WithCancellation(HttpContext.RequestAborted))
        {
            csv.AppendJoin(',', new[] { e.OccurredAt.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture), e.Kind, e.Outcome, e.Actor,
                e.UserId, e.Reason, e.Detail, e.ClientAddress }.Select(Cell)).Append("\r\n");
        }
        return File(Encoding.UTF8.GetBytes(csv.ToString()), "text/csv; charset=utf-8", $"gatehouse-audit-{Access.Network.Id}.csv");
    }

    private static string Cell(string? value)
    {
        if (string.IsNullOrEmpty(value))
            return "";
        if (value[0] is '=' or '+' or '-' or '@' or '\t' or '\r')
            value = "'" + value;
        return value.IndexOfAny([',', '"', '\r', '\n']) >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;
    }

    private IQueryable<AuditEvent> Filtered(string? kind, string? userId, string? from, string? to, int page)
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
        return query.OrderByDescending(e => e.OccurredAt).ThenByDescending(e => e.Id);
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

    public string CsvLink =>
        $"?handler=Csv&kind={Uri.EscapeDataString(Kind ?? "")}&userId={Uri.EscapeDataString(UserId ?? "")}&from={Uri.EscapeDataString(From ?? "")}&to={Uri.EscapeDataString(To ?? "")}";

    public string PageLink(int page) =>
        $"?kind={Uri.EscapeDataString(Kind ?? "")}&userId={Uri.EscapeDataString(UserId ?? "")}&from={Uri.EscapeDataString(From ?? "")}&to={Uri.EscapeDataString(To ?? "")}&page={page}";
}
