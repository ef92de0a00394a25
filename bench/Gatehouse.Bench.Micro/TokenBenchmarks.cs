using BenchmarkDotNet.Attributes;
using Gatehouse.Server.ServerKeys;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Bench.Micro;

/// <summary>
/// The per-request operations the load profile points at, on the server's own services over a real SQLite file:
/// signing and checking an access token (ES256) and an auth token (HS256), hashing and comparing a secret, and
/// looking a server key up. Checks run with the verified-token cache off, so each one verifies its signature.
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class TokenBenchmarks
{
    private static readonly JwtKind AccessToken = new("at+jwt", "gatehouse:api", Microsoft.IdentityModel.Tokens.SecurityAlgorithms.EcdsaSha256);
    private static readonly JwtKind AuthToken = new("gatehouse-auth+jwt", "gatehouse:sessions", Microsoft.IdentityModel.Tokens.SecurityAlgorithms.HmacSha256);

    private MicroServer _server = null!;
    private Jwt _jwt = null!;
    private string _token = null!;
    private Gatehouse.Server.AuthTokens.AuthTokens _authTokens = null!;
    private string _authToken = null!;
    private string _serverKey = null!;
    private string _digest = null!;
    private string _networkId = null!;
    private Guid _serverKeyId;

    [GlobalSetup]
    public async Task SetUpAsync()
    {
        _server = await MicroServer.StartAsync(new Dictionary<string, string?> { ["Gatehouse:Sessions:VerifiedTokenCacheEntries"] = "0" });
        _jwt = _server.Services.GetRequiredService<Jwt>();
        _token = Sign();
        _authTokens = _server.Services.GetRequiredService<Gatehouse.Server.AuthTokens.AuthTokens>();

        await using var scope = _server.Services.CreateAsyncScope();
        var networks = scope.ServiceProvider.GetRequiredService<Gatehouse.Server.Networks.NetworkAdministration>();
        var network = await networks.CreateAsync("micro", "bench");
        await networks.SetSecureModeAsync(network, true, "bench");
        var (serverKey, error) = await scope.ServiceProvider.GetRequiredService<ServerKeyService>().GenerateAsync(network, "bench");
        _serverKey = serverKey ?? throw new InvalidOperationException(error?.Message);
        _digest = Secrets.Digest(_serverKey);
        _networkId = network.Id;
        _serverKeyId = scope.ServiceProvider.GetRequiredService<GatehouseDb>().ServerKeys.Single(k => k.Digest == _digest).Id;
        _authToken = MintAuthToken();
    }

    [GlobalCleanup]
    public async Task CleanUpAsync() => await _server.DisposeAsync();

    [Benchmark]
    public string SignAccessToken() => Sign();

    [Benchmark]
    public async Task<bool> CheckAccessToken() => (await _jwt.CheckAsync(_token, AccessToken)).Token is not null;

    [Benchmark]
    public string MintAuthToken() => _authTokens.Mint(_networkId, "alice", _serverKeyId).Token;

    /// <summary>
    /// The same token signed by the library, as access tokens are (<c>Jwt.Sign</c>): through its descriptor until change 71,
    /// over a payload written by Gatehouse since (docs/benchmarks.md).
    /// </summary>
    [Benchmark]
    public string MintAuthTokenThroughLibrary()
    {
        var now = DateTimeOffset.UtcNow;
        return _jwt.Sign(AuthToken, new Dictionary<string, object>
        {
            ["sub"] = "alice",
            ["nid"] = _networkId,
            ["skid"] = _serverKeyId.ToString(),
            ["jti"] = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)),
        }, now, now.AddMinutes(10));
    }

    /// <summary>The signature, the claims, and the minting key's row (read at each check: a replaced key ends its tokens).</summary>
    [Benchmark]
    public async Task<bool> CheckAuthToken()
    {
        await using var scope = _server.Services.CreateAsyncScope();
        return await _authTokens.CheckAsync(_authToken, _networkId, "alice", false, scope.ServiceProvider.GetRequiredService<GatehouseDb>(), CancellationToken.None) is null;
    }

    [Benchmark]
    public string DigestServerKey() => Secrets.Digest(_serverKey);

    [Benchmark]
    public bool CompareDigests() => Secrets.DigestsEqual(_digest, _digest);

    /// <summary>What the mint endpoint does first: a request scope, the digest, the indexed lookup with the network's mTLS switch.</summary>
    [Benchmark]
    public async Task<bool> LookUpServerKey()
    {
        await using var scope = _server.Services.CreateAsyncScope();
        var (key, _, error) = await scope.ServiceProvider.GetRequiredService<ServerKeyService>().AuthenticateAsync(_serverKey, CancellationToken.None);
        return key is not null && error is null;
    }

    private string Sign()
    {
        var now = DateTimeOffset.UtcNow;
        return _jwt.Sign(AccessToken, new Dictionary<string, object>
        {
            ["sub"] = "alice",
            ["sid"] = "5f0c5c43-8d3c-4f7e-9b55-1f6b2c3d4e5f",
            ["nid"] = "0123456789abcdef01234567",
        }, now, now.AddDays(30));
    }
}
