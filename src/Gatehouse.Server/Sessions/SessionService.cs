using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Observability;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using SessionOptions = Gatehouse.Server.Configuration.SessionOptions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Sessions;

/// <summary>What a client is handed when a session opens or refreshes.</summary>
/// <param name="Raised">For a new session, its <c>session.created</c> event, already stored with it.</param>
/// <param name="RefreshToken">None for a session the customer's backend opened (<see cref="Login.Backend"/>).</param>
internal sealed record IssuedSession(Session Session, User User, string AccessToken, string? RefreshToken, DateTimeOffset IssuedAt,
    SecurityEvent? Raised = null)
{
    // The tokens are secrets: never in a log line or a debugger's summary.
    public override string ToString() => $"IssuedSession {{ Session = {Session.Id} }}";
}

/// <summary>
/// Opens, refreshes and ends sessions through one group-commit writer (<see cref="GroupCommit{TDb}"/>): the
/// changes in flight together are written in one transaction, and each is answered once it is durable. All of them
/// were in flight at once, so any order is one they could have had: a group applies its logins first, in arrival
/// order, to the rows they touch, then each refresh and logout in arrival order; the outcome is what one transaction
/// per request in that order would leave. What each change does is <see cref="SessionRules"/>'; this class reads the
/// rows the rules need and writes what they changed.
/// </summary>
internal sealed class SessionService : BackgroundService
{
    private readonly AccessTokens _accessTokens;
    private readonly SessionRefreshLimiter _refreshLimiter;
    private readonly TimeProvider _clock;
    private readonly IOptions<GatehouseOptions> _options;
    private readonly GroupCommit<GatehouseDb> _writer;

    public SessionService(IDbContextFactory<GatehouseDb> dbs, AccessTokens accessTokens, SessionRefreshLimiter refreshLimiter,
        SecurityMetrics metrics, TimeProvider clock, IOptions<GatehouseOptions> options)
    {
        _accessTokens = accessTokens;
        _refreshLimiter = refreshLimiter;
        _clock = clock;
        _options = options;
        _writer = new GroupCommit<GatehouseDb>(dbs, () => options.Value.Sessions.MaxChangesPerCommit, WriteGroupAsync, metrics.ChangesCommitted);
    }

    private SessionOptions Settings => _options.Value.Sessions;

    /// <summary>
    /// Opens a session for the user on its device, with its audit event in the same transaction; returns once it is
    /// committed.
    /// </summary>
    public async Task<(IssuedSession? Issued, Refusal? Error)> OpenAsync(Network network, Login request, string? clientAddress, CancellationToken ct)
    {
        var (opened, error) = await _writer.SubmitAsync(new LoginWork(network, request, clientAddress, ct));
        return error is null ? (Issue(opened!), null) : (null, error);
    }

    /// <summary>
    /// Trades a refresh token for new tokens; a second use of one ends the session. A success's
    /// <c>session.refreshed</c> event is stored in the same transaction (<see cref="IssuedSession.Raised"/>).
    /// </summary>
    public async Task<(IssuedSession? Issued, Refusal? Error)> RefreshAsync(Network network, string presented, string? clientAddress, CancellationToken ct)
    {
        var (opened, error) = await _writer.SubmitAsync(new RefreshWork(network, presented, clientAddress, ct));
        return error is null ? (Issue(opened!), null) : (null, error);
    }

    /// <summary>
    /// Ends a session at once: its access and refresh tokens are refused from now on. When this call ended it,
    /// <paramref name="raised"/> is stored in the same transaction and returned, ready to record; null when the
    /// session was already ended.
    /// </summary>
    public Task<SecurityEvent?> RevokeAsync(Guid sessionId, string reason, SecurityEvent raised, string? clientAddress, CancellationToken ct) =>
        _writer.SubmitAsync(new RevokeWork(sessionId, reason, raised, clientAddress, ct));

    /// <summary>Signed here, on the request's own thread, so the single writer only ever waits for the database.</summary>
    private IssuedSession Issue(Opened opened) =>
        new(opened.Session, opened.User, _accessTokens.Issue(opened.Session, opened.User, opened.IssuedAt), opened.RefreshToken,
            opened.IssuedAt, opened.Raised);

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _writer.Complete();
        await base.StopAsync(cancellationToken);
    }

    /// <summary>The stopping token is not passed on: changes already queued are written before the process stops.</summary>
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => _writer.RunAsync();

    /// <summary>
    /// One group inside its transaction: the logins (lock, read what they touch, apply each), then each other change.
    /// The writes are queued and sent together (<see cref="WriteBatch"/>): before an EF update that follows them, and at
    /// the end; on PostgreSQL a group of refreshes or logouts writes in one round trip (docs/benchmarks.md, change 78).
    /// Changes to sessions that already exist are all kept for the end (<see cref="SessionChanges"/>), so that their rows
    /// are locked in one order on every node (docs/benchmarks.md, change 86).
    /// </summary>
    private async Task WriteGroupAsync(GatehouseDb db, IReadOnlyList<GroupWork> group)
    {
        var writes = new WriteBatch(db);
        var sessionChanges = new SessionChanges();
        var logins = group.OfType<LoginWork>().ToList();
        if (logins.Count > 0)
        {
            var rows = new Dictionary<string, LoadedRows>(StringComparer.Ordinal);
            // Network by network in one order for every node: each network's read locks its devices' bindings.
            foreach (var networkId in logins.Select(l => l.Network.Id).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
                rows[networkId] = await LoadRowsAsync(db, networkId, logins.Where(l => l.Network.Id == networkId).Select(l => l.Request).ToList());
            var created = new NewRows();
            var now = _clock.GetUtcNow();
            foreach (var login in logins)
                login.Result = SessionRules.Login(rows[login.Network.Id].Rows, created, login.Network, login.Request, login.ClientAddress, now, Settings);
            // New rows in order of their foreign keys; then the changes to rows read above. Neither is change-tracked:
            // tracking a returning user's sessions to find the one the cap ends made its login dearer than a new
            // user's (docs/benchmarks.md, change 27). New users and devices go in key order, not arrival order: two
            // nodes' groups creating the same two would otherwise each wait for the other's uncommitted row, which
            // PostgreSQL breaks only after its deadlock_timeout by failing one group (docs/benchmarks.md, change 84).
            created.Users.Sort(static (x, y) => CompareKeys(x.NetworkId, x.UserId, y.NetworkId, y.UserId));
            created.Bindings.Sort(static (x, y) => CompareKeys(x.NetworkId, x.DeviceId, y.NetworkId, y.DeviceId));
            // Each new session's foreign key takes a share of its user's row, and retention's pass locks idle visitors'
            // rows in key order to delete them: in arrival order, a group of two visitors coming back to devices other
            // users had taken could hold one row the pass wanted while waiting for the other (docs/benchmarks.md,
            // change 89). A stable sort, so that one user's sessions keep their order.
            var sessions = created.Sessions.OrderBy(static s => s.UserRef, StringComparer.Ordinal).ToList();
            writes.Insert(created.Users, created.Bindings, sessions, created.RefreshTokens, created.AuditEvents);
            foreach (var (networkId, loaded) in rows)
                await WriteChangesAsync(db, writes, sessionChanges, networkId, loaded, now);
        }
        // Their audit rows go in with them: written apart, by the audit log's own writer, they took SQLite's one
        // write lock turn about with this writer's transactions, and each waited for the other (docs/benchmarks.md).
        var stored = new List<AuditEvent>();
        var refreshes = group.OfType<RefreshWork>().ToList();
        if (refreshes.Count > 0)
            await RefreshAllAsync(db, writes, sessionChanges, refreshes, stored);
        var revocations = group.OfType<RevokeWork>().ToList();
        if (revocations.Count > 0)
            await RevokeAllAsync(db, sessionChanges, revocations, stored);
        sessionChanges.QueueWrites(writes);
        writes.Insert(stored);
        await writes.FlushAsync();
    }

    private static int CompareKeys(string network, string id, string otherNetwork, string otherId) =>
        string.CompareOrdinal(network, otherNetwork) is var byNetwork and not 0 ? byNetwork : string.CompareOrdinal(id, otherId);

    /// <summary>
    /// The group's refreshes, each judged in arrival order on rows read once for all (one read for the group, not one
    /// per refresh, docs/benchmarks.md). The claims are one conditional update: if it claims fewer rows than were judged
    /// unused, a node on the same database took one in between, and the group fails to be written again one change
    /// at a time, where that refresh reads the claim and is refused as a reuse. The writes are queued in
    /// <paramref name="writes"/>, after the claims (docs/benchmarks.md, change 78); the changes to the sessions are kept
    /// in <paramref name="sessionChanges"/>.
    /// </summary>
    private async Task RefreshAllAsync(GatehouseDb db, WriteBatch writes, SessionChanges sessionChanges, List<RefreshWork> refreshes,
        List<AuditEvent> stored)
    {
        var now = _clock.GetUtcNow();
        foreach (var refresh in refreshes)
            refresh.Digest = Secrets.Digest(refresh.Presented);
        // Nothing queued need be written first: the logins' new rows are not among those read (their refresh tokens
        // are not handed out yet), and the sessions they ended are not written yet but read as ended.
        var read = await ReadRefreshRowsAsync(db, refreshes.Select(r => r.Digest).Distinct(StringComparer.Ordinal).ToList());
        foreach (var session in read.Sessions)
            sessionChanges.ApplyEnd(session);
        var rows = read.RefreshTokens.ToDictionary(r => r.Digest, StringComparer.Ordinal);
        var sessions = read.Sessions.ToDictionary(s => s.Id);
        var users = read.Users.ToDictionary(u => u.Id, StringComparer.Ordinal);

        var liveWhenRead = sessions.Values.Where(s => s.RevokedAt is null).ToList();
        var claimed = new List<object>();
        var issued = new List<RefreshToken>();
        var renewed = new HashSet<Session>(ReferenceEqualityComparer.Instance);
        foreach (var refresh in refreshes)
        {
            var row = rows.GetValueOrDefault(refresh.Digest);
            var session = row is null ? null : sessions.GetValueOrDefault(row.SessionId);
            refresh.Result = Refresh(refresh, row, session, session is null ? null : users[session.UserRef], now, claimed, issued, stored);
            if (refresh.Result is (not null, _))
                renewed.Add(session!);
        }

        // Taken in key order first, as retention's pass locks a visitor's tokens: the claim takes them in its plan's order,
        // the heap's for a sequential or bitmap scan, so a pass holding one token and waiting for another this claim held
        // could each wait for the other until PostgreSQL's deadlock check failed one (docs/benchmarks.md, change 90).
        writes.Lock<RefreshToken>(nameof(RefreshToken.Digest), claimed);
        writes.Claim<RefreshToken>(nameof(RefreshToken.Digest), claimed, nameof(RefreshToken.UsedAt), [(nameof(RefreshToken.UsedAt), now)],
            conflict: "A refresh token of the group was claimed by another node; each refresh is written again alone.");
        writes.Insert(issued);
        // The sessions were read untracked: SaveChanges' tracking of them was half the writer's time per refresh
        // (docs/benchmarks.md, change 37), so what the rules changed is written at the group's end.
        sessionChanges.Renew(renewed);
        foreach (var byReason in liveWhenRead.Where(s => s.RevokedAt is not null).GroupBy(s => s.RevokedReason!, StringComparer.Ordinal))
            sessionChanges.End([.. byReason.Select(s => s.Id)], byReason.Key, now);
    }

    /// <summary>
    /// The refresh tokens with these digests, their sessions and the sessions' users, in the group's transaction: on
    /// PostgreSQL in one round trip (<see cref="PostgresGroupReads"/>), on SQLite by three queries in process.
    /// </summary>
    internal static async Task<RefreshReads> ReadRefreshRowsAsync(GatehouseDb db, List<string> digests)
    {
        if (!db.Database.IsSqlite())
            return await PostgresGroupReads.RefreshAsync(db, digests);
        var read = new RefreshReads();
        await foreach (var row in RefreshTokensByDigest.Run(db, digests))
            read.RefreshTokens.Add(row);
        await foreach (var session in SessionsById.Run(db, read.RefreshTokens.Select(r => r.SessionId).Distinct().ToList()))
            read.Sessions.Add(session);
        await foreach (var user in UsersByRef.Run(db, read.Sessions.Select(s => s.UserRef).Distinct(StringComparer.Ordinal).ToList()))
            read.Users.Add(user);
        return read;
    }

    /// <summary>One refresh of a group, as <see cref="SessionRules"/> judge it; a token used before (or earlier in the group) ends its session.</summary>
    private (Opened?, Refusal?) Refresh(RefreshWork refresh, RefreshToken? row, Session? session, User? user, DateTimeOffset now,
        List<object> claimed, List<RefreshToken> issued, List<AuditEvent> stored)
    {
        if (!SessionRules.IsKnown(row, session, refresh.Network.Id, refresh.Digest) || row is null || session is null || user is null)
            return (null, Errors.RefreshTokenInvalid);
        if (SessionRules.RenewalRefusal(row, session, user, refresh.Network, now, Settings) is { } refused)
            return (null, refused);
        // A token used before ends its session whatever the limit: refused as too many, a replayed (stolen) token
        // would leave the session live until the window passed.
        if (row.UsedAt is not null)
        {
            SessionRules.Revoke(session, now, RevokeReasons.RefreshReuse);
            return (null, Errors.RefreshTokenReused);
        }
        // Taken once per refresh, not per attempt: a refresh written again alone after its group failed would
        // otherwise spend a second permit, and could be refused by its own rolled-back attempt.
        refresh.Permitted ??= _refreshLimiter.TryAcquire(session.Id);
        if (refresh.Permitted is false)
            // The window is a minute, so a minute is the longest wait.
            return (null, Errors.TooManyRequests(60));

        row.UsedAt = now;
        claimed.Add(row.Digest);
        var (refreshRow, refreshToken) = SessionRules.Renew(session, now, refresh.ClientAddress, Settings);
        issued.Add(refreshRow);
        var raised = SecurityEvents.SessionRefreshed(user.UserId, refresh.Network.Id, session.Id);
        stored.Add(AuditLog.Row(raised, now, refresh.ClientAddress));
        return (new Opened(session, user, refreshToken, now, raised with { StoredWithChange = true }), null);
    }

    /// <summary>
    /// The group's revocations: which of their sessions are still live (one query), then one conditional update per
    /// reason, kept in <paramref name="sessionChanges"/>. Fewer rows updated than read means a node on the same database
    /// ended one in between: the group is written again one change at a time.
    /// </summary>
    private async Task RevokeAllAsync(GatehouseDb db, SessionChanges sessionChanges, List<RevokeWork> revocations, List<AuditEvent> stored)
    {
        var now = _clock.GetUtcNow();
        var live = new HashSet<Guid>();
        await foreach (var id in LiveSessionIds.Run(db, revocations.Select(r => r.SessionId).Distinct().ToList()))
        {
            // A session a login or a refresh reuse of this group ended is ended, though not written yet. Nothing queued
            // need be written first: the sessions the group's logins open are not among these (their tokens are not
            // handed out yet).
            if (!sessionChanges.HasEnded(id))
                live.Add(id);
        }
        foreach (var byReason in revocations.Where(r => live.Contains(r.SessionId)).GroupBy(r => r.Reason, StringComparer.Ordinal))
        {
            var reason = byReason.Key;
            var ids = new List<Guid>();
            foreach (var revocation in byReason)
            {
                // Two revocations of one session in a group: the first one ends it.
                if (!live.Remove(revocation.SessionId))
                    continue;
                ids.Add(revocation.SessionId);
                stored.Add(AuditLog.Row(revocation.Raised, now, revocation.ClientAddress));
                revocation.Result = revocation.Raised with { StoredWithChange = true };
            }
            sessionChanges.End(ids, reason, now,
                conflict: "A session of the group was ended by another node; each revocation is written again alone.");
        }
    }

    private static readonly CompiledListQuery<List<string>, RefreshToken> RefreshTokensByDigest =
        new((db, digests) => db.RefreshTokens.AsNoTracking().Where(r => digests.Contains(r.Digest)));

    private static readonly CompiledListQuery<List<Guid>, Session> SessionsById =
        new((db, ids) => db.Sessions.AsNoTracking().Where(s => ids.Contains(s.Id)));

    private static readonly CompiledListQuery<List<string>, User> UsersByRef =
        new((db, ids) => db.Users.AsNoTracking().Where(u => ids.Contains(u.Id)));

    private static readonly CompiledListQuery<List<Guid>, Guid> LiveSessionIds =
        new((db, ids) => db.Sessions.Where(s => ids.Contains(s.Id) && s.RevokedAt == null).Select(s => s.Id));

    // Compiled, and each list of keys is one parameter (StorageSetup): the SQL is then the same for every group,
    // so EF neither translates the query nor rewrites its SQL per group (docs/benchmarks.md).
    private static readonly CompiledListQuery<string, List<string>, DeviceBinding> BindingsOn = new((db, networkId, deviceIds) =>
        db.DeviceBindings.AsNoTracking().Where(d => d.NetworkId == networkId && deviceIds.Contains(d.DeviceId)));

    private static readonly CompiledListQuery<string, List<string>, User> UsersNamed = new((db, networkId, userIds) =>
        db.Users.AsNoTracking().Where(u => u.NetworkId == networkId && userIds.Contains(u.UserId)));

    /// <summary>
    /// The rows of one network that a group's logins read, with what they held when read: the rules change them in
    /// memory, and <see cref="WriteChangesAsync"/> writes what differs.
    /// </summary>
    private sealed class LoadedRows
    {
        public LoginRows Rows { get; } = new();
        public List<Session> Sessions { get; } = [];
        public Dictionary<DeviceBinding, string> BoundUsers { get; } = new(ReferenceEqualityComparer.Instance);
        public Dictionary<User, string?> DisplayNames { get; } = new(ReferenceEqualityComparer.Instance);
    }

    /// <summary>
    /// The group's changes to rows it read: sessions ended (kept for the group's end, <see cref="SessionChanges"/>),
    /// devices bound to another user, display names changed (rarer: through EF, after the queued writes, since a
    /// device may be bound to a user this group inserts).
    /// </summary>
    private static async Task WriteChangesAsync(GatehouseDb db, WriteBatch writes, SessionChanges sessionChanges, string networkId, LoadedRows loaded,
        DateTimeOffset now)
    {
        foreach (var byReason in loaded.Sessions.Where(s => s.RevokedAt is not null).GroupBy(s => s.RevokedReason!, StringComparer.Ordinal))
            sessionChanges.End([.. byReason.Select(s => s.Id)], byReason.Key, now);
        var rebound = loaded.BoundUsers.Where(b => b.Key.UserRef != b.Value).ToList();
        // Users are not locked when read: two groups renaming the same two users take their row locks in one order.
        var renamed = loaded.DisplayNames.Where(u => u.Key.DisplayName != u.Value).Select(u => u.Key)
            .OrderBy(u => u.Id, StringComparer.Ordinal).ToList();
        if (rebound.Count > 0 || renamed.Count > 0)
            await writes.FlushAsync();
        foreach (var byUser in rebound.GroupBy(b => b.Key.UserRef, StringComparer.Ordinal))
        {
            var userRef = byUser.Key;
            var deviceIds = byUser.Select(b => b.Key.DeviceId).ToList();
            await db.DeviceBindings.Where(d => d.NetworkId == networkId && deviceIds.Contains(d.DeviceId))
                .ExecuteUpdateAsync(set => set.SetProperty(d => d.UserRef, userRef).SetProperty(d => d.BoundAt, now));
        }
        foreach (var user in renamed)
        {
            await db.Users.Where(u => u.Id == user.Id)
                .ExecuteUpdateAsync(set => set.SetProperty(u => u.DisplayName, user.DisplayName).SetProperty(u => u.UpdatedAt, user.UpdatedAt));
        }
    }

    /// <summary>The rows of one network that a group's logins read and change.</summary>
    private static async Task<LoadedRows> LoadRowsAsync(GatehouseDb db, string networkId, List<Login> requests)
    {
        var deviceIds = requests.Select(r => r.DeviceId).Distinct(StringComparer.Ordinal).ToList();
        var userIds = requests.Select(r => r.UserId).Distinct(StringComparer.Ordinal).ToList();

        var loaded = new LoadedRows();
        var rows = loaded.Rows;
        if (requests.Any(r => r.Kind != UserKind.SignedIn))
            (rows.VisitorsAllowed, rows.BotsAllowed) = await AnonymousSwitchesAsync(db, networkId);
        var read = await ReadLoginRowsAsync(db, networkId, deviceIds, userIds);
        foreach (var binding in read.Bindings)
        {
            rows.Bindings.Add(binding.DeviceId, binding);
            loaded.BoundUsers.Add(binding, binding.UserRef);
        }
        foreach (var user in read.Users)
        {
            rows.Users.Add(user.UserId, user);
            loaded.DisplayNames.Add(user, user.DisplayName);
        }
        foreach (var session in read.Sessions)
            rows.UnrevokedSessionsOn(session.DeviceId).Add(session);
        loaded.Sessions.AddRange(read.Sessions);
        return loaded;
    }

    /// <summary>
    /// The devices' bindings, the users by name and the devices' live sessions, in the group's transaction. On
    /// PostgreSQL in one round trip, the bindings locked (<see cref="PostgresGroupReads"/>); on SQLite the transaction
    /// began IMMEDIATE and already holds the only write lock, so a lock would only cost CPU (a quarter of the group's
    /// reads, docs/benchmarks.md), and the sessions are read without EF (<see cref="SqliteDeviceSessions"/>).
    /// </summary>
    internal static async Task<LoginReads> ReadLoginRowsAsync(GatehouseDb db, string networkId, List<string> deviceIds, List<string> userIds)
    {
        if (!db.Database.IsSqlite())
            return await PostgresGroupReads.LoginAsync(db, networkId, deviceIds, userIds);
        var read = new LoginReads();
        await foreach (var binding in BindingsOn.Run(db, networkId, deviceIds))
            read.Bindings.Add(binding);
        await foreach (var user in UsersNamed.Run(db, networkId, userIds))
            read.Users.Add(user);
        read.Sessions.AddRange(await SqliteDeviceSessions.UnrevokedOnAsync(db, networkId, deviceIds));
        return read;
    }

    /// <summary>
    /// Read in the group's transaction. On PostgreSQL the read takes a share lock on the network row, which the switch
    /// updates before it revokes: either the switch waits for this group's sessions (and then revokes them), or this
    /// group waits for the switch (and then reads it off). On SQLite the transaction already holds the only write lock.
    /// </summary>
    private static async Task<(bool Visitors, bool Bots)> AnonymousSwitchesAsync(GatehouseDb db, string networkId)
    {
        var switches = db.Database.IsSqlite()
            ? db.Networks.Where(n => n.Id == networkId)
            : db.Networks.FromSql($"""SELECT * FROM "Networks" WHERE "Id" = {networkId} FOR SHARE""");
        var found = await switches.AsNoTracking().Select(n => new { n.VisitorsAllowed, n.BotsAllowed }).FirstAsync();
        return (found.VisitorsAllowed, found.BotsAllowed);
    }

    /// <summary>
    /// A group's changes to sessions that already exist: ended by a login (past the cap, or the device's other user's),
    /// by a refresh token used again, by a logout, and renewed by a refresh. Written at the group's end, after one
    /// statement that locks all their rows in key order (<see cref="WriteBatch.Lock{T}"/>). Written where each phase
    /// made them, they were locked phase by phase and reason by reason, so two nodes' groups ending the same two
    /// sessions in crossed order each waited for the other until PostgreSQL failed one of them a second later (its
    /// changes then written again one at a time). A later phase reads the sessions the group ended as ended
    /// (<see cref="ApplyEnd"/>, <see cref="HasEnded"/>).
    /// </summary>
    private sealed class SessionChanges
    {
        /// <summary>One guarded claim each, in the order made.</summary>
        private readonly List<(List<Guid> Ids, string Reason, DateTimeOffset At, string? Conflict)> _endClaims = [];
        /// <summary>The first end of each session the group ended.</summary>
        private readonly Dictionary<Guid, (DateTimeOffset At, string Reason)> _endOf = [];
        private readonly HashSet<Session> _renewed = new(ReferenceEqualityComparer.Instance);

        /// <summary>
        /// Ends those of the sessions not ended yet when written (another node's end keeps its reason); with
        /// <paramref name="conflict"/>, the group fails unless it ends them all.
        /// </summary>
        public void End(List<Guid> ids, string reason, DateTimeOffset at, string? conflict = null)
        {
            if (ids.Count == 0)
                return;
            _endClaims.Add((ids, reason, at, conflict));
            foreach (var id in ids)
                _endOf.TryAdd(id, (at, reason));
        }

        /// <summary>Sessions a refresh renewed: their renewed columns are written with the values they hold at the end.</summary>
        public void Renew(IEnumerable<Session> sessions) => _renewed.UnionWith(sessions);

        /// <summary>Whether the group ended this session before now.</summary>
        public bool HasEnded(Guid id) => _endOf.ContainsKey(id);

        /// <summary>A session read from the database, made what it will be once the group's end of it is written.</summary>
        public void ApplyEnd(Session session)
        {
            if (session.RevokedAt is null && _endOf.TryGetValue(session.Id, out var end))
                (session.RevokedAt, session.RevokedReason) = end;
        }

        /// <summary>The lock of every session changed, then the changes, queued in <paramref name="writes"/>.</summary>
        public void QueueWrites(WriteBatch writes)
        {
            writes.Lock<Session>(nameof(Session.Id), [.. _endOf.Keys.Concat(_renewed.Select(s => s.Id)).Distinct().Select(id => (object)id)]);
            foreach (var (ids, reason, at, conflict) in _endClaims)
            {
                writes.Claim<Session>(nameof(Session.Id), [.. ids.Select(id => (object)id)], nameof(Session.RevokedAt),
                    [(nameof(Session.RevokedAt), at), (nameof(Session.RevokedReason), reason)], conflict);
            }
            writes.Update(_renewed, nameof(Session.Id), RenewedColumns);
        }

        /// <summary>What <see cref="SessionRules.Renew"/> changes on a session.</summary>
        private static readonly string[] RenewedColumns = [nameof(Session.LastRefreshedAt), nameof(Session.LastRefreshedFrom), nameof(Session.ExpiresAt)];
    }

    private sealed class LoginWork(Network network, Login request, string? clientAddress, CancellationToken requestAborted)
        : GroupWork<(Opened?, Refusal?)>(requestAborted)
    {
        public Network Network { get; } = network;
        public Login Request { get; } = request;
        public string? ClientAddress { get; } = clientAddress;
    }

    private sealed class RefreshWork(Network network, string presented, string? clientAddress, CancellationToken requestAborted)
        : GroupWork<(Opened?, Refusal?)>(requestAborted)
    {
        public Network Network { get; } = network;
        public string Presented { get; } = presented;
        public string? ClientAddress { get; } = clientAddress;
        public string Digest { get; set; } = "";

        /// <summary>Whether the per-session limit let this refresh through; kept across attempts (<see cref="Refresh"/>).</summary>
        public bool? Permitted { get; set; }
    }

    private sealed class RevokeWork(Guid sessionId, string reason, SecurityEvent raised, string? clientAddress, CancellationToken requestAborted)
        : GroupWork<SecurityEvent?>(requestAborted)
    {
        public Guid SessionId { get; } = sessionId;
        public string Reason { get; } = reason;
        public SecurityEvent Raised { get; } = raised;
        public string? ClientAddress { get; } = clientAddress;
    }
}
