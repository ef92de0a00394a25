using BenchmarkDotNet.Attributes;
using Gatehouse.Server;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Gatehouse.Bench.Micro;

/// <summary>
/// A bearer request's token check when the token is remembered as verified, as it is for an app's every request
/// after its login: the lookup alone, no signature (change 70).
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class RememberedTokenBenchmarks
{
    private IHost _host = null!;
    private string _directory = null!;
    private AccessTokens _accessTokens = null!;
    private string _token = null!;

    [GlobalSetup]
    public async Task SetUpAsync()
    {
        _directory = Directory.CreateTempSubdirectory("gatehouse-micro").FullName;
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Gatehouse:DataDirectory"] = _directory,
            ["Logging:LogLevel:Default"] = "Warning",
        });
        builder.Services.AddGatehouseCore();
        _host = builder.Build();
        await _host.StartAsync();
        await StorageSetup.MigrateAsync(_host.Services);
        var keys = _host.Services.GetRequiredService<SigningKeys>();
        if (!keys.Loaded)
            await keys.LoadAsync();
        _accessTokens = _host.Services.GetRequiredService<AccessTokens>();
        var now = DateTimeOffset.UtcNow;
        var user = new Gatehouse.Server.Users.User { Id = "user-ref", NetworkId = "0123456789abcdef01234567", UserId = "alice" };
        _token = _accessTokens.Issue(new Session { Id = Guid.CreateVersion7(), NetworkId = user.NetworkId, UserRef = user.Id, DeviceId = "device", ExpiresAt = now.AddHours(1) },
            user, now);
    }

    [GlobalCleanup]
    public async Task CleanUpAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(Description = "check a remembered access token")]
    public async Task<bool> CheckRememberedAccessToken() => (await _accessTokens.CheckAsync(_token)).Token is not null;
}
