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
        var rows = await Filtered(kind, userId, from, to, page, PageSize + 1).ToListAsync(HttpContext.RequestAborted);
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
        var query = Filtered(kind, userId, from, to, 1, MaxExportRows);
        var csv = new StringBuilder("time,kind,outcome,actor,user_id,reason,detail,client_address\r\n");
        await foreach (var e in query.AsAsyncEnumerable().WithCancellation(HttpContext.RequestAborted))
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

    /// <summary>The page's events (<paramref name="take"/> from the start of page <paramref name="page"/>) under the filter.</summary>
    private IQueryable<AuditEvent> Filtered(string? kind, string? userId, string? from, string? to, int page, int take)
    {
        Kind = AuditKinds.All.Contains(kind) ? kind : null;
        UserId = string.IsNullOrWhiteSpace(userId) ? null : userId.Trim();
        From = from;
        To = to;
        PageNumber = Math.Clamp(page, 1, 100_000);
        var since = ParseTime(from, "From");
        var until = ParseTime(to, "To");

        IQueryable<AuditEvent> Filter(IQueryable<AuditEvent> events)
        {
            if (Kind is not null)
                events = events.Where(e => e.Kind == Kind);
            if (UserId is not null)
                events = events.Where(e => e.UserId == UserId);
            if (since is { } s)
                events = events.Where(e => e.OccurredAt >= s);
            if (until is { } u)
                events = events.Where(e => e.OccurredAt < u);
            return events;
        }

        return NewestFirst(db, Access.Network.Id, CurrentAdmin.IsSuperAdmin ? null : Actor, Filter, (PageNumber - 1) * PageSize, take);
    }

    /// <summary>
    /// The network's events with those that belong to no network (the console accounts' own, refusals of keys no
    /// network has: all of them when <paramref name="accountsOf"/> is null, else only that actor's), newest first,
    /// <paramref name="take"/> after the first <paramref name="skip"/>. Each half is read newest first through the index
    /// on (network, time), then the two are merged: the table has no index on the time alone, so one query over both
    /// halves would read and sort every event of the network on each page (docs/benchmarks.md, change 83).
    /// </summary>
    internal static IQueryable<AuditEvent> NewestFirst(GatehouseDb db, string networkId, string? accountsOf,
        Func<IQueryable<AuditEvent>, IQueryable<AuditEvent>> filter, int skip, int take)
    {
        var events = db.AuditEvents.AsNoTracking();
        var accounts = events.Where(e => e.NetworkId == null);
        if (accountsOf is not null)
            accounts = accounts.Where(e => e.Actor == accountsOf);
        var network = Ordered(filter(events.Where(e => e.NetworkId == networkId))).Take(skip + take);
        // Ordered by the network first, the same null in every row of this half: PostgreSQL takes "IS NULL" for a
        // filter, not for a key it can order by, and would otherwise read every such event and sort them.
        var withoutNetwork = filter(accounts).OrderByDescending(e => e.NetworkId).ThenByDescending(e => e.OccurredAt).ThenByDescending(e => e.Id)
            .Take(skip + take);
        return Ordered(network.Concat(withoutNetwork)).Skip(skip).Take(take);

        static IOrderedQueryable<AuditEvent> Ordered(IQueryable<AuditEvent> events) => events.OrderByDescending(e => e.OccurredAt).ThenByDescending(e => e.Id);
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
