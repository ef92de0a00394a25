using Gatehouse.Server.Admins;
using Gatehouse.Server.Storage;

namespace Gatehouse.Server.AdminTokens;

/// <summary>An admin token as one admin-API call checks it: the token, its admin, that admin's membership of the token's network, and the network's mTLS switch.</summary>
internal sealed record PresentedAdminToken(AdminToken Token, Admin Admin, AdminMembership? Membership, bool MtlsRequired);

/// <summary>
/// The admin tokens this node has checked, by digest, so a backend's next call with the same token costs no database
/// read: two reads per call made the admin API the slowest read in the benchmarks (docs/benchmarks.md, change 28).
/// An entry counts only until a committed write to any of the four tables it was read from, on this node or another
/// (<see cref="CommittedRowCache{TKey,TValue}"/>), so a revocation, a disabled admin, a changed right or an mTLS switch
/// is refused on the next call here and within milliseconds on other nodes. Only digests are kept, never a token.
/// </summary>
internal sealed class KnownAdminTokens(CommittedWrites writes) : IDisposable
{
    private const int Entries = 10_000;

    private readonly CommittedRowCache<string, PresentedAdminToken> _rows =
        new(writes, Entries, ["AdminTokens", "Admins", "AdminMemberships", "Networks"]);

    public ValueTask<PresentedAdminToken?> GetAsync<TState>(string digest, TState state, Func<TState, Task<PresentedAdminToken?>> read) =>
        _rows.GetAsync(digest, state, read);

    public void Dispose() => _rows.Dispose();
}
