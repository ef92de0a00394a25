using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsCheck;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.Tokens;
using Xunit.Abstractions;

namespace Gatehouse.Server.Tests;

/// <summary>
/// Twenty thousand malformed or hostile requests across every public endpoint, drawn by CsCheck, on SQLite and on
/// PostgreSQL (which refuses some text SQLite stores, a NUL for one). A request that gets a 5xx or an
/// answer outside the envelope fails the sample; CsCheck then shrinks it to the smallest request that still fails
/// and prints it with its seed (replay with <c>CsCheck_Seed=&lt;seed&gt;</c>). Figures: requests sent, 5xx answers,
/// answers outside the envelope, state changed by refused requests; all but the first must be zero, and the server
/// must still be ready.
/// </summary>
public abstract class HostileInputTests<TServer>(TServer server, ITestOutputHelper output) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    private const int Requests = 20_000;
    private const int Workers = 8;

    [SkippableFact]
    public async Task Hostile_requests_get_no_5xx_only_envelopes_and_change_nothing()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var session = await server.LoginAsync(network, "target", "device-t", await server.MintAsync(serverKey, "target"));
        var accessToken = session["accessToken"]!.GetValue<string>();
        var (adminToken, _) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);
        var jwk = JsonNode.Parse(await server.Http.GetStringAsync("/.well-known/jwks.json"))!["keys"]![0]!;
        var tokens = Tampered(accessToken, jwk).Concat(Tampered(await server.MintAsync(serverKey, "target"), jwk)).ToArray();
        var credentials = new Credentials(network.ApiKey, serverKey, accessToken, adminToken!, tokens);
        var before = await SnapshotAsync();

        var sent = 0;
        var accepted = 0;
        var refusedByHttpLayer = 0;
        await HostileRequest.Generator(credentials).SampleAsync(async hostile =>
        {
            Interlocked.Increment(ref sent);
            using var request = hostile.ToMessage();
            HttpResponseMessage response;
            try
            {
                response = await server.Http.SendAsync(request);
            }
            catch (HttpRequestException)
            {
                // The client itself refused to send it (an invalid header value): nothing reached the server.
                return;
            }
            using (response)
            {
                var body = await response.Content.ReadAsStringAsync();
                var status = (int)response.StatusCode;
                if (status >= 500)
                    throw new InvalidOperationException($"{status} {body}");
                if (response.IsSuccessStatusCode)
                    Interlocked.Increment(ref accepted);
                else if (body.Length == 0 && status is 400 or 414 or 431)
                    // Not HTTP at all (a control character in the request line or a header, a request line over
                    // 8 KiB): Kestrel answers before any application code runs.
                    Interlocked.Increment(ref refusedByHttpLayer);
                else if (!IsEnvelope(body))
                    throw new InvalidOperationException($"outside the envelope: {status} {body}");
            }
        }, iter: Requests, threads: Workers, print: hostile => hostile.ToString());
        var after = await SnapshotAsync();

        output.WriteLine($"requests sent: {sent}; accepted: {accepted}; refused by the HTTP layer (not HTTP): {refusedByHttpLayer}; " +
            $"5xx: 0; outside the envelope: 0; state before: {before}; after: {after}");
        Assert.True(sent >= Requests);
        Assert.Equal(before, after);
        using var ready = await server.Http.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        using var stillValid = await server.GetWithBearerAsync("/api/v3/users/me", accessToken);
        Assert.Equal(HttpStatusCode.OK, stillValid.StatusCode);
    }

    /// <summary>What a refused request must not touch: users, sessions (and their revocation), keys, tokens, bans.</summary>
    private async Task<string> SnapshotAsync()
    {
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        return string.Join(',',
            await db.Users.CountAsync(), await db.Users.CountAsync(u => u.IsGlobalBan), await db.Sessions.CountAsync(),
            await db.Sessions.CountAsync(s => s.RevokedAt != null), await db.RefreshTokens.CountAsync(r => r.UsedAt != null),
            await db.ServerKeys.CountAsync(), await db.AdminTokens.CountAsync(t => t.RevokedAt != null), await db.Networks.CountAsync());
    }

    private static bool IsEnvelope(string body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            return json.RootElement.GetProperty("status").GetString() == "error"
                && json.RootElement.GetProperty("code").ValueKind == JsonValueKind.Number
                && json.RootElement.GetProperty("message").ValueKind == JsonValueKind.String;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>RFC 8725's catalogue of forgeries, made from a genuine token.</summary>
    private static IEnumerable<string> Tampered(string genuine, JsonNode jwk)
    {
        var parts = genuine.Split('.');
        var header = JsonNode.Parse(Base64UrlEncoder.Decode(parts[0]))!;
        var payload = JsonNode.Parse(Base64UrlEncoder.Decode(parts[1]))!;
        string Encode(JsonNode node) => Base64UrlEncoder.Encode(node.ToJsonString());

        var none = header.DeepClone();
        none["alg"] = "none";
        yield return $"{Encode(none)}.{parts[1]}.";

        var hs256 = header.DeepClone();
        hs256["alg"] = "HS256";
        var publicKey = Encoding.UTF8.GetBytes(jwk.ToJsonString());
        var signingInput = $"{Encode(hs256)}.{parts[1]}";
        yield return $"{signingInput}.{Base64UrlEncoder.Encode(HMACSHA256.HashData(publicKey, Encoding.ASCII.GetBytes(signingInput)))}";

        var unknownKid = header.DeepClone();
        unknownKid["kid"] = "not-one-of-ours";
        yield return $"{Encode(unknownKid)}.{parts[1]}.{parts[2]}";

        yield return $"{parts[0]}.{parts[1]}.";
        yield return $"{parts[0]}.{parts[1]}.{(parts[2][0] == 'A' ? 'B' : 'A')}{parts[2][1..]}";

        var edited = payload.DeepClone();
        edited["sub"] = "someone-else";
        yield return $"{parts[0]}.{Encode(edited)}.{parts[2]}";
        var extended = payload.DeepClone();
        extended["exp"] = 4_102_444_800;
        yield return $"{parts[0]}.{Encode(extended)}.{parts[2]}";
        yield return "not.a.jwt";
        yield return genuine + "x";
    }
}

[Trait(Category.Name, Category.Slow)]
public sealed class HostileInputTestsOnSqlite(HostileInputServer server, ITestOutputHelper output)
    : HostileInputTests<HostileInputServer>(server, output);

[Trait(Category.Name, Category.Postgres)]
public sealed class HostileInputTestsOnPostgres(HostileInputPostgresServer server, ITestOutputHelper output)
    : HostileInputTests<HostileInputPostgresServer>(server, output);

/// <summary>
/// The server with the limits on refused credentials out of reach: past them every hostile request would be answered
/// 429 before its body is read, and the bodies are what this test is about (CredentialFloodTests covers the limits).
/// </summary>
public sealed class HostileInputServer : GatehouseServer
{
    public HostileInputServer() => HostileInput.LiftCredentialLimits(Settings);
}

/// <summary>The same on PostgreSQL.</summary>
public sealed class HostileInputPostgresServer : PostgresServer
{
    public HostileInputPostgresServer() => HostileInput.LiftCredentialLimits(Settings);
}

internal static class HostileInput
{
    public static void LiftCredentialLimits(Dictionary<string, string?> settings)
    {
        settings["Gatehouse:RateLimits:FailedCredentialsPerAddressPerMinute"] = "10000000";
        settings["Gatehouse:RateLimits:FailuresPerCredentialPerMinute"] = "10000000";
    }
}
