using System.Linq.Expressions;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Sessions;

/// <summary>
/// Ends many sessions at once, for an admin or an operator: a user's (its sessions revoked, the user banned), a
/// network's opened without an auth token (secure mode turned on), its visitors' or bots' (their logins turned off).
/// On PostgreSQL their rows are locked in key order before they change, as the session writer's groups lock theirs
/// (<see cref="SessionService"/>). One UPDATE locked its rows in the order its plan met them (the device index's, the
/// table's), so it could hold a session a group wanted next while it waited for one the group held, and the two waited
/// for each other until PostgreSQL's deadlock check failed one of them a second later: a failed group is written
/// again, a failed admin's request was a 500 (docs/benchmarks.md, change 87).
/// </summary>
internal static class SessionEnds
{
    /// <summary>
    /// Sessions locked and ended per round trip on PostgreSQL: each round trip stays far inside the seconds a command
    /// gets (StorageSetup) however many sessions a network has, where one statement for them all ran past them.
    /// </summary>
    private const int SessionsPerRoundTrip = 4096;

    /// <param name="which">Which sessions; those already ended are left as they are.</param>
    /// <returns>How many sessions ended.</returns>
    public static async Task<int> EndAsync(GatehouseDb db, Expression<Func<Session, bool>> which, string reason, DateTimeOffset at, CancellationToken ct)
    {
        var live = db.Sessions.Where(s => s.RevokedAt == null).Where(which);
        // SQLite's transaction holds the database's only write lock: there is no order to get wrong, and a read before
        // the write would let another connection's commit in between fail the write (a deferred transaction's snapshot).
        if (db.Database.IsSqlite())
            return await live.ExecuteUpdateAsync(s => s.SetProperty(x => x.RevokedAt, at).SetProperty(x => x.RevokedReason, reason), ct);

        // In PostgreSQL's order of the key, chunk after chunk. A session ended meanwhile keeps its own end (the claim's
        // guard). One opened after this read is left open, as one opened after the single UPDATE began was, though the
        // window is now the whole operation (logins take no lock of the user's or the network's row to wait for it).
        // The rows stay locked until the transaction commits: a group that changes one of them meanwhile waits.
        await using var transaction = db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(ct) : null;
        var ids = await live.OrderBy(s => s.Id).Select(s => s.Id).ToListAsync(ct);
        var ended = 0;
        foreach (var chunk in ids.Chunk(SessionsPerRoundTrip))
        {
            object[] keys = [.. chunk.Select(id => (object)id)];
            var writes = new WriteBatch(db);
            writes.Lock<Session>(nameof(Session.Id), keys);
            writes.Claim<Session>(nameof(Session.Id), keys, nameof(Session.RevokedAt),
                [(nameof(Session.RevokedAt), at), (nameof(Session.RevokedReason), reason)]);
            // The claim was queued last (the lock is skipped for a single key).
            if (await writes.FlushAsync(ct) is [.., var claimed])
                ended += claimed;
        }
        if (transaction is not null)
            await transaction.CommitAsync(ct);
        return ended;
    }
}
