using System.Diagnostics;
using System.Text.Json.Nodes;
using Gatehouse.Server.Tokens;

namespace Gatehouse.Server.Tests;

/// <summary>
/// A customer's Node API, written as docs/resource-servers.md shows (tests/jose/verify.mjs, jose pinned): it discovers
/// the metadata from the issuer alone and verifies a real access token; a tampered one is refused.
/// </summary>
[Trait(Category.Name, Category.Slow)]
public sealed class JoseResourceServerTests(SqliteServer server) : IClassFixture<SqliteServer>
{
    [Fact]
    public async Task Node_jose_discovers_the_metadata_from_the_issuer_and_verifies_an_access_token()
    {
        Assert.True(File.Exists(Repository.PathOf("tests", "jose", "node_modules", "jose", "package.json")),
            "jose is not installed: run `npm ci --prefix tests/jose` (./test.sh does).");
        var network = await server.CreateNetworkAsync();
        var token = (await server.LoginAsync(network, "alice", "device-a"))["accessToken"]!.GetValue<string>();
        var issuer = server.Services.GetRequiredService<TokenIssuer>().Current;

        var (verified, payload, _) = await VerifyAsync(issuer, token);
        var signature = token[(token.LastIndexOf('.') + 1)..];
        var tampered = token[..(token.LastIndexOf('.') + 1)] + (signature[0] == 'A' ? 'B' : 'A') + signature[1..];
        var (refused, _, why) = await VerifyAsync(issuer, tampered);

        Assert.True(verified);
        var claims = JsonNode.Parse(payload)!;
        Assert.Equal("alice", claims["sub"]!.GetValue<string>());
        Assert.Equal(network.Id, claims["nid"]!.GetValue<string>());
        Assert.Equal(issuer, claims["iss"]!.GetValue<string>());
        Assert.False(refused);
        Assert.Contains("ERR_JWS_SIGNATURE_VERIFICATION_FAILED", why, StringComparison.Ordinal);
    }

    private static async Task<(bool Verified, string Output, string Error)> VerifyAsync(string issuer, string token)
    {
        var start = new ProcessStartInfo("node", [Repository.PathOf("tests", "jose", "verify.mjs"), issuer, token])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var node = Process.Start(start)!;
        var output = node.StandardOutput.ReadToEndAsync();
        var error = node.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await node.WaitForExitAsync(timeout.Token);
        return (node.ExitCode == 0, await output, await error);
    }
}
