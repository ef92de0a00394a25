using System.Collections.Frozen;
using System.Threading.Channels;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Observability;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Audit;

/// <summary>
/// Takes security events without making the request wait for a disk write: a background writer stores them
/// in batches (one commit for many events under load). Events still queued when the process is killed are
/// lost, and so are the last moment's stored ones on power loss (<see cref="UnsyncedCommit"/>); a graceful stop
/// writes them all. A session's creation is the exception: the session writer stores it in
/// the session's own transaction, so an acknowledged session always has its event. Each event is also one
/// structured log line.
/// </summary>
internal sealed partial class AuditLog(IDbContextFactory<GatehouseDb> dbs, SecurityMetrics metrics, TimeProvider clock, ILogger<AuditLog> logger,
    IOptions<GatehouseOptions> options)
    : BackgroundService
{
    private const int MaxBatch = 500;

    /// <summary>The longest userId an audit row keeps; a longer one is cut and marked with "…".</summary>
    public const int MaxUserIdLength = 256;
    /// <summary>
    /// How long the writer lets events gather before a commit. Each commit rewrites the pages its rows end on, so the
    /// fewer rows a commit holds the more each costs: a batch of 60 mint events (2 ms of the mint's load) cost 6.5 µs
    /// an event, one of 300 (10 ms) 4.5 µs (AuditWriteBenchmarks, docs/benchmarks.md, change 72).
    /// </summary>
    private static readonly TimeSpan Gather = TimeSpan.FromMilliseconds(10);
    // Wait, not DropWrite: with DropWrite TryWrite reports success for an event it throws away, so a full queue
    // would lose events silently. TryWrite never waits; it answers false, and the event is counted as dropped.
    private readonly Channel<AuditEvent> _queue = Channel.CreateBounded<AuditEvent>(
        new BoundedChannelOptions(options.Value.Audit.QueueCapacity) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
    private long _accepted;
    private long _settled;

    /// <summary>
    /// Refusals a flood can produce. Of each address, kind, reason and network, the first few of a minute are written
    /// as themselves; the rest are counted and written as one summary row when the minute is over, so a flood can
    /// neither fill the disk nor push real events out of the queue. Every one is still counted in the metrics.
    /// </summary>
    private static readonly FrozenSet<string> Floodable = new[]
    {
        AuditKinds.AccessRefused, AuditKinds.ServerKeyRefused, AuditKinds.AdminTokenRefused, AuditKinds.MtlsRefused,
        AuditKinds.SessionRefused, AuditKinds.AuthTokenRefused, AuditKinds.AdminSignInRefused, AuditKinds.RateLimited,
    }.ToFrozenSet(StringComparer.Ordinal);

    public const int RefusalsWrittenPerMinute = 10;
    private const int MaxRefusalKeys = 100_000;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<RefusalKey, RefusalCount> _refusals = new();

    private readonly record struct RefusalKey(long Minute, string? Address, string Kind, string? Reason, string? NetworkId);

    private sealed class RefusalCount
    {
        public int Seen;
    }

    /// <summary>
    /// The one way a security event is recorded: one structured log line and a metric for each, and a row written
    /// by the background writer (unless the change it describes already stored it, see
    /// <see cref="SecurityEvent.StoredWithChange"/>).
    /// </summary>
    public void Record(SecurityEvent raised, RequestOrigin? origin = null)
    {
        if (raised.StoredWithChange)
        {
            Announce(raised.Kind, raised.Outcome, raised.Actor, raised.NetworkId, raised.Reason, origin);
            return;
        }
        var entry = Row(raised, clock.GetUtcNow(), origin?.ClientAddress);
        if (entry.Outcome == Outcomes.Refused && Floodable.Contains(entry.Kind) && _refusals.Count < MaxRefusalKeys)
        {
            var key = new RefusalKey(entry.OccurredAt.ToUnixTimeSeconds() / 60, entry.ClientAddress, entry.Kind, entry.Reason, entry.NetworkId);
            if (Interlocked.Increment(ref _refusals.GetOrAdd(key, _ => new RefusalCount()).Seen) > RefusalsWrittenPerMinute)
            {
                metrics.Event(entry.Kind, entry.Outcome, entry.Reason);
                return;
            }
        }
        Announce(entry.Kind, entry.Outcome, entry.Actor, entry.NetworkId, entry.Reason, origin);
        Enqueue(entry);
    }

    /// <summary>
    /// The row an event is stored as. Refused requests are recorded with what they presented, in a form every database
    /// stores (<see cref="Storable"/>); capped, no request can make a row of any size.
    /// </summary>
    public static AuditEvent Row(SecurityEvent raised, DateTimeOffset at, string? clientAddress) => new()
    {
        Kind = Storable(raised.Kind, 64)!,
        Outcome = Storable(raised.Outcome, 32)!,
        Actor = Storable(raised.Actor, 300)!,
        NetworkId = Storable(raised.NetworkId, 64),
        UserId = Storable(raised.UserId, MaxUserIdLength),
        Reason = Storable(raised.Reason, 64),
        Detail = Storable(raised.Detail, 1024),
        ClientAddress = Storable(clientAddress, 64),
        OccurredAt = at,
    };

    private void Enqueue(AuditEvent entry)
    {
        if (_queue.Writer.TryWrite(entry))
        {
            Interlocked.Increment(ref _accepted);
        }
        else
        {
            metrics.AuditDropped(entry.Kind);
            LogDropped(entry.Kind);
        }
    }

    /// <summary>One row for each address, kind, reason and network whose refusals went past the first few of a minute.</summary>
    private void WriteRefusalSummaries(bool includeCurrentMinute)
    {
        var now = clock.GetUtcNow();
        var currentMinute = now.ToUnixTimeSeconds() / 60;
        foreach (var (key, count) in _refusals)
        {
            if ((key.Minute >= currentMinute && !includeCurrentMinute) || !_refusals.TryRemove(key, out _))
                continue;
            var more = Volatile.Read(ref count.Seen) - RefusalsWrittenPerMinute;
            if (more <= 0)
                continue;
            var minuteStart = DateTimeOffset.FromUnixTimeSeconds(key.Minute * 60);
            Enqueue(new AuditEvent
            {
                Kind = key.Kind,
                Outcome = Outcomes.Refused,
                Actor = "aggregate",
                NetworkId = key.NetworkId,
                Reason = key.Reason,
                Detail = $"refused {more} more time(s) in the minute from {minuteStart:yyyy-MM-dd HH:mm} UTC (the first {RefusalsWrittenPerMinute} are rows of their own)",
                ClientAddress = key.Address,
                OccurredAt = now < minuteStart.AddMinutes(1) ? now : minuteStart.AddMinutes(1),
            });
        }
    }

    /// <summary>
    /// At most <paramref name="max"/> UTF-16 units, cut short with "…" but never between the halves of a surrogate
    /// pair; NUL and unpaired surrogates become U+FFFD. PostgreSQL stores no NUL in text and no UTF-8 encoder writes
    /// half a pair, so either, in one refused request's row, failed the whole batch written with it: every other
    /// event in it was lost.
    /// </summary>
    private static string? Storable(string? value, int max)
    {
        if (value is null)
            return null;
        if (value.Length > max)
        {
            var kept = char.IsHighSurrogate(value[max - 2]) ? max - 2 : max - 1;
            value = string.Concat(value.AsSpan(0, kept), "…");
        }
        if (value.AsSpan().IndexOfAny(Unstorable) < 0)
            return value;
        var chars = value.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
                i++;
            else if (chars[i] == '\0' || char.IsSurrogate(chars[i]))
                chars[i] = '\uFFFD';
        }
        return new string(chars);
    }

    /// <summary>NUL and every surrogate: a value without any is stored as it is.</summary>
    private static readonly System.Buffers.SearchValues<char> Unstorable =
        System.Buffers.SearchValues.Create("\0" + string.Concat(Enumerable.Range(0xD800, 0x800).Select(c => (char)c)));

    private void Announce(string kind, string outcome, string actor, string? networkId, string? reason, RequestOrigin? origin)
    {
        LogEvent(kind, outcome, actor, networkId, reason, origin?.TraceId);
        metrics.Event(kind, outcome, reason);
    }

    /// <summary>Waits until every event recorded before the call is stored (or given up on).</summary>
    public async Task FlushAsync(CancellationToken ct = default)
    {
        WriteRefusalSummaries(includeCurrentMinute: true);
        var target = Interlocked.Read(ref _accepted);
        while (Interlocked.Read(ref _settled) < target)
            await Task.Delay(5, ct);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        WriteRefusalSummaries(includeCurrentMinute: true);
        _queue.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = SummarizeRefusalsAsync(stoppingToken);
        var batch = new List<AuditEvent>(MaxBatch);
        // Drain on stop too: the token only ends the wait for new events, never a write in progress.
        while (await WaitSafelyAsync(stoppingToken))
        {
            // Under load a moment's wait gathers many events into one commit: each transaction's fixed cost (begin,
            // commit, a connection from the pool) was half the writer's CPU when it took a handful of events at a
            // time (docs/benchmarks.md). An idle server only stores its events ten milliseconds later.
            if (_queue.Reader.Count < MaxBatch && !stoppingToken.IsCancellationRequested)
                await Task.Delay(Gather, CancellationToken.None);
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var entry))
                batch.Add(entry);
            await WriteAsync(batch);
            Interlocked.Add(ref _settled, batch.Count);
            batch.Clear();
        }
    }

    private async Task SummarizeRefusalsAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(15), clock);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
                WriteRefusalSummaries(includeCurrentMinute: false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task<bool> WaitSafelyAsync(CancellationToken stoppingToken)
    {
        try
        {
            return await _queue.Reader.WaitToReadAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return _queue.Reader.TryPeek(out _);
        }
    }

    private async Task WriteAsync(List<AuditEvent> batch)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var db = await dbs.CreateDbContextAsync();
                // One commit for the whole batch, however many statements it takes.
                await UnsyncedCommit.RunAsync(db, context => BulkInsert.AppendAsync(context, batch));
                return;
            }
            catch (Exception e) when (attempt < 5 && e is DbUpdateException or InvalidOperationException or System.Data.Common.DbException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt));
            }
            catch (Exception e) when (DatabaseOutage.Is(e))
            {
                // The lost events matter, the stack trace of a database that does not answer does not.
                LogWriteFailedUnavailable(batch.Count, DatabaseOutage.Describe(e));
                return;
            }
            catch (Exception e)
            {
                LogWriteFailed(e, batch.Count);
                return;
            }
        }
    }

    [LoggerMessage(EventId = 1000, Level = LogLevel.Information,
        Message = "Security event {Kind} {Outcome} actor={Actor} network={NetworkId} reason={Reason} request={RequestId}")]
    private partial void LogEvent(string kind, string outcome, string actor, string? networkId, string? reason, string? requestId);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Error, Message = "Audit queue full: dropped a {Kind} event (gatehouse.audit.dropped counts them)")]
    private partial void LogDropped(string kind);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Error, Message = "Could not store {Count} audit events")]
    private partial void LogWriteFailed(Exception exception, int count);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Error, Message = "Could not store {Count} audit events: the database does not answer ({Failure})")]
    private partial void LogWriteFailedUnavailable(int count, string failure);
}

/// <summary>Event kinds, one catalogue so the console can filter on them.</summary>
internal static class AuditKinds
{
    public const string NetworkCreated = "network.created";
    public const string ApiKeyRegenerated = "network.api_key_regenerated";
    public const string SecureModeChanged = "network.secure_mode_changed";
    public const string AuthTokenUseChanged = "network.auth_token_use_changed";
    public const string VisitorModeChanged = "network.visitor_mode_changed";
    public const string BotModeChanged = "network.bot_mode_changed";
    public const string VisitorSecretGenerated = "visitor_secret.generated";
    public const string UsersPruned = "user.pruned";
    public const string ServerKeyGenerated = "server_key.generated";
    public const string ServerKeyRefused = "server_key.refused";
    public const string AuthTokenMinted = "auth_token.minted";
    public const string AuthTokenRefused = "auth_token.refused";
    public const string SessionCreated = "session.created";
    public const string SessionRefused = "session.refused";
    public const string SessionRefreshed = "session.refreshed";
    public const string SessionRevoked = "session.revoked";
    public const string RefreshReuse = "session.refresh_reuse";
    public const string AccessRefused = "access.refused";
    public const string RateLimited = "request.rate_limited";
    public const string TokensIntrospected = "token.introspected";
    public const string AdminCreated = "admin.created";
    public const string AdminSignedIn = "admin.signed_in";
    public const string AdminSignInRefused = "admin.sign_in_refused";
    public const string AdminSignedOut = "admin.signed_out";
    public const string AdminPasswordChanged = "admin.password_changed";
    public const string AdminPasswordReset = "admin.password_reset";
    public const string AdminUnlocked = "admin.unlocked";
    public const string AdminDisabled = "admin.disabled";
    public const string AdminEnabled = "admin.enabled";
    public const string TwoFactorEnabled = "admin.two_factor_enabled";
    public const string TwoFactorDisabled = "admin.two_factor_disabled";
    public const string RecoveryCodesGenerated = "admin.recovery_codes_generated";
    public const string RecoveryCodeUsed = "admin.recovery_code_used";
    public const string TwoFactorRequirementChanged = "portal.two_factor_required_changed";
    public const string AdminRoleChanged = "admin.role_changed";
    public const string AdminRequested = "admin.requested";
    public const string AdminRequestDeclined = "admin.request_declined";
    public const string ChatSettingsChanged = "network.chat_settings_changed";
    public const string SigningKeyRotated = "signing_key.rotated";
    public const string SigningKeyRetired = "signing_key.retired";
    public const string AdminTokenGenerated = "admin_token.generated";
    public const string AdminTokenRevoked = "admin_token.revoked";
    public const string AdminTokenRefused = "admin_token.refused";
    public const string CertificateCreated = "certificate.created";
    public const string CertificateRevoked = "certificate.revoked";
    public const string MtlsChanged = "network.mtls_changed";
    public const string MtlsRefused = "mtls.refused";
    public const string UserBanned = "user.banned";
    public const string UserUnbanned = "user.unbanned";
    public const string UserSessionsRevoked = "user.sessions_revoked";

    public static readonly IReadOnlyList<string> All = typeof(AuditKinds)
        .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Where(f => f.IsLiteral)
        .Select(f => (string)f.GetRawConstantValue()!)
        .Order(StringComparer.Ordinal)
        .ToList();
}

internal static class Outcomes
{
    public const string Success = "success";
    public const string Refused = "refused";
}
