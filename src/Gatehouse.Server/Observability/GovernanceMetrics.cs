using System.Diagnostics.Metrics;
using Gatehouse.Server.Operations;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Observability;

/// <summary>
/// Each network's credential hygiene as gauges: the age of the oldest server key it still accepts, its admin tokens
/// that expire within 30 days, and the time until its first client certificate expires. They read a snapshot of the
/// database taken every <see cref="RefreshInterval"/>, never the database itself: every node is scraped, each every
/// few seconds, and a scrape must not cost queries. Ages and times left are worked out at the scrape from the
/// snapshot's dates, so they follow the clock between refreshes; which keys, tokens and certificates exist is at most
/// one interval old. The network id is a tag: networks are few, and an id is no secret (every audit log line names
/// one); what is tagged never names a key, a token, a certificate or a user.
/// </summary>
internal sealed partial class GovernanceMetrics : BackgroundService
{
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(30);

    /// <summary>The console's horizon for admin tokens: a replacement made within it reaches the backends in time.</summary>
    public static readonly TimeSpan ExpiringWithin = TimeSpan.FromDays(30);

    private const string NetworkTag = "network";

    private sealed record NetworkFigures(string NetworkId, bool MtlsEnabled, DateTimeOffset? OldestServerKey, DateTimeOffset? FirstCertificateExpiry,
        DateTimeOffset[] AdminTokenExpiries);

    private readonly IDbContextFactory<GatehouseDb> _dbs;
    private readonly StartupGate _startup;
    private readonly TimeProvider _clock;
    private readonly ILogger<GovernanceMetrics> _log;
    private volatile IReadOnlyList<NetworkFigures> _figures = [];

    public GovernanceMetrics(IDbContextFactory<GatehouseDb> dbs, StartupGate startup, TimeProvider clock, IMeterFactory meters, ILogger<GovernanceMetrics> log)
    {
        _dbs = dbs;
        _startup = startup;
        _clock = clock;
        _log = log;
        var meter = meters.Create(SecurityMetrics.MeterName);
        meter.CreateObservableGauge<double>("gatehouse.server_key.age", ServerKeyAges, "s",
            "Age of the oldest server key each network still accepts: its newest, or a replaced one still in its grace period.");
        meter.CreateObservableGauge<int>("gatehouse.admin_tokens.expiring", AdminTokensExpiring, "{token}",
            "Admin tokens of each network that work now and expire within 30 days, not counting those a newer token already replaced.");
        meter.CreateObservableGauge<double>("gatehouse.client_certificate.expires_in", CertificateExpiries, "s",
            "Time until the first of each network's active client certificates expires; 0 when mTLS is on and no certificate is active.");
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            // The server listens, and this service starts, before the database has answered and been migrated.
            await _startup.Opened.WaitAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        var failing = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RefreshAsync(stoppingToken);
                failing = false;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // The gauges keep the last snapshot. An outage is already told by /readyz and each failed request; anything
                // else is said once when refreshing starts failing, not every interval.
                if (!failing && DatabaseOutage.Is(e))
                    LogOutage(_log);
                else if (!failing)
                    LogFailed(_log, e);
                failing = true;
            }
            try
            {
                await Task.Delay(RefreshInterval, _clock, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task RefreshAsync(CancellationToken ct)
    {
        var now = _clock.GetUtcNow();
        await using var db = await _dbs.CreateDbContextAsync(ct);
        var networks = await db.Networks.AsNoTracking().Select(n => new { n.Id, n.MtlsEnabled }).ToListAsync(ct);
        var keys = await db.ServerKeys.AsNoTracking().Where(k => k.ExpiresAt == null || k.ExpiresAt > now)
            .Select(k => new { k.NetworkId, k.CreatedAt }).ToListAsync(ct);
        var tokens = await db.AdminTokens.AsNoTracking().Where(t => t.RevokedAt == null && t.ReplacedAt == null && t.ExpiresAt > now)
            .Select(t => new { t.NetworkId, t.ExpiresAt }).ToListAsync(ct);
        var certificates = await db.ClientCertificates.AsNoTracking().Where(c => c.RevokedAt == null && c.NotAfter > now)
            .Select(c => new { c.NetworkId, c.NotAfter }).ToListAsync(ct);

        var oldestKey = keys.GroupBy(k => k.NetworkId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Min(k => k.CreatedAt), StringComparer.Ordinal);
        var firstExpiry = certificates.GroupBy(c => c.NetworkId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Min(c => c.NotAfter), StringComparer.Ordinal);
        var tokenExpiries = tokens.GroupBy(t => t.NetworkId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Select(t => t.ExpiresAt).ToArray(), StringComparer.Ordinal);
        _figures = networks.Select(n => new NetworkFigures(n.Id, n.MtlsEnabled,
                oldestKey.TryGetValue(n.Id, out var created) ? created : null,
                firstExpiry.TryGetValue(n.Id, out var notAfter) ? notAfter : null,
                tokenExpiries.GetValueOrDefault(n.Id) ?? []))
            .ToList();
    }

    private IEnumerable<Measurement<double>> ServerKeyAges()
    {
        var now = _clock.GetUtcNow();
        foreach (var network in _figures)
        {
            if (network.OldestServerKey is { } created)
                yield return new Measurement<double>(Math.Max(0, (now - created).TotalSeconds), Network(network));
        }
    }

    private IEnumerable<Measurement<int>> AdminTokensExpiring()
    {
        var now = _clock.GetUtcNow();
        var horizon = now + ExpiringWithin;
        foreach (var network in _figures)
            yield return new Measurement<int>(network.AdminTokenExpiries.Count(e => e > now && e <= horizon), Network(network));
    }

    private IEnumerable<Measurement<double>> CertificateExpiries()
    {
        var now = _clock.GetUtcNow();
        foreach (var network in _figures)
        {
            // With mTLS on and no certificate left, every backend call is refused: for an alert that is a certificate
            // that has expired, not a network that has none to watch.
            if (network.FirstCertificateExpiry is { } notAfter)
                yield return new Measurement<double>(Math.Max(0, (notAfter - now).TotalSeconds), Network(network));
            else if (network.MtlsEnabled)
                yield return new Measurement<double>(0, Network(network));
        }
    }

    private static KeyValuePair<string, object?> Network(NetworkFigures network) => new(NetworkTag, network.NetworkId);

    [LoggerMessage(EventId = 5000, Level = LogLevel.Debug, Message = "Cannot refresh the governance metrics while the database does not answer; they keep their last values")]
    private static partial void LogOutage(ILogger log);

    [LoggerMessage(EventId = 5001, Level = LogLevel.Error, Message = "Cannot refresh the governance metrics; they keep their last values")]
    private static partial void LogFailed(ILogger log, Exception exception);
}
