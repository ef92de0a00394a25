using System.Threading.Channels;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Observability;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Sessions;

/// <summary>What a client is handed when a session opens or refreshes.</summary>
/// <param name="Audited">For a new session, its <c>session.created</c> event, already stored with it.</param>
public sealed record IssuedSession(Session Session, User User, string AccessToken, string RefreshToken, DateTimeOffset IssuedAt,
    AuditEvent? Audited = null)
{
    // The tokens are secrets: never in a log line or a debugger's summary.
    public override string ToString() => $"IssuedSession {{ Session = {Session.Id} }}";
}

/// <summary>A login the rules apply: every field already checked at the edge.</summary>
public sealed record Login(string UserId, string DeviceId, string? DisplayName, string? DeviceKind, string? DeviceModel, string? SdkVersion);

public static class RevokeReasons
{
    public const string DeviceRebound = "device_rebound";
    public const string SessionCap = "session_cap";
    public const string Logout = "logout";
    public const string RefreshReuse = "refresh_reuse";
    public const string Banned = "banned";
    public const string SecureModeOn = "secure_mode_on";
}

/// <summary>
/// Opens, refreshes and ends sessions with group commit: the changes that arrive while one commit is on its way
/// to disk are written together in the next transaction, and each is answered only once that transaction is
/// durable. One fsync then serves many requests instead of one (docs/benchmarks.md). All of them were in flight
/// at once, so any order is one they could have had: a group applies its logins first, in arrival order, to the
/// rows they touch, then each refresh and logout in arrival order; the outcome is what one transaction per
/// request in that order would leave.
/// </summary>
public sealed class SessionService(IDbContextFactory<GatehouseDb> dbs, AccessTokens accessTokens, SessionRefreshLimiter refreshLimiter,
    SecurityMetrics metrics, TimeProvider clock, IOptions<GatehouseOptions> options) : BackgroundService
{
    private const string RefreshPrefix = "grt_";
    private const int RetriesAlone = 3;

    private readonly Channel<Work> _queue = Channel.CreateUnbounded<Work>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>
    /// Opens a session for the request's user on its device, with its audit event in the same transaction; returns
    /// once it is committed.
    /// </summary>
    public async Task<(IssuedSession? Issued, Refusal? Error)> OpenAsync(Network network, Login request, string? clientAddress,
        CancellationToken ct)
    {
        var (opened, error) = await SubmitAsync(new LoginWork(network, request, clientAddress, ct));
        return error is null ? (Issue(opened!), null) : (null, error);
    }

    /// <summary>Trades a refresh token for new tokens; a second use of one ends the session.</summary>
    public async Task<(IssuedSession? Issued, Refusal? Error)> RefreshAsync(Network network, string presented, CancellationToken ct)
    {
        var (opened, error) = await SubmitAsync(new Change<(Opened?, Refusal?)>(db => RefreshAsync(db, network, presented), ct));
        return error is null ? (Issue(opened!), null) : (null, error);
    }

    /// <summary>Ends a session at once: its access and refresh tokens are refused from now on.</summary>
    public Task<bool> RevokeAsync(Guid sessionId, string reason, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        return SubmitAsync(new Change<bool>(async db => await db.Sessions
            .Where(s => s.Id == sessionId && s.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.RevokedAt, now).SetProperty(x => x.RevokedReason, reason)) == 1, ct));
    }

    private async Task<T> SubmitAsync<T>(Work<T> work)
    {
        if (!_queue.Writer.TryWrite(work))
            // Stopping: the writer is gone, so this change is its own group.
            await WriteAloneAsync(work);
        return await work.Outcome.Task.WaitAsync(work.RequestAborted);
    }

    /// <summary>Signed here, on the request's own thread, so the single writer only ever waits for the database.</summary>
    private IssuedSession Issue(Opened opened)
    {
        var issuedAt = opened.IssuedAt;
        return new IssuedSession(opened.Session, opened.User, accessTokens.Issue(opened.Session, opened.User.UserId, issuedAt),
            opened.RefreshToken, issuedAt, opened.Audited);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var group = new List<Work>();
        // The stopping token is not passed on: changes already queued are written before the process stops.
        while (await _queue.Reader.WaitToReadAsync(CancellationToken.None))
        {
            while (group.Count < options.Value.Sessions.MaxChangesPerCommit && _queue.Reader.TryRead(out var work))
            {
                if (!work.RequestAborted.IsCancellationRequested)
                    group.Add(work);
                else
                    work.Cancel();
            }
            await WriteGroupAsync(group);
            group.Clear();
        }
    }

    private async Task WriteGroupAsync(List<Work> group)
    {
        if (group.Count <= 1)
        {
            if (group.Count == 1)
                await WriteAloneAsync(group[0]);
            return;
        }
        try
        {
            await WriteAsync(group);
        }
        catch (Exception)
        {
            // One change's conflict (another node created the same user or device first) must not fail the
            // others: each is tried again as its own group.
            foreach (var work in group)
                await WriteAloneAsync(work);
            return;
        }
        foreach (var work in group)
            work.Deliver();
    }

    private async Task WriteAloneAsync(Work work)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await WriteAsync([work]);
                work.Deliver();
                return;
            }
            catch (Exception e) when (attempt < RetriesAlone && (e is DbUpdateException || IsTransient(e)))
            {
                // Lost a race on a unique index (a first login of the same user elsewhere), or the database dropped a
                // pooled connection (a restart): nothing was committed, so read again and write again.
            }
            catch (Exception e)
            {
                work.Fail(e);
                return;
            }
        }
    }

    private static bool IsTransient(Exception failure)
    {
        for (var e = failure; e is not null; e = e.InnerException)
        {
            if (e is System.Data.Common.DbException { IsTransient: true })
                return true;
        }
        return false;
    }

    /// <summary>
    /// One transaction for the whole group: the logins (lock, read what they touch, apply each), then each other
    /// change, then one commit. Results are handed out by the caller only after the commit.
    /// </summary>
    private async Task WriteAsync(List<Work> group)
    {
        await using var db = await dbs.CreateDbContextAsync();
        await using var tx = await db.Database.BeginTransactionAsync();
        var logins = group.OfType<LoginWork>().ToList();
        if (logins.Count > 0)
        {
            var rows = new Dictionary<string, NetworkRows>(StringComparer.Ordinal);
            foreach (var networkId in logins.Select(l => l.Network.Id).Distinct(StringComparer.Ordinal))
                rows[networkId] = await NetworkRows.LoadAsync(db, networkId, logins.Where(l => l.Network.Id == networkId).Select(l => l.Request).ToList());
            var created = new NewRows();
            foreach (var login in logins)
                login.Result = Apply(rows[login.Network.Id], created, login);
            // New rows in order of their foreign keys, without change tracking; then the changes to rows read above.
            await BulkInsert.InsertAsync(db, created.Users);
            await BulkInsert.InsertAsync(db, created.Bindings);
            await BulkInsert.InsertAsync(db, created.Sessions);
            await BulkInsert.InsertAsync(db, created.RefreshTokens);
            await BulkInsert.InsertAsync(db, created.AuditEvents);
            await db.SaveChangesAsync();
            db.ChangeTracker.Clear();
        }
        foreach (var change in group.OfType<IChange>())
        {
            await change.ApplyAsync(db);
            db.ChangeTracker.Clear();
        }
        await tx.CommitAsync();
        metrics.ChangesCommitted(group.Count);
    }

    private (Opened?, Refusal?) Apply(NetworkRows rows, NewRows created, LoginWork login)
    {
        var settings = options.Value.Sessions;
        var now = clock.GetUtcNow();
        var request = login.Request;
        var network = login.Network;
        var deviceId = request.DeviceId;

        if (!rows.Users.TryGetValue(request.UserId, out var user))
        {
            user = new User
            {
                Id = Secrets.NewId(now),
                NetworkId = network.Id,
                UserId = request.UserId,
                DisplayName = request.DisplayName,
                CreatedAt = now,
                UpdatedAt = now,
            };
            created.Users.Add(user);
            rows.Users.Add(user.UserId, user);
        }
        else if (user.IsGlobalBan)
        {
            return (null, Errors.UserBanned);
        }
        else if (request.DisplayName is { Length: > 0 } displayName && displayName != user.DisplayName)
        {
            user.DisplayName = displayName;
            user.UpdatedAt = now;
        }

        // A device belongs to one user at a time: whoever registered it before is signed out of it.
        if (rows.Bindings.TryGetValue(deviceId, out var binding))
        {
            binding.UserRef = user.Id;
            binding.BoundAt = now;
        }
        else
        {
            binding = new DeviceBinding { NetworkId = network.Id, DeviceId = deviceId, UserRef = user.Id, BoundAt = now };
            created.Bindings.Add(binding);
            rows.Bindings.Add(deviceId, binding);
        }
        var onDevice = rows.UnrevokedSessionsOn(deviceId);
        foreach (var other in onDevice.Where(s => s.UserRef != user.Id && s.RevokedAt is null))
            Revoke(other, now, RevokeReasons.DeviceRebound);

        // The SDKs renew by opening a new session; the cap keeps renewals from piling up live tokens. Newest first:
        // by creation time, then by the order written (a group can open several in the same instant).
        var beyondCap = onDevice
            .Select((session, order) => (session, order))
            .Where(x => x.session.UserRef == user.Id && x.session.RevokedAt is null && x.session.ExpiresAt > now)
            .OrderByDescending(x => x.session.CreatedAt).ThenByDescending(x => x.order)
            .Skip(settings.MaxPerUserAndDevice - 1)
            .ToList();
        foreach (var (session, _) in beyondCap)
            Revoke(session, now, RevokeReasons.SessionCap);

        var opened = new Session
        {
            Id = Guid.CreateVersion7(now),
            NetworkId = network.Id,
            UserRef = user.Id,
            DeviceId = deviceId,
            DeviceKind = request.DeviceKind,
            DeviceModel = request.DeviceModel,
            SdkVersion = request.SdkVersion,
            CreatedAt = now,
            ExpiresAt = accessTokens.ExpiryFrom(now),
            OpenedWithAuthToken = network.SecureMode,
        };
        created.Sessions.Add(opened);
        onDevice.Add(opened);

        var (refreshRow, refreshToken) = NewRefreshToken(opened, now);
        created.RefreshTokens.Add(refreshRow);
        var audited = new AuditEvent
        {
            Kind = AuditKinds.SessionCreated,
            Outcome = Outcomes.Success,
            Actor = $"user:{user.UserId}",
            NetworkId = network.Id,
            UserId = user.UserId,
            Detail = $"session={opened.Id} device={deviceId}",
            ClientAddress = login.ClientAddress,
            OccurredAt = now,
        };
        created.AuditEvents.Add(audited);
        return (new Opened(opened, user, refreshToken, now) { Audited = audited }, null);
    }

    private async Task<(Opened?, Refusal?)> RefreshAsync(GatehouseDb db, Network network, string presented)
    {
        var now = clock.GetUtcNow();
        var digest = Secrets.Digest(presented);
        var row = await db.RefreshTokens.AsNoTracking().FirstOrDefaultAsync(r => r.Digest == digest);
        var session = row is null ? null : await db.Sessions.FirstOrDefaultAsync(s => s.Id == row.SessionId);
        if (row is null || session is null || session.NetworkId != network.Id || !Secrets.DigestsEqual(row.Digest, digest))
            return (null, Errors.RefreshTokenInvalid);
        if (!refreshLimiter.TryAcquire(session.Id))
            // The window is a minute, so a minute is the longest wait.
            return (null, Errors.TooManyRequests(60));
        var user = await db.Users.FirstAsync(u => u.Id == session.UserRef);
        if (user.IsGlobalBan)
            return (null, Errors.UserBanned);
        if (session.RevokedAt is not null)
            return (null, Errors.SessionEnded);

        if (now >= session.EndsBy(Settings.AbsoluteLifetime))
            return (null, Errors.SessionTooOld);
        if (row.UsedAt is null && now >= row.ExpiresAt)
            return (null, Errors.RefreshTokenExpired);

        // Claimed with a conditional update, so of many concurrent uses exactly one wins, on any node.
        var claimed = row.UsedAt is null && await db.RefreshTokens
            .Where(r => r.Digest == digest && r.UsedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.UsedAt, now)) == 1;
        if (!claimed)
        {
            Revoke(session, now, RevokeReasons.RefreshReuse);
            await db.SaveChangesAsync();
            return (null, Errors.RefreshTokenReused);
        }

        // A refresh renews the tokens, never the session: both stop at its absolute end.
        session.ExpiresAt = Min(accessTokens.ExpiryFrom(now), session.EndsBy(Settings.AbsoluteLifetime));
        var (refreshRow, refreshToken) = NewRefreshToken(session, now);
        db.RefreshTokens.Add(refreshRow);
        await db.SaveChangesAsync();
        return (new Opened(session, user, refreshToken, now), null);
    }

    /// <summary>The row (a digest) and the secret it stands for, which only the client ever holds.</summary>
    private (RefreshToken Row, string Secret) NewRefreshToken(Session session, DateTimeOffset now)
    {
        var secret = Secrets.Create(RefreshPrefix);
        return (new RefreshToken
        {
            Digest = Secrets.Digest(secret),
            SessionId = session.Id,
            IssuedAt = now,
            ExpiresAt = Min(now + Settings.RefreshTokenLifetime, session.EndsBy(Settings.AbsoluteLifetime)),
        }, secret);
    }

    private Configuration.SessionOptions Settings => options.Value.Sessions;

    private static DateTimeOffset Min(DateTimeOffset first, DateTimeOffset second) => first < second ? first : second;

    private static void Revoke(Session session, DateTimeOffset now, string reason)
    {
        session.RevokedAt = now;
        session.RevokedReason = reason;
    }

    /// <summary>The rows a group's logins create, written together after all of them are applied.</summary>
    private sealed class NewRows
    {
        public List<User> Users { get; } = [];
        public List<DeviceBinding> Bindings { get; } = [];
        public List<Session> Sessions { get; } = [];
        public List<RefreshToken> RefreshTokens { get; } = [];
        public List<AuditEvent> AuditEvents { get; } = [];
    }

    /// <summary>The rows of one network that a group's logins read and change, tracked by the group's context.</summary>
    private sealed class NetworkRows
    {
        public Dictionary<string, User> Users { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, DeviceBinding> Bindings { get; } = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<Session>> _unrevokedByDevice = new(StringComparer.Ordinal);

        /// <summary>The device's sessions not revoked when the group began, oldest first, plus those the group opened.</summary>
        public List<Session> UnrevokedSessionsOn(string deviceId)
        {
            if (!_unrevokedByDevice.TryGetValue(deviceId, out var sessions))
                _unrevokedByDevice.Add(deviceId, sessions = []);
            return sessions;
        }

        // Compiled, and each list of keys is one parameter (StorageSetup): the SQL is then the same for every group,
        // so EF neither translates the query nor rewrites its SQL per group (docs/benchmarks.md).
        private static readonly CompiledListQuery<string, List<string>, DeviceBinding> BindingsOn = new((db, networkId, deviceIds) =>
            db.DeviceBindings.Where(d => d.NetworkId == networkId && deviceIds.Contains(d.DeviceId)));

        private static readonly CompiledListQuery<string, List<string>, User> UsersNamed = new((db, networkId, userIds) =>
            db.Users.Where(u => u.NetworkId == networkId && userIds.Contains(u.UserId)));

        private static readonly CompiledListQuery<string, List<string>, Session> UnrevokedSessionsOnDevices = new((db, networkId, deviceIds) =>
            db.Sessions.Where(s => s.NetworkId == networkId && deviceIds.Contains(s.DeviceId) && s.RevokedAt == null)
                .OrderBy(s => s.CreatedAt));

        public static async Task<NetworkRows> LoadAsync(GatehouseDb db, string networkId, List<Login> requests)
        {
            var deviceIds = requests.Select(r => r.DeviceId).Distinct(StringComparer.Ordinal).ToList();
            var userIds = requests.Select(r => r.UserId).Distinct(StringComparer.Ordinal).ToList();

            // Taking the devices' binding rows first makes two nodes' logins on one device take turns (PostgreSQL's
            // default isolation would otherwise let both see no rival and both stay signed in). On SQLite the
            // transaction began IMMEDIATE and already holds the only write lock: the statement would only cost CPU
            // (a quarter of the group's reads, docs/benchmarks.md).
            if (!db.Database.IsSqlite())
            {
                await db.DeviceBindings.Where(d => d.NetworkId == networkId && deviceIds.Contains(d.DeviceId))
                    .ExecuteUpdateAsync(s => s.SetProperty(d => d.BoundAt, d => d.BoundAt));
            }

            var rows = new NetworkRows();
            await foreach (var binding in BindingsOn.Run(db, networkId, deviceIds))
                rows.Bindings.Add(binding.DeviceId, binding);
            await foreach (var user in UsersNamed.Run(db, networkId, userIds))
                rows.Users.Add(user.UserId, user);
            await foreach (var session in UnrevokedSessionsOnDevices.Run(db, networkId, deviceIds))
                rows.UnrevokedSessionsOn(session.DeviceId).Add(session);
            return rows;
        }
    }

    /// <summary>A request waiting for its group's commit.</summary>
    private abstract class Work(CancellationToken requestAborted)
    {
        public CancellationToken RequestAborted { get; } = requestAborted;
        public abstract void Deliver();
        public abstract void Fail(Exception failure);
        public abstract void Cancel();
    }

    private abstract class Work<T>(CancellationToken requestAborted) : Work(requestAborted)
    {
        public TaskCompletionSource<T> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Set while the group is written; handed out only once the group is committed.</summary>
        public T Result { get; set; } = default!;

        public override void Deliver() => Outcome.TrySetResult(Result);
        public override void Fail(Exception failure) => Outcome.TrySetException(failure);
        public override void Cancel() => Outcome.TrySetCanceled(RequestAborted);
    }

    private sealed class LoginWork(Network network, Login request, string? clientAddress, CancellationToken requestAborted)
        : Work<(Opened?, Refusal?)>(requestAborted)
    {
        public Network Network { get; } = network;
        public Login Request { get; } = request;
        public string? ClientAddress { get; } = clientAddress;
    }

    private interface IChange
    {
        Task ApplyAsync(GatehouseDb db);
    }

    /// <summary>A refresh or a logout: its own reads and writes, inside the group's transaction.</summary>
    private sealed class Change<T>(Func<GatehouseDb, Task<T>> apply, CancellationToken requestAborted) : Work<T>(requestAborted), IChange
    {
        public async Task ApplyAsync(GatehouseDb db) => Result = await apply(db);
    }

    private sealed record Opened(Session Session, User User, string RefreshToken, DateTimeOffset IssuedAt)
    {
        public AuditEvent? Audited { get; init; }

        // The refresh token is a secret: never in a log line or a debugger's summary.
        public override string ToString() => $"Opened {{ Session = {Session.Id} }}";
    }
}
