using BenchmarkDotNet.Attributes;
using Gatehouse.Server.Sessions;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Bench.Micro;

/// <summary>
/// A bearer request's token check when the token is remembered as verified, as it is for an app's every request
/// after its login: the lookup alone, no signature (change 70).
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class RememberedTokenBenchmarks
{
    private MicroServer _server = null!;
    private AccessTokens _accessTokens = null!;
    private string _token = null!;

    [GlobalSetup]
    public async Task SetUpAsync()
    {
        _server = await MicroServer.StartAsync(new Dictionary<string, string?>());
        _accessTokens = _server.Services.GetRequiredService<AccessTokens>();
        var now = DateTimeOffset.UtcNow;
        var user = new Gatehouse.Server.Users.User { Id = "user-ref", NetworkId = "0123456789abcdef01234567", UserId = "alice" };
        _token = _accessTokens.Issue(new Session { Id = Guid.CreateVersion7(), NetworkId = user.NetworkId, UserRef = user.Id, DeviceId = "device", ExpiresAt = now.AddHours(1) },
            user, now);
    }

    [GlobalCleanup]
    public async Task CleanUpAsync() => await _server.DisposeAsync();

    [Benchmark(Description = "check a remembered access token")]
    public async Task<bool> CheckRememberedAccessToken() => (await _accessTokens.CheckAsync(_token)).Token is not null;
}
