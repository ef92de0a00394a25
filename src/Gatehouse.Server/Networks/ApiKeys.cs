using System.Security.Cryptography;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Networks;

/// <summary>
/// API keys say their region in their first characters (<c>sg_…</c>), so a key sent to the wrong region's
/// deployment is answered with where it belongs instead of a bare "unknown key".
/// </summary>
internal sealed class ApiKeys(IOptions<GatehouseOptions> options, CommittedWrites writes, IDbContextFactory<GatehouseDb> dbs) : IDisposable
{
    private const int KnownNetworks = 10_000;

    /// <summary>
    /// Networks found by API key, so a login or refresh costs no read for it (any committed change to a network, such
    /// as a regenerated key or secure mode, makes them stale: <see cref="CommittedRowCache{TKey,TValue}"/>). Unknown
    /// keys are never kept.
    /// </summary>
    private readonly CommittedRowCache<string, Network> _known = new(writes, KnownNetworks, ["Networks"]);

    private static readonly CompiledQuery<string, Network?> ByApiKey =
        new((db, key, ct) => db.Networks.AsNoTracking().FirstOrDefault(n => n.ApiKey == key));

    public static string Create(string region) => $"{region}_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24))}";

    /// <summary>The network an API key opens, or why there is none.</summary>
    public async Task<(Network? Network, Refusal? Error)> ResolveAsync(string key, CancellationToken ct)
    {
        var network = string.IsNullOrWhiteSpace(key) || key.Length > 80 ? null : await _known.GetAsync(key, (Keys: this, key, ct), static read => read.Keys.ReadAsync(read.key, read.ct));
        if (network is not null)
            return (network, null);
        if (string.IsNullOrWhiteSpace(key))
            return (null, Errors.ApiKeyMissing);

        var separator = key.IndexOf('_', StringComparison.Ordinal);
        var region = separator > 0 ? key[..separator] : null;
        var settings = options.Value;
        if (region is not null && region != settings.Region && settings.RegionHosts.TryGetValue(region, out var host))
            return (null, Errors.ApiKeyOfOtherRegion(region, host));
        return (null, Errors.ApiKeyUnknown);
    }

    private async Task<Network?> ReadAsync(string key, CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        return await ByApiKey.RunAsync(db, key, ct);
    }

    /// <summary>The network of a key already kept, without a database read (see <see cref="CommittedRowCache{TKey,TValue}.Peek"/>).</summary>
    public Network? Peek(string key) => key.Length is > 0 and <= 80 ? _known.Peek(key) : null;

    public void Dispose() => _known.Dispose();
}
