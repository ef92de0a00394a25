using System.Security.Cryptography;
using Gatehouse.Server.Api;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Networks;

/// <summary>
/// API keys say their region in their first characters (<c>sg_…</c>), so a key sent to the wrong region's
/// deployment is answered with where it belongs instead of a bare "unknown key".
/// </summary>
public sealed class ApiKeys(IOptions<GatehouseOptions> options, CommittedWrites writes, CredentialFailures failures) : IDisposable
{
    private const int KnownNetworks = 10_000;

    /// <summary>
    /// Networks found by API key, so a login or refresh costs no read for it (SQLite only; any committed change to
    /// a network, such as a regenerated key or secure mode, makes them stale at once). Unknown keys are never kept.
    /// </summary>
    private readonly CommittedRowCache<string, Network> _known = new(writes, options, KnownNetworks, "Networks");

    public const string Header = "x-api-key";

    private static readonly CompiledQuery<string, Network?> ByApiKey =
        new((db, key, ct) => db.Networks.AsNoTracking().FirstOrDefault(n => n.ApiKey == key));

    public static string Create(string region) => $"{region}_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24))}";

    /// <summary>The network the request's x-api-key opens, or why there is none.</summary>
    public async Task<(Network? Network, ApiError? Error)> ResolveAsync(HttpRequest request, GatehouseDb db, CancellationToken ct)
    {
        var key = request.Headers[Header].ToString();
        if (failures.Refusal(request.HttpContext, CredentialKinds.ApiKey, key) is { } limited)
            return (null, limited);
        var network = string.IsNullOrWhiteSpace(key) || key.Length > 80 ? null : await _known.GetAsync(key, () => ByApiKey.RunAsync(db, key, ct));
        if (network is not null)
            return (network, null);
        failures.Failed(request.HttpContext, CredentialKinds.ApiKey, key);
        if (string.IsNullOrWhiteSpace(key))
            return (null, Errors.ApiKeyMissing);

        var separator = key.IndexOf('_', StringComparison.Ordinal);
        var region = separator > 0 ? key[..separator] : null;
        var settings = options.Value;
        if (region is not null && region != settings.Region && settings.RegionHosts.TryGetValue(region, out var host))
            return (null, Errors.ApiKeyOfOtherRegion(region, host));
        return (null, Errors.ApiKeyUnknown);
    }

    public void Dispose() => _known.Dispose();
}
