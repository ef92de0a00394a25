using System.Diagnostics.Metrics;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Observability;
using Gatehouse.Server.Operations;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Retention;

/// <summary>What one pass of <see cref="RetentionService"/> deleted.</summary>
internal sealed record Pruned(int AuditEvents, int Sessions, int RefreshTokens);

/// <summary>
/// Deletes, every <c>Gatehouse:Retention:Interval</c>, what no longer protects anyone: audit events past their
/// retention, sessions that ended long enough ago (with their refresh tokens), and refresh tokens long past their
/// own expiry. Deletes go in batches, so the single SQLite writer is never held for long. Every node may run it:
/// each delete is idempotent. Counts go to the log and to the gatehouse.retention.deleted counter.
/// </summary>
internal sealed partial class RetentionService(IDbContextFactory<GatehouseDb> dbs, IOptions<GatehouseOptions> options, TimeProvider clock,
    IMeterFactory meters, StartupGate startup, ILogger<RetentionService> log) : BackgroundService
{
    private const int Batch = 2_000;
    private readonly Counter<long> _deleted = meters.Create(SecurityMetrics.MeterName).CreateCounter<long>(
        "gatehouse.retention.deleted", "{row}", "Rows deleted by the retention service, by what they were (audit_event, session, refresh_token).");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Retention.Enabled)
            return;
        try
        {
            // The server starts listening, and this service, before the database has answered and been migrated.
            await startup.Opened.WaitAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await PruneAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The next pass tries again; a database that is down for a while loses nothing by waiting.
                LogFailed(e);
            }
            try
            {
                await Task.Delay(options.Value.Retention.Interval, clock, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async Task<Pruned> PruneAsync(CancellationToken ct = default)
    {
        var settings = options.Value;
        var now = clock.GetUtcNow();
        var auditBefore = now - settings.Retention.AuditEvents;
        var endedBefore = now - settings.Retention.EndedSessions;
        // A session nobody revoked is over once its absolute lifetime has passed or its last refresh token expired
        // (issued with its last access token, whose expiry the row keeps, and living RefreshTokenLifetime from then).
        var createdBefore = endedBefore - settings.Sessions.AbsoluteLifetime;
        var lastRefreshBefore = endedBefore - settings.Sessions.RefreshTokenLifetime;
        var tokensBefore = now - settings.Retention.SpentRefreshTokens;

        var auditEvents = await DeleteInBatchesAsync(db => db.AuditEvents.Where(e => e.OccurredAt < auditBefore).OrderBy(e => e.Id).Select(e => e.Id),
            (db, ids) => db.AuditEvents.Where(e => ids.Contains(e.Id)).ExecuteDeleteAsync(ct), ct);
        var refreshTokensOfEnded = 0;
        var sessions = await DeleteInBatchesAsync(
            db => db.Sessions.Where(s => (s.RevokedAt != null && s.RevokedAt < endedBefore) || s.CreatedAt < createdBefore || s.ExpiresAt < lastRefreshBefore)
                .OrderBy(s => s.Id).Select(s => s.Id),
            async (db, ids) =>
            {
                refreshTokensOfEnded += await db.RefreshTokens.Where(r => ids.Contains(r.SessionId)).ExecuteDeleteAsync(ct);
                return await db.Sessions.Where(s => ids.Contains(s.Id)).ExecuteDeleteAsync(ct);
            }, ct);
        var refreshTokens = refreshTokensOfEnded + await DeleteInBatchesAsync(
            db => db.RefreshTokens.Where(r => r.ExpiresAt < tokensBefore).OrderBy(r => r.Digest).Select(r => r.Digest),
            (db, digests) => db.RefreshTokens.Where(r => digests.Contains(r.Digest)).ExecuteDeleteAsync(ct), ct);
        // A spent auth token past its expiry is refused as expired anyway: its row protects nothing.
        await DeleteInBatchesAsync(db => db.SpentAuthTokens.Where(t => t.ExpiresAt < now).OrderBy(t => t.Jti).Select(t => t.Jti),
            (db, ids) => db.SpentAuthTokens.Where(t => ids.Contains(t.Jti)).ExecuteDeleteAsync(ct), ct);

        _deleted.Add(auditEvents, new KeyValuePair<string, object?>("what", "audit_event"));
        _deleted.Add(sessions, new KeyValuePair<string, object?>("what", "session"));
        _deleted.Add(refreshTokens, new KeyValuePair<string, object?>("what", "refresh_token"));
        if (auditEvents + sessions + refreshTokens > 0)
            LogPruned(auditEvents, sessions, refreshTokens);
        return new Pruned(auditEvents, sessions, refreshTokens);
    }

    private async Task<int> DeleteInBatchesAsync<TKey>(Func<GatehouseDb, IQueryable<TKey>> keys, Func<GatehouseDb, List<TKey>, Task<int>> delete,
        CancellationToken ct)
    {
        var total = 0;
        while (true)
        {
            await using var db = await dbs.CreateDbContextAsync(ct);
            var batch = await keys(db).Take(Batch).ToListAsync(ct);
            if (batch.Count == 0)
                return total;
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            total += await delete(db, batch);
            await transaction.CommitAsync(ct);
        }
    }

    [LoggerMessage(EventId = 3000, Level = LogLevel.Information,
        Message = "Retention: deleted {AuditEvents} audit events, {Sessions} ended sessions and {RefreshTokens} refresh tokens")]
    private partial void LogPruned(int auditEvents, int sessions, int refreshTokens);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Error, Message = "Retention pass failed; the next pass tries again")]
    private partial void LogFailed(Exception exception);
}
