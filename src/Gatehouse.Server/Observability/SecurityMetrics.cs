using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Gatehouse.Server.Audit;

namespace Gatehouse.Server.Observability;

/// <summary>
/// Counters of security events, fed by the audit log so every audited outcome is counted once and in one place,
/// of dropped audit events and of server-to-server calls by credential and transport, and the size of the session
/// writer's group commits. Tags are stable words only (kind, outcome, reason, credential, transport): never a user id,
/// a key or a token.
/// </summary>
internal sealed class SecurityMetrics
{
    public const string MeterName = "Gatehouse";
    private readonly Counter<long> _events;
    private readonly Counter<long> _adminTokenUses;
    private readonly Histogram<int> _changesPerCommit;

    // Observed, not added to: every series is served from the first scrape, at zero until its first event. A series
    // that first appears with its first event is invisible to Prometheus's increase() and rate(), so an alert on a drop
    // would miss it; and a counter's Add(0) made before the exporter listens is lost.
    private readonly ConcurrentDictionary<string, long> _auditDropped = new(AuditKinds.All.Select(k => KeyValuePair.Create(k, 0L)), StringComparer.Ordinal);
    private readonly long[] _serverToServerCalls = new long[4];

    public SecurityMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _events = meter.CreateCounter<long>("gatehouse.security.events", "{event}",
            "Security events by kind (auth_token.minted, session.created, mtls.refused, ...), outcome and reason.");
        _adminTokenUses = meter.CreateCounter<long>("gatehouse.admin_token.uses", "{call}", "Admin API calls accepted with an admin token.");
        meter.CreateObservableCounter("gatehouse.audit.dropped", ObserveAuditDropped, "{event}",
            "Audit events dropped because the audit queue was full (the database too slow or unreachable for too long), by kind.");
        meter.CreateObservableCounter("gatehouse.server_to_server.calls", ObserveServerToServerCalls, "{call}",
            "Server-to-server calls accepted, by credential (server_key, admin_token) and transport (mtls when a verified client certificate of the network came with the call, credential_only otherwise).");
        _changesPerCommit = meter.CreateHistogram<int>("gatehouse.sessions.changes_per_commit", "{change}",
            "Session changes (logins, refreshes, logouts) written by one durable commit (group commit): its count is the commits, its sum the changes.",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] });
    }

    public void Event(string kind, string outcome, string? reason) =>
        _events.Add(1, new KeyValuePair<string, object?>("kind", kind), new KeyValuePair<string, object?>("outcome", outcome),
            new KeyValuePair<string, object?>("reason", reason ?? "none"));

    public void AdminTokenUsed() => _adminTokenUses.Add(1);

    /// <param name="credential">One of <see cref="ServerToServerCredentials"/>.</param>
    public void ServerToServerCall(string credential, bool overMtls) =>
        Interlocked.Increment(ref _serverToServerCalls[CallIndex(credential == ServerToServerCredentials.AdminToken, overMtls)]);

    public void AuditDropped(string kind) => _auditDropped.AddOrUpdate(kind, 1, (_, dropped) => dropped + 1);

    public void ChangesCommitted(int changes) => _changesPerCommit.Record(changes);

    private static int CallIndex(bool adminToken, bool overMtls) => (adminToken ? 2 : 0) + (overMtls ? 1 : 0);

    private IEnumerable<Measurement<long>> ObserveAuditDropped() =>
        _auditDropped.Select(d => new Measurement<long>(d.Value, new KeyValuePair<string, object?>("kind", d.Key)));

    private IEnumerable<Measurement<long>> ObserveServerToServerCalls()
    {
        foreach (var adminToken in new[] { false, true })
        {
            foreach (var overMtls in new[] { false, true })
            {
                yield return new Measurement<long>(Interlocked.Read(ref _serverToServerCalls[CallIndex(adminToken, overMtls)]),
                    new KeyValuePair<string, object?>("credential", adminToken ? ServerToServerCredentials.AdminToken : ServerToServerCredentials.ServerKey),
                    new KeyValuePair<string, object?>("transport", overMtls ? "mtls" : "credential_only"));
            }
        }
    }
}

/// <summary>The credentials of server-to-server calls, as the <c>credential</c> tag names them.</summary>
internal static class ServerToServerCredentials
{
    public const string ServerKey = "server_key";
    public const string AdminToken = "admin_token";
}
