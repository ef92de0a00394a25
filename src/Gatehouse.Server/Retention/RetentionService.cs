using System.Diagnostics.Metrics;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Observability;
using Gatehouse.Server.Operations;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Retention;

/// <summary>What one pass of <see cref="RetentionService"/> deleted.</summary>
internal sealed record Pruned(int AuditEvents, int Sessions, int RefreshTokens, int Visitors = 0);

/// <summary>
/// Deletes, every <c>Gatehouse:Retention:Interval</c>, what no longer protects anyone: audit events past their
/// retention, sessions that ended long enough ago (with their refresh tokens), and refresh tokens long past their
/// own expiry, and visitors and bots inactive for <c>Gatehouse:Retention:InactiveVisitors</c> (with their sessions
/// and device bindings; audited per network). Deletes go in batches, so the single SQLite writer is never held for long. Every node may run it:
/// each delete is idempotent. Counts go to the log and to the gatehouse.retention.deleted counter.
/// </summary>
internal sealed partial class RetentionService(IDbContextFactory<GatehouseDb> dbs, IOptions<GatehouseOptions> options, TimeProvider clock,
    IMeterFactory meters, StartupGate startup, AuditLog audit, ILogger<RetentionService> log) : BackgroundService
{
    internal const int Batch = 2_000;

    /// <summary>The PostgreSQL advisory lock each batch's transaction holds (migrations hold 4711001, key rotations 4711002).</summary>
    internal const long PassLock = 4711003;

    /// <summary>How long a batch waits for another node's batch to let <see cref="PassLock"/> go before its pass fails (to try again at the next interval).</summary>
    private static readonly TimeSpan PassLockWait = TimeSpan.FromSeconds(30);
    private readonly Counter<long> _deleted = meters.Create(SecurityMetrics.MeterName).CreateCounter<long>(
        "gatehouse.retention.deleted", "{row}", "Rows deleted by the retention service, by what they were (audit_event, session, refresh_token, visitor).");

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

        var auditEvents = await DeleteAuditEventsBeforeAsync(auditBefore, ct);
        var refreshTokensOfEnded = 0;
        var sessions = await DeleteInBatchesAsync(Guid.Empty,
            (db, after) => db.Sessions.Where(s => s.Id.CompareTo(after) > 0
                    && ((s.RevokedAt != null && s.RevokedAt < endedBefore) || s.CreatedAt < createdBefore || s.ExpiresAt < lastRefreshBefore))
                .OrderBy(s => s.Id).Select(s => s.Id),
            async (db, ids) =>
            {
                refreshTokensOfEnded += await db.RefreshTokens.Where(r => ids.Contains(r.SessionId)).ExecuteDeleteAsync(ct);
                return await db.Sessions.Where(s => ids.Contains(s.Id)).ExecuteDeleteAsync(ct);
            }, ct);
        var refreshTokens = refreshTokensOfEnded + await DeleteInBatchesAsync(string.Empty,
            (db, after) => db.RefreshTokens.Where(r => string.Compare(r.Digest, after) > 0 && r.ExpiresAt < tokensBefore).OrderBy(r => r.Digest).Select(r => r.Digest),
            (db, digests) => db.RefreshTokens.Where(r => digests.Contains(r.Digest)).ExecuteDeleteAsync(ct), ct);
        // A spent auth token past its expiry is refused as expired anyway: its row protects nothing.
        await DeleteInBatchesAsync(string.Empty,
            (db, after) => db.SpentAuthTokens.Where(t => string.Compare(t.Jti, after) > 0 && t.ExpiresAt < now).OrderBy(t => t.Jti).Select(t => t.Jti),
            (db, ids) => db.SpentAuthTokens.Where(t => ids.Contains(t.Jti)).ExecuteDeleteAsync(ct), ct);
        // A secret the console made but no page took within its five minutes: nobody will see it now.
        await DeleteInBatchesAsync(Guid.Empty,
            (db, after) => db.OneTimeReveals.Where(r => r.Id.CompareTo(after) > 0 && r.ExpiresAt < now).OrderBy(r => r.Id).Select(r => r.Id),
            (db, ids) => db.OneTimeReveals.Where(r => ids.Contains(r.Id)).ExecuteDeleteAsync(ct), ct);

        var visitors = await PruneInactiveVisitorsAsync(now - settings.Retention.InactiveVisitors, settings.Sessions.AccessTokenLifetime, ct);

        _deleted.Add(auditEvents, new KeyValuePair<string, object?>("what", "audit_event"));
        _deleted.Add(visitors, new KeyValuePair<string, object?>("what", "visitor"));
        _deleted.Add(sessions, new KeyValuePair<string, object?>("what", "session"));
        _deleted.Add(refreshTokens, new KeyValuePair<string, object?>("what", "refresh_token"));
        if (auditEvents + sessions + refreshTokens + visitors > 0)
            LogPruned(auditEvents, sessions, refreshTokens, visitors);
        return new Pruned(auditEvents, sessions, refreshTokens, visitors);
    }

    /// <summary>
    /// Visitors and bots none of whose sessions was opened or refreshed since <paramref name="inactiveSince"/> (a refresh
    /// moves a session's expiry to an access token's lifetime after it), deleted with every row that names them. Each
    /// batch is judged again inside the transaction that deletes it, after its rows are locked: one may have come back
    /// since the batch was read, and its new session must not go with it.
    /// </summary>
    private async Task<int> PruneInactiveVisitorsAsync(DateTimeOffset inactiveSince, TimeSpan accessTokenLifetime, CancellationToken ct)
    {
        var refreshedAfter = inactiveSince + accessTokenLifetime;
        IQueryable<User> Inactive(GatehouseDb db, IQueryable<User> users) => users.Where(u => u.Kind != UserKind.SignedIn && u.CreatedAt < inactiveSince
            && !db.Sessions.Any(s => s.UserRef == u.Id && (s.CreatedAt >= inactiveSince || s.ExpiresAt > refreshedAfter)));
        var byNetwork = new Dictionary<string, (int Visitors, int Bots)>(StringComparer.Ordinal);
        var total = await DeleteInBatchesAsync(string.Empty,
            (db, after) => Inactive(db, db.Users.Where(u => string.Compare(u.Id, after) > 0)).OrderBy(u => u.Id).Select(u => u.Id),
            async (db, candidates) =>
            {
                if (!db.Database.IsSqlite())
                    await LockVisitorsAsync(db, candidates, ct);
                var inactive = await Inactive(db, db.Users.Where(u => candidates.Contains(u.Id))).Select(u => new { u.Id, u.NetworkId, u.Kind }).ToListAsync(ct);
                foreach (var user in inactive)
                {
                    var (visitors, bots) = byNetwork.GetValueOrDefault(user.NetworkId);
                    byNetwork[user.NetworkId] = user.Kind == UserKind.Bot ? (visitors, bots + 1) : (visitors + 1, bots);
                }
                var ids = inactive.Select(u => u.Id).ToList();
                var sessionIds = db.Sessions.Where(s => ids.Contains(s.UserRef)).Select(s => s.Id);
                await db.RefreshTokens.Where(r => sessionIds.Contains(r.SessionId)).ExecuteDeleteAsync(ct);
                await db.Sessions.Where(s => ids.Contains(s.UserRef)).ExecuteDeleteAsync(ct);
                await db.DeviceBindings.Where(d => ids.Contains(d.UserRef)).ExecuteDeleteAsync(ct);
                return await db.Users.Where(u => ids.Contains(u.Id)).ExecuteDeleteAsync(ct);
            }, ct);
        foreach (var (networkId, (visitors, bots)) in byNetwork)
            audit.Record(SecurityEvents.UsersPruned(networkId, visitors, bots));
        return total;
    }

    /// <summary>
    /// On PostgreSQL, the rows of these users that the deletes change, locked in the order the session writer's groups
    /// take theirs: their device bindings (network by network, each network's by device), the users in key order (a
    /// group's new sessions take shares of their users' rows in that order, change 89), their sessions' refresh tokens
    /// (a refresh claims its token before it locks the session), their sessions in key order. Without these locks the
    /// deletes took rows in their statements' order (sessions by the user index, then bindings), so a pass could hold a
    /// session a group went on to end while it waited for the binding that group held, until PostgreSQL's deadlock
    /// check failed one of them (docs/benchmarks.md, change 88).
    /// Once they are locked nothing can make these users active: a login must pass the binding or the user's row, a
    /// refresh its token and its session. SQLite's transaction holds the only write lock already.
    /// </summary>
    private static async Task LockVisitorsAsync(GatehouseDb db, List<string> users, CancellationToken ct)
    {
        var keys = users.ToArray();
        await db.Database.ExecuteSqlAsync($"""
            SELECT NULL FROM "DeviceBindings" WHERE "UserRef" = ANY({keys}) ORDER BY "NetworkId" COLLATE "C", "DeviceId" FOR UPDATE
            """, ct);
        await db.Database.ExecuteSqlAsync($"""SELECT NULL FROM "Users" WHERE "Id" = ANY({keys}) ORDER BY "Id" COLLATE "C" FOR UPDATE""", ct);
        await db.Database.ExecuteSqlAsync($"""
            SELECT NULL FROM "RefreshTokens" WHERE "SessionId" IN (SELECT "Id" FROM "Sessions" WHERE "UserRef" = ANY({keys}))
            ORDER BY "Digest" FOR UPDATE
            """, ct);
        await db.Database.ExecuteSqlAsync($"""SELECT NULL FROM "Sessions" WHERE "UserRef" = ANY({keys}) ORDER BY "Id" FOR UPDATE""", ct);
    }

    /// <summary>
    /// Audit events are numbered as they are written, so their keys follow their times (give or take the moment
    /// between two nodes' writes, or a minute's tally of refusals written at its end): the old ones are found from the
    /// lowest key up, as the table has no index on the time alone. The walk ends at the first batch with no old event,
    /// so old events written after a run of newer ones (a node whose clock ran ahead; 2,000 in a row can stop it, 4,000
    /// always will) wait for a pass after those are old too.
    /// </summary>
    private async Task<int> DeleteAuditEventsBeforeAsync(DateTimeOffset before, CancellationToken ct)
    {
        var total = 0;
        var after = 0L;
        while (true)
        {
            await using var db = await dbs.CreateDbContextAsync(ct);
            var batch = await db.AuditEvents.Where(e => e.Id > after).OrderBy(e => e.Id).Take(Batch)
                .Select(e => new { e.Id, e.OccurredAt }).ToListAsync(ct);
            var old = batch.Where(e => e.OccurredAt < before).Select(e => e.Id).ToList();
            if (old.Count == 0)
                return total;
            total += await db.AuditEvents.Where(e => old.Contains(e.Id)).ExecuteDeleteAsync(ct);
            after = batch[^1].Id;
        }
    }

    /// <summary>
    /// Deletes what <paramref name="keysAfter"/> finds, a batch at a time. Each batch is read from just past the last
    /// key of the one before (the first from <paramref name="lowest"/>, a value below every key), not from the lowest
    /// key again: the rows a batch leaves (live ones among the old, visitors who came back) would otherwise be read
    /// once more by every later batch, so a pass with many batches read its table about as many times over (change 92).
    /// A short batch ends the walk. A row that qualifies only once the walk is past its key (another node's pass, at a
    /// later moment, deleted a visitor's last session; a node whose clock runs ahead spent an auth token) waits for the
    /// next pass.
    /// </summary>
    private async Task<int> DeleteInBatchesAsync<TKey>(TKey lowest, Func<GatehouseDb, TKey, IQueryable<TKey>> keysAfter,
        Func<GatehouseDb, List<TKey>, Task<int>> delete, CancellationToken ct)
    {
        var total = 0;
        var after = lowest;
        while (true)
        {
            await using var db = await dbs.CreateDbContextAsync(ct);
            var batch = await keysAfter(db, after).Take(Batch).ToListAsync(ct);
            if (batch.Count == 0)
                return total;
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            // Every node runs a pass; on PostgreSQL their batches take turns. The ended sessions' batches delete refresh
            // tokens in their plan's order and the visitors' lock them by digest: two nodes' passes over the same rows
            // at once could each hold one the other wanted next, until the deadlock check failed one of the passes.
            // Another node's batch may hold the lock longer than the seconds a statement gets (StorageSetup): this
            // wait alone gets more, and nothing is held while it waits.
            if (!db.Database.IsSqlite())
            {
                var timeout = db.Database.GetCommandTimeout();
                db.Database.SetCommandTimeout(PassLockWait);
                await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({PassLock})", ct);
                db.Database.SetCommandTimeout(timeout);
            }
            total += await delete(db, batch);
            await transaction.CommitAsync(ct);
            // The read found everything past the last batch: reading on would read the rest of the table to find nothing.
            if (batch.Count < Batch)
                return total;
            after = batch[^1];
        }
    }

    [LoggerMessage(EventId = 3000, Level = LogLevel.Information,
        Message = "Retention: deleted {AuditEvents} audit events, {Sessions} ended sessions, {RefreshTokens} refresh tokens and {Visitors} inactive visitors and bots")]
    private partial void LogPruned(int auditEvents, int sessions, int refreshTokens, int visitors);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Error, Message = "Retention pass failed; the next pass tries again")]
    private partial void LogFailed(Exception exception);
}
