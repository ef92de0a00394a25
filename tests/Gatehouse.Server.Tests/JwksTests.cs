using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Gatehouse.Server.Tokens;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Server.Tests;

public abstract class JwksTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    [SkippableFact]
    public async Task The_published_key_verifies_an_issued_access_token()
    {
        var network = await server.CreateNetworkAsync();
        var accessToken = (await server.LoginAsync(network, "alice", "device-a"))["accessToken"]!.GetValue<string>();

        var jwks = JsonNode.Parse(await server.Http.GetStringAsync("/.well-known/jwks.json"))!;

        var (header, payload) = Decode(accessToken);
        Assert.Equal("ES256", header["alg"]!.GetValue<string>());
        Assert.Equal("at+jwt", header["typ"]!.GetValue<string>());
        Assert.Equal("alice", payload["sub"]!.GetValue<string>());
        Assert.True(Guid.TryParse(payload["sid"]!.GetValue<string>(), out _));
        var jwk = jwks["keys"]!.AsArray().Single(k => k!["kid"]!.GetValue<string>() == header["kid"]!.GetValue<string>())!;
        Assert.Null(jwk["d"]);
        Assert.True(Verify(accessToken, jwk));
        Assert.False(Verify(accessToken[..^4] + (accessToken.EndsWith("AAAA", StringComparison.Ordinal) ? "BBBB" : "AAAA"), jwk));
    }

    [SkippableFact]
    public async Task Rotating_the_signing_key_keeps_live_tokens_valid_and_signs_new_ones_with_the_new_key()
    {
        var network = await server.CreateNetworkAsync();
        var before = (await server.LoginAsync(network, "bob", "device-b"))["accessToken"]!.GetValue<string>();

        var newKid = await server.Services.GetRequiredService<SigningKeys>().RotateAsync("test");
        var after = (await server.LoginAsync(network, "carol", "device-c"))["accessToken"]!.GetValue<string>();

        using var oldStillValid = await server.GetWithBearerAsync("/api/v3/users/me", before);
        Assert.Equal(HttpStatusCode.OK, oldStillValid.StatusCode);
        Assert.Equal(newKid, Decode(after).Header["kid"]!.GetValue<string>());
        var published = JsonNode.Parse(await server.Http.GetStringAsync("/.well-known/jwks.json"))!["keys"]!.AsArray();
        Assert.Contains(published, k => k!["kid"]!.GetValue<string>() == Decode(before).Header["kid"]!.GetValue<string>());
        Assert.Contains(published, k => k!["kid"]!.GetValue<string>() == newKid);
    }

    private static (JsonNode Header, JsonNode Payload) Decode(string jwt)
    {
        var parts = jwt.Split('.');
        return (JsonNode.Parse(Base64UrlEncoder.DecodeBytes(parts[0]))!, JsonNode.Parse(Base64UrlEncoder.DecodeBytes(parts[1]))!);
    }

    /// <summary>Plain RFC 7515 verification with the BCL, independent of the server's JWT library.</summary>
    private static bool Verify(string jwt, JsonNode jwk)
    {
        var lastDot = jwt.LastIndexOf('.');
        using var ecdsa = ECDsa.Create(new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint
            {
                X = Base64UrlEncoder.DecodeBytes(jwk["x"]!.GetValue<string>()),
                Y = Base64UrlEncoder.DecodeBytes(jwk["y"]!.GetValue<string>()),
            },
        });
        byte[] signature;
        try
        {
            signature = Base64UrlEncoder.DecodeBytes(jwt[(lastDot + 1)..]);
        }
        catch (FormatException)
        {
            return false;
        }
        return ecdsa.VerifyData(Encoding.ASCII.GetBytes(jwt[..lastDot]), signature, HashAlgorithmName.SHA256);
    }
}

[Trait(Category.Name, Category.Fast)]
public sealed class JwksTestsOnSqlite(SqliteServer server) : JwksTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class JwksTestsOnPostgres(PostgresServer server) : JwksTests<PostgresServer>(server);
