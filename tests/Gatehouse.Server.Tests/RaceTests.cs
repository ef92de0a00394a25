using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Gatehouse.Server.Certificates;
using Gatehouse.Server.Networks;
using Gatehouse.Server.ServerKeys;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>Concurrent requests against the invariants that must hold however they interleave.</summary>
public abstract class RaceTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    [SkippableFact]
    public async Task Of_fifty_concurrent_uses_of_one_refresh_token_exactly_one_wins_and_the_reuse_ends_the_session()
    {
        var network = await server.CreateNetworkAsync();
        var refreshToken = (await server.LoginAsync(network, "racer", "device-r"))["refreshToken"]!.GetValue<string>();

        var answers = await Task.WhenAll(Enumerable.Range(0, 50).Select(async _ =>
        {
            using var response = await server.RefreshAsync(network, refreshToken);
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }));

        var winners = answers.Where(a => a.StatusCode == HttpStatusCode.OK).ToList();
        Assert.Single(winners);
        // The rest are refused as reuse (or, once one ended it, as an ended session): 401, never 429, although the 49
        // exceed the session's 30 refreshes a minute, since a reuse is judged before the limit.
        Assert.All(answers.Where(a => a.StatusCode != HttpStatusCode.OK), a => Assert.Equal(HttpStatusCode.Unauthorized, a.StatusCode));
        var winnersToken = JsonNode.Parse(winners[0].Body)!["accessToken"]!.GetValue<string>();
        using var me = await server.GetWithBearerAsync("/api/v3/users/me", winnersToken);
        await Envelope.AssertUnauthorizedAsync(me);
    }

    [SkippableFact]
    public async Task Two_users_logging_in_on_one_device_at_once_leave_exactly_one_of_them_signed_in()
    {
        var network = await server.CreateNetworkAsync();
        var violations = 0;
        for (var round = 0; round < 10; round++)
        {
            var device = $"kiosk-{round}";
            var logins = await Task.WhenAll(
                server.LoginAsync(network, $"first-{round}", device),
                server.LoginAsync(network, $"second-{round}", device));
            var live = 0;
            foreach (var login in logins)
            {
                using var me = await server.GetWithBearerAsync("/api/v3/users/me", login["accessToken"]!.GetValue<string>());
                if (me.StatusCode == HttpStatusCode.OK)
                    live++;
            }
            if (live != 1)
                violations++;
        }
        Assert.Equal(0, violations);
    }

    [SkippableFact]
    public async Task Concurrent_server_key_generations_never_leave_three_keys_valid()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);

        var keys = await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            await using var scope = server.Services.CreateAsyncScope();
            var found = await scope.ServiceProvider.GetRequiredService<NetworkAdministration>().FindAsync(network.Id);
            var (key, error) = await scope.ServiceProvider.GetRequiredService<ServerKeyService>().GenerateAsync(found!, "race");
            Assert.Null(error);
            return key!;
        }));

        var valid = 0;
        foreach (var key in keys)
        {
            using var response = await server.MintV3Async(key, "alice");
            if (response.StatusCode == HttpStatusCode.OK)
                valid++;
        }
        Assert.InRange(valid, 1, 2);
    }

    [SkippableFact]
    public async Task Concurrent_certificate_creations_never_leave_a_third_active_certificate()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);

        var created = await Task.WhenAll(Enumerable.Range(0, 6).Select(async i =>
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var csr = new CertificateRequest($"CN=race-{i}", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();
            await using var scope = server.Services.CreateAsyncScope();
            var found = await scope.ServiceProvider.GetRequiredService<NetworkAdministration>().FindAsync(network.Id);
            var (certificate, _) = await scope.ServiceProvider.GetRequiredService<ClientCertificates>().CreateAsync(found!, $"race-{i}", csr, "race");
            return certificate is not null;
        }));

        Assert.Equal(2, created.Count(c => c));
        await using var check = server.Services.CreateAsyncScope();
        Assert.Equal(2, await check.ServiceProvider.GetRequiredService<GatehouseDb>().ClientCertificates.CountAsync(c => c.NetworkId == network.Id));
    }
}

[Trait(Category.Name, Category.Fast)]
public sealed class RaceTestsOnSqlite(SqliteServer server) : RaceTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class RaceTestsOnPostgres(PostgresServer server) : RaceTests<PostgresServer>(server);
