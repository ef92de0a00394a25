using Gatehouse.Server.Configuration;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Users;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Sessions;

/// <summary>What the bearer filter needs to know about a session: whose it is and whether it still stands.</summary>
internal sealed record SessionState(string NetworkId, DateTimeOffset? RevokedAt, DateTimeOffset CreatedAt, User User);

/// <summary>
/// The sessions bearer requests read, kept so a token already seen costs no database read. A committed change to a
/// session (logout, the cap, refresh) makes that session's entry stale; a change to sessions not named by id (an
/// admin's end-sessions, a ban) or to any user row (ban, display names) makes every entry stale. On this node at the
/// very next request, on the others once the database's notification arrives
/// (<see cref="CommittedRowCache{TKey,TValue}"/>).
/// </summary>
internal sealed class LiveSessionCache(CommittedWrites writes, IOptions<GatehouseOptions> options)
    : IDisposable
{
    private readonly CommittedRowCache<Guid, SessionState> _rows =
        new(writes, options.Value.Sessions.LiveSessionCacheEntries, ["Sessions", "Users"], keyedBy: "Sessions");

    public ValueTask<SessionState?> GetAsync<TState>(Guid sessionId, TState state, Func<TState, Task<SessionState?>> read) =>
        _rows.GetAsync(sessionId, state, read);

    public void Dispose() => _rows.Dispose();
}
