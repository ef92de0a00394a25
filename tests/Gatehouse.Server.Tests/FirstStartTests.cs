using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Gatehouse.Server.Tests;

/// <summary>
/// Two nodes started at the same moment on an empty PostgreSQL database, five times: the migrations and the first
/// start (bootstrap admin and network, signing key, certificate authority) run under one lock, so both nodes come up
/// and the database holds one of each.
/// </summary>
[Trait(Category.Name, Category.Slow)]
[Trait(Category.Name, Category.Postgres)]
public sealed class FirstStartTests
{
    [SkippableFact]
    public async Task Two_nodes_starting_together_on_an_empty_database_both_serve_and_share_one_bootstrap_and_one_signing_key()
    {
        for (var round = 0; round < 5; round++)
        {
            var database = "gatehouse_first_" + Guid.NewGuid().ToString("n");
            await PostgresServer.ExecuteAsync($"CREATE DATABASE {database}");
            var connectionString = new NpgsqlConnectionStringBuilder(PostgresServer.AdminConnectionString) { Database = database, MaxPoolSize = 10 }.ToString();
            var nodes = Enumerable.Range(0, 2).Select(_ =>
            {
                var node = new GatehouseServer();
                node.Settings["Gatehouse:Database:Provider"] = "PostgreSQL";
                node.Settings["Gatehouse:Database:ConnectionString"] = connectionString;
                return node;
            }).ToList();
            try
            {
                await Task.WhenAll(nodes.Select(n => n.InitializeAsync()));

                foreach (var node in nodes)
                {
                    using var ready = await node.Http.GetAsync("/readyz");
                    Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
                }
                Assert.Single(nodes, n => n.ConsoleOutput.Contains("One-time password:", StringComparison.Ordinal));
                await using var scope = nodes[0].Services.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
                Assert.Equal(1, await db.SigningKeys.CountAsync());
                Assert.Equal(1, await db.Admins.CountAsync());
                Assert.Equal(1, await db.Networks.CountAsync());
                Assert.Equal(1, await db.CertificateAuthorityKeys.CountAsync());
            }
            finally
            {
                foreach (var node in nodes)
                    await node.DisposeAsync();
                NpgsqlConnection.ClearAllPools();
                await PostgresServer.ExecuteAsync($"DROP DATABASE IF EXISTS {database} WITH (FORCE)");
            }
        }
    }
}
