using Gatehouse.Server.Storage;

namespace Gatehouse.Server.Users;

/// <summary>
/// Users the admin API has read, by network and user id, so a backend that reads the same users again costs no
/// database read (docs/benchmarks.md, change 28). An entry counts only until a committed write to the users table, on
/// this node or another (<see cref="CommittedRowCache{TKey,TValue}"/>): a ban, an unban or a new display name is
/// served on the next read. The rows are shared between requests and never changed: whoever changes a user reads it
/// tracked (<see cref="UserAdministration.FindAsync"/>).
/// </summary>
internal sealed class KnownUsers(CommittedWrites writes) : IDisposable
{
    private const int Entries = 10_000;

    private readonly CommittedRowCache<(string NetworkId, string UserId), User> _rows = new(writes, Entries, ["Users"]);

    public ValueTask<User?> GetAsync<TState>(string networkId, string userId, TState state, Func<TState, Task<User?>> read) =>
        _rows.GetAsync((networkId, userId), state, read);

    public void Dispose() => _rows.Dispose();
}
