using System.Security.Cryptography.X509Certificates;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;

namespace Gatehouse.Server.Certificates;

/// <summary>
/// What the mTLS gate learned about client certificates it has seen, so a backend's next call with the same
/// certificate costs neither a chain build nor a database read (docs/benchmarks.md). Two parts: the certificate's
/// verdict against the authority (chain, usage, network), which depends only on the two certificates and is kept a
/// few minutes; and its row (network, revocation), kept until any committed change to the certificates table, on
/// this node or another (<see cref="CommittedRowCache{TKey,TValue}"/>). Validity dates are checked on every request.
/// </summary>
internal sealed class KnownClientCertificates : IDisposable
{
    private const int Entries = 10_000;
    private static readonly TimeSpan VerdictLifetime = TimeSpan.FromMinutes(10);

    private readonly BoundedCache<(string, string, string), Judgement> _verdicts = new(Entries);
    private readonly CommittedRowCache<string, ClientCertificate> _rows;

    public KnownClientCertificates(CommittedWrites writes) =>
        _rows = new CommittedRowCache<string, ClientCertificate>(writes, Entries, ["ClientCertificates"]);

    /// <summary>The kept verdict for this certificate, network and authority, or <paramref name="judge"/>'s (then kept).</summary>
    public Refusal? Verdict<TState>(string fingerprint, string networkId, X509Certificate2 authority, TState state, Func<TState, Refusal?> judge)
    {
        var key = (fingerprint, networkId, authority.Thumbprint);
        if (_verdicts.TryGet(key, out var known))
            return known!.Refusal;
        var refusal = judge(state);
        _verdicts.Set(key, new Judgement(refusal), DateTimeOffset.UtcNow + VerdictLifetime);
        return refusal;
    }

    public ValueTask<ClientCertificate?> RowAsync<TState>(string fingerprint, TState state, Func<TState, Task<ClientCertificate?>> read) =>
        _rows.GetAsync(fingerprint, state, read);

    public void Dispose()
    {
        _verdicts.Dispose();
        _rows.Dispose();
    }

    private sealed record Judgement(Refusal? Refusal);
}
