using Gatehouse.Server.AdminTokens;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Certificates;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Console;

/// <summary>One published figure against its target: green when on target, amber when near its limit, red when off.</summary>
internal sealed record Metric(string Name, string Value, string Target, bool OffTarget, string Explanation, bool NearLimit = false)
{
    public string Level => OffTarget ? "off-target" : NearLimit ? "near-limit" : "on-target";
}

internal sealed record HourBucket(DateTimeOffset Start, int Minted, int Refused);

/// <summary>The security metrics the product publishes, each against its target, and a day of auth tokens.</summary>
internal sealed class DashboardModel(GatehouseDb db, AdminTokenService adminTokens, ClientCertificates certificates, TimeProvider clock, ConsoleAccess access) : ConsolePage(access)
{
    public IReadOnlyList<Metric> Metrics { get; private set; } = [];
    public IReadOnlyList<HourBucket> Hours { get; private set; } = [];

    public async Task OnGetAsync()
    {
        var ct = HttpContext.RequestAborted;
        var networkId = Access.Network.Id;
        var now = clock.GetUtcNow();
        var dayAgo = now.AddHours(-24);
        var events = db.AuditEvents.AsNoTracking().Where(e => e.NetworkId == networkId && e.OccurredAt >= dayAgo);

        // Refusals by cause: a bad credential is an attempt on the network; invalid input and an admin's own console
        // action its role does not allow are not, and are shown apart.
        var refusedByReason = await events.Where(e => e.Outcome == Outcomes.Refused)
            .GroupBy(e => e.Reason).Select(g => new { Reason = g.Key, Count = g.Count() }).ToListAsync(ct);
        var invalidInput = refusedByReason.Where(r => IsInvalidInput(r.Reason)).Sum(r => r.Count);
        var notPermitted = refusedByReason.Where(r => r.Reason == "not_permitted").Sum(r => r.Count);
        var rateLimited = refusedByReason.Where(r => r.Reason == "rate_limited").Sum(r => r.Count);
        var refused = refusedByReason.Sum(r => r.Count) - invalidInput - notPermitted - rateLimited;
        var minted = await events.CountAsync(e => e.Kind == AuditKinds.AuthTokenMinted, ct);
        var authFailures = await events.CountAsync(AuthTokenFailure, ct);
        // Server-to-server calls whose events say whether a verified client certificate came with them (mtls=true, last
        // in the detail): auth tokens minted and sessions a backend opened. The admin API's calls are left out: most
        // (its reads) are not audited.
        var serverCalls = events.Where(e => e.Kind == AuditKinds.AuthTokenMinted
            || (e.Kind == AuditKinds.SessionCreated && e.Actor.StartsWith("server-key:")));
        var calls = await serverCalls.CountAsync(ct);
        var overMtls = calls == 0 ? 0 : await serverCalls.CountAsync(e => e.Detail != null && e.Detail.EndsWith("mtls=true"), ct);
        var newestKey = await db.ServerKeys.AsNoTracking()
            .Where(k => k.NetworkId == networkId && k.ExpiresAt == null)
            .Select(k => (DateTimeOffset?)k.CreatedAt).FirstOrDefaultAsync(ct);

        var tokens = await adminTokens.MetricsAsync(networkId, ct);
        var expiringTokens = (await adminTokens.ListAsync(networkId, ct)).Count(v => v.Token.IsActive(now) && v.Token.ExpiresAt <= now.AddDays(30));
        var activeCertificates = (await certificates.ListAsync(networkId, ct)).Where(c => c.RevokedAt == null && c.NotAfter > now).ToList();
        var expiryLead = activeCertificates.Count == 0 ? (double?)null : activeCertificates.Min(c => (c.NotAfter - now).TotalDays);
        var mtls = Access.Network.MtlsEnabled;
        var keyAge = newestKey is { } created ? (now - created).TotalDays : (double?)null;
        var failureRate = minted + authFailures == 0 ? 0 : 100.0 * authFailures / (minted + authFailures);
        Metrics =
        [
            new("Unauthorized attempts (24 h)", refused.ToString(System.Globalization.CultureInfo.InvariantCulture), "0", refused > 0,
                $"Requests refused for a missing, wrong, expired or revoked credential. Apart: {invalidInput} refused for invalid input, " +
                $"{rateLimited} over a rate limit, {notPermitted} console action(s) an admin's role did not allow."),
            new("Server key age", keyAge is { } days ? $"{days:0} days" : "no key", "< 365 days", keyAge is null or >= 365,
                keyAge is null ? "Generate a server key once secure mode is on." : "Rotate the server key at least once a year.", keyAge >= 300),
            new("Auth token failure rate (24 h)", $"{failureRate:0.0} %", "< 2 %", failureRate >= 2,
                $"{authFailures} failed of {minted + authFailures} auth token uses and mints.", failureRate >= 1),
            new("Server-to-server calls over mTLS (24 h)", calls == 0 ? "no calls" : $"{Math.Floor(100.0 * overMtls / calls):0} %", "100 %",
                calls > 0 && overMtls == 0,
                (calls == 0 ? "No auth token was minted and no backend session opened in the last 24 hours. "
                    : $"{overMtls} of {calls} auth token mints and backend sessions came with a verified client certificate. ")
                + (mtls ? "mTLS is on: every such call needs one." : "mTLS is off: turn it on in Settings → Security once every backend calls with its certificate."),
                overMtls > 0 && overMtls < calls),
            new("Certificate expiry lead", expiryLead is { } lead ? $"{lead:0} days" : "no certificate", "> 30 days", expiryLead is null or <= 30,
                "Days until the first active client certificate expires; renew at least 30 days ahead.", expiryLead <= 60),
            new("Admin tokens expiring within 30 days", expiringTokens.ToString(System.Globalization.CultureInfo.InvariantCulture), "0", false,
                "Active admin tokens that stop within 30 days: generate their replacements before backends are refused.", expiringTokens > 0),
            new("Active admin tokens", tokens.Active.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "average age < 300 days, no orphans", tokens.AverageAgeDays > 300 || tokens.Orphans.Count > 0,
                $"Average age {(tokens.AverageAgeDays is { } age ? $"{age:0} days" : "—")}; {tokens.Orphans.Count} unused for 30 days or more."),
        ];

        var firstHour = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero).AddHours(-23);
        var hours = new List<HourBucket>(24);
        for (var i = 0; i < 24; i++)
        {
            var start = firstHour.AddHours(i);
            var end = start.AddHours(1);
            var inHour = db.AuditEvents.AsNoTracking().Where(e => e.NetworkId == networkId && e.OccurredAt >= start && e.OccurredAt < end);
            hours.Add(new HourBucket(start,
                await inHour.CountAsync(e => e.Kind == AuditKinds.AuthTokenMinted, ct),
                await inHour.CountAsync(AuthTokenFailure, ct)));
        }
        Hours = hours;
    }

    private static readonly HashSet<string> InvalidInputReasons = new(StringComparer.Ordinal)
    {
        "content_type", "body_too_large", "body_not_object", "malformed_json", "field_required", "field_too_long",
        "field_invalid_characters", "field_invalid", "field_repeated", "bad_filter",
    };

    private static bool IsInvalidInput(string? reason) => reason is not null && InvalidInputReasons.Contains(reason);

    /// <summary>
    /// A mint refused (its key replaced or expired, its input, or its client certificate under mTLS), or a login whose
    /// auth token failed.
    /// </summary>
    private static readonly System.Linq.Expressions.Expression<Func<AuditEvent, bool>> AuthTokenFailure = e =>
        e.Kind == AuditKinds.AuthTokenRefused
        || e.Kind == AuditKinds.ServerKeyRefused
        || e.Kind == AuditKinds.MtlsRefused
        || (e.Kind == AuditKinds.SessionRefused && e.Reason != null && e.Reason.StartsWith("auth_token_"));
}
