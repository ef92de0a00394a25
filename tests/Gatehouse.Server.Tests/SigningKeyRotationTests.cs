using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Gatehouse.Server.Tokens;
using Microsoft.IdentityModel.JsonWebTokens;
using Npgsql;

namespace Gatehouse.Server.Tests;

/// <summary>
/// docs/deployment.md's rotation in a cluster: two running nodes on one PostgreSQL database, the operator's
/// `signing-key rotate` reaching both without a restart, then `signing-key retire` ending the old key's tokens on
/// both, including a token the other node had already verified and remembers.
/// </summary>
[Collection(RunsAlone.Name)]
[Trait(Category.Name, Category.Slow)]
[Trait(Category.Name, Category.Postgres)]
public sealed class SigningKeyRotationTests : IAsyncLifetime
{
    private static readonly TimeSpan Within = SigningKeys.ReReadInterval * 3;
    private readonly string _database = "gatehouse_rotation_" + Guid.NewGuid().ToString("n");
    private readonly List<GatehouseServer> _nodes = [];
    private string _connectionString = "";

    public async Task InitializeAsync()
    {
        await PostgresServer.ExecuteAsync($"CREATE DATABASE {_database}");
        _connectionString = new NpgsqlConnectionStringBuilder(PostgresServer.AdminConnectionString) { Database = _database, MaxPoolSize = 10 }.ToString();
        for (var i = 0; i < 2; i++)
        {
            var node = new GatehouseServer();
            node.Settings["Gatehouse:Database:Provider"] = "PostgreSQL";
            node.Settings["Gatehouse:Database:ConnectionString"] = _connectionString;
            await node.InitializeAsync();
            _nodes.Add(node);
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes)
            await node.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await PostgresServer.ExecuteAsync($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)");
    }

    [SkippableFact]
    public async Task A_rotation_and_a_retirement_reach_every_running_node_within_seconds()
    {
        var (a, b) = (_nodes[0], _nodes[1]);
        var network = await a.CreateNetworkAsync();
        var before = (await b.LoginAsync(network, "ada", "device-ada"))["accessToken"]!.GetValue<string>();
        var oldKid = Kid(before);
        using (var remembered = await b.GetWithBearerAsync("/api/v3/users/me", before))
            Assert.Equal(HttpStatusCode.OK, remembered.StatusCode);

        var rotated = await OperatorAsync("signing-key", "rotate");
        var newKid = rotated.Split(' ')[3].TrimEnd('.');
        Assert.NotEqual(oldKid, newKid);
        foreach (var node in _nodes)
        {
            await EventuallyAsync(async () => Kid((await node.LoginAsync(network, "bob", "device-bob"))["accessToken"]!.GetValue<string>()) == newKid,
                "the node signs with the rotated key");
            Assert.Contains(newKid, await KidsAsync(node));
        }
        using (var stillValid = await b.GetWithBearerAsync("/api/v3/users/me", before))
            Assert.Equal(HttpStatusCode.OK, stillValid.StatusCode);

        var (refusedExit, refused) = await OperatorWithExitAsync("signing-key", "retire", newKid);
        Assert.Equal(1, refusedExit);
        Assert.Contains("run `signing-key rotate` first", refused, StringComparison.Ordinal);
        Assert.Equal(RetireOutcome.Ended, await a.Services.GetRequiredService<SigningKeys>().RetireAsync(oldKid, "test"));
        foreach (var node in _nodes)
        {
            await EventuallyAsync(async () =>
            {
                using var me = await node.GetWithBearerAsync("/api/v3/users/me", before);
                return me.StatusCode == HttpStatusCode.Unauthorized;
            }, "the node refuses the retired key's token");
            Assert.DoesNotContain(oldKid, await KidsAsync(node));
        }
        var listed = await OperatorAsync("signing-key", "list");
        Assert.Contains($"{newKid}  signing", listed, StringComparison.Ordinal);
        Assert.Contains($"{oldKid}  ended", listed, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Rotations_and_retirements_at_once_on_both_nodes_leave_one_signing_key_and_end_a_key_once()
    {
        var rotations = Enumerable.Range(0, 8).Select(i => _nodes[i % 2].Services.GetRequiredService<SigningKeys>().RotateAsync("test"));
        await Task.WhenAll(rotations);
        var keys = await _nodes[0].Services.GetRequiredService<SigningKeys>().ListAsync();
        Assert.Equal(9, keys.Count);
        Assert.Single(keys, k => k.Use == SigningKeyUse.Signing);

        var retiring = keys.First(k => k.Use == SigningKeyUse.Verifying).Id;
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => _nodes[i % 2].Services.GetRequiredService<SigningKeys>().RetireAsync(retiring, "test")));
        Assert.Single(outcomes, o => o == RetireOutcome.Ended);
        Assert.All(outcomes, o => Assert.Contains(o, new[] { RetireOutcome.Ended, RetireOutcome.AlreadyEnded }));
    }

    private static string Kid(string token) => new JsonWebToken(token).Kid;

    private static async Task<List<string>> KidsAsync(GatehouseServer node)
    {
        var jwks = await node.Http.GetFromJsonAsync<JsonNode>("/.well-known/jwks.json");
        return [.. jwks!["keys"]!.AsArray().Select(k => k!["kid"]!.GetValue<string>())];
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Within;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Not within {Within.TotalSeconds} s: {what}.");
            await Task.Delay(100);
        }
    }

    private async Task<string> OperatorAsync(params string[] args)
    {
        var (exit, output) = await OperatorWithExitAsync(args);
        Assert.True(exit == 0, output);
        return output;
    }

    private async Task<(int Exit, string Output)> OperatorWithExitAsync(params string[] args)
    {
        var (exit, output, error) = await OperatorRun.RunAsync(OperatorRun.OnPostgres(_connectionString, _nodes[0].DataDirectory), args);
        return (exit, output + error);
    }
}
