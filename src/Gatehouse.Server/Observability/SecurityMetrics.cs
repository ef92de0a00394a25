using System.Diagnostics.Metrics;

namespace Gatehouse.Server.Observability;

/// <summary>
/// Counters of security events, fed by the audit log so every audited outcome is counted once and in one place,
/// and the size of the session writer's group commits.
/// Tags are stable words only (kind, outcome, reason): never a user id, a key or a token.
/// </summary>
internal sealed class SecurityMetrics
{
    public const string MeterName = "Gatehouse";
    private readonly Counter<long> _events;
    private readonly Counter<long> _adminTokenUses;
    private readonly Counter<long> _auditDropped;
    private readonly Histogram<int> _changesPerCommit;

    public SecurityMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _events = meter.CreateCounter<long>("gatehouse.security.events", "{event}",
            "Security events by kind (auth_token.minted, session.created, mtls.refused, ...), outcome and reason.");
        _adminTokenUses = meter.CreateCounter<long>("gatehouse.admin_token.uses", "{call}", "Admin API calls accepted with an admin token.");
        _auditDropped = meter.CreateCounter<long>("gatehouse.audit.dropped", "{event}",
            "Audit events dropped because the audit queue was full (the database too slow or unreachable for too long), by kind.");
        _changesPerCommit = meter.CreateHistogram<int>("gatehouse.sessions.changes_per_commit", "{change}",
            "Session changes (logins, refreshes, logouts) written by one durable commit (group commit): its count is the commits, its sum the changes.",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] });
    }

    public void Event(string kind, string outcome, string? reason) =>
        _events.Add(1, new KeyValuePair<string, object?>("kind", kind), new KeyValuePair<string, object?>("outcome", outcome),
            new KeyValuePair<string, object?>("reason", reason ?? "none"));

    public void AdminTokenUsed() => _adminTokenUses.Add(1);

    public void AuditDropped(string kind) => _auditDropped.Add(1, new KeyValuePair<string, object?>("kind", kind));

    public void ChangesCommitted(int changes) => _changesPerCommit.Record(changes);
}
