using System.Net.Http.Json;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// Per-address limits behind a load balancer: X-Forwarded-For names the client only when the peer is a configured
/// proxy; from anyone else it is ignored, so rotating it gains nothing.
/// </summary>
public abstract class ForwardedAddressTests(bool onPostgres) : IAsyncLifetime
{
    private readonly GatehouseServer _behindProxy = onPostgres ? new PostgresServer() : new GatehouseServer();
    private readonly GatehouseServer _direct = onPostgres ? new PostgresServer() : new GatehouseServer();

    public async Task InitializeAsync()
    {
        foreach (var server in new[] { _behindProxy, _direct })
            server.Settings["Gatehouse:RateLimits:SessionsPerAddressPerMinute"] = "3";
        _behindProxy.Settings["Gatehouse:ForwardedHeaders:TrustedProxies:0"] = "127.0.0.1";
        await _behindProxy.InitializeAsync();
        await _direct.InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        await _behindProxy.DisposeAsync();
        await _direct.DisposeAsync();
    }

    [SkippableFact]
    public async Task Behind_a_trusted_proxy_each_client_address_has_its_own_limit_and_is_audited()
    {
        var network = await _behindProxy.CreateNetworkAsync();

        var first = await LoginsAsync(_behindProxy, network, 4, _ => "203.0.113.1");
        // A client that writes its own X-Forwarded-For gets it appended to by the proxy: only the proxy's entry counts.
        var second = await LoginsAsync(_behindProxy, network, 3, i => $"198.51.100.{i}, 203.0.113.2");
        await _behindProxy.FlushAuditAsync();

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], first);
        Assert.All(second, s => Assert.Equal(HttpStatusCode.OK, s));
        await using var scope = _behindProxy.Services.CreateAsyncScope();
        var addresses = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().AuditEvents
            .Where(e => e.NetworkId == network.Id && e.Kind == AuditKinds.SessionCreated).Select(e => e.ClientAddress).Distinct().ToListAsync();
        Assert.Equal(["203.0.113.1", "203.0.113.2"], addresses.Order());
    }

    [SkippableFact]
    public async Task Without_a_trusted_proxy_a_forged_forwarded_address_changes_nothing()
    {
        var network = await _direct.CreateNetworkAsync();

        var statuses = await LoginsAsync(_direct, network, 4, i => $"203.0.113.{i}");
        await _direct.FlushAuditAsync();

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], statuses);
        await using var scope = _direct.Services.CreateAsyncScope();
        Assert.Equal(["127.0.0.1"], await scope.ServiceProvider.GetRequiredService<GatehouseDb>().AuditEvents
            .Where(e => e.NetworkId == network.Id && e.Kind == AuditKinds.SessionCreated).Select(e => e.ClientAddress).Distinct().ToListAsync());
    }

    private static async Task<List<HttpStatusCode>> LoginsAsync(GatehouseServer server, TestNetwork network, int count, Func<int, string> forwardedFor)
    {
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < count; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v5/sessions")
            {
                Content = JsonContent.Create(new { userId = $"user-{Guid.NewGuid():n}", deviceId = $"device-{i}" }),
            };
            request.Headers.Add("x-api-key", network.ApiKey);
            request.Headers.Add("X-Forwarded-For", forwardedFor(i));
            using var response = await server.Http.SendAsync(request);
            statuses.Add(response.StatusCode);
        }
        return statuses;
    }
}

[Trait(Category.Name, Category.Slow)]
public sealed class ForwardedAddressTestsOnSqlite() : ForwardedAddressTests(onPostgres: false);

[Trait(Category.Name, Category.Postgres)]
public sealed class ForwardedAddressTestsOnPostgres() : ForwardedAddressTests(onPostgres: true);
