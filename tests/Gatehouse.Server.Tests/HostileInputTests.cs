using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.Tokens;
using Xunit.Abstractions;

namespace Gatehouse.Server.Tests;

/// <summary>
/// Twenty thousand malformed or hostile requests across every public endpoint, from a seeded generator (the same
/// run every time). Figures: requests sent, 5xx answers, answers outside the envelope, state changed by refused
/// requests; all but the first must be zero, and the server must still be ready.
/// </summary>
public sealed class HostileInputTests(GatehouseServer server, ITestOutputHelper output) : IClassFixture<GatehouseServer>
{
    private const int Requests = 20_000;
    private const int Workers = 8;

    [Fact]
    public async Task Twenty_thousand_hostile_requests_get_no_5xx_only_envelopes_and_change_nothing()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var session = await server.LoginAsync(network, "target", "device-t", await server.MintAsync(serverKey, "target"));
        var accessToken = session["accessToken"]!.GetValue<string>();
        var (adminToken, _) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);
        var jwk = JsonNode.Parse(await server.Http.GetStringAsync("/.well-known/jwks.json"))!["keys"]![0]!;
        var tokens = Tampered(accessToken, jwk).Concat(Tampered(await server.MintAsync(serverKey, "target"), jwk)).ToArray();
        var before = await SnapshotAsync();

        var fiveHundreds = 0;
        var outsideEnvelope = 0;
        var refusedByHttpLayer = 0;
        var accepted = 0;
        var examples = new System.Collections.Concurrent.ConcurrentBag<string>();
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(worker => Task.Run(async () =>
        {
            var random = new Random(1000 + worker);
            for (var i = 0; i < Requests / Workers; i++)
            {
                using var request = Hostile(random, network.ApiKey, serverKey, accessToken, adminToken!, tokens);
                HttpResponseMessage response;
                try
                {
                    response = await server.Http.SendAsync(request);
                }
                catch (HttpRequestException)
                {
                    continue;
                }
                using (response)
                {
                    var body = await response.Content.ReadAsStringAsync();
                    if ((int)response.StatusCode >= 500)
                    {
                        Interlocked.Increment(ref fiveHundreds);
                        examples.Add($"{request.Method} {request.RequestUri} -> {(int)response.StatusCode} {body}");
                    }
                    else if (response.IsSuccessStatusCode)
                    {
                        Interlocked.Increment(ref accepted);
                    }
                    else if (body.Length == 0 && (int)response.StatusCode is 400 or 414 or 431)
                    {
                        // Not HTTP at all (a control character in the request line or a header, a request line
                        // over 8 KiB): Kestrel answers before any application code runs.
                        Interlocked.Increment(ref refusedByHttpLayer);
                    }
                    else if (!IsEnvelope(body))
                    {
                        Interlocked.Increment(ref outsideEnvelope);
                        examples.Add($"{request.Method} {request.RequestUri} -> {(int)response.StatusCode} {body}");
                    }
                }
            }
        })));
        var after = await SnapshotAsync();

        output.WriteLine($"requests sent: {Requests}; accepted: {accepted}; refused by the HTTP layer (not HTTP): {refusedByHttpLayer}; " +
            $"5xx: {fiveHundreds}; outside the envelope: {outsideEnvelope}; state before: {before}; after: {after}");
        Assert.True(fiveHundreds == 0 && outsideEnvelope == 0, string.Join('\n', examples.Take(10)));
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

    private static readonly (HttpMethod Method, string Path, string Credential)[] Endpoints =
    [
        (HttpMethod.Post, "/api/v3/sessions", "api"), (HttpMethod.Post, "/api/v4/sessions", "api"), (HttpMethod.Post, "/api/v5/sessions", "api"),
        (HttpMethod.Post, "/api/v4/sessions/refresh", "api"), (HttpMethod.Delete, "/api/v4/sessions", "bearer-refused"),
        (HttpMethod.Get, "/api/v3/users/me", "bearer"), (HttpMethod.Get, "/api/v3/network-settings/chat", "bearer"),
        (HttpMethod.Get, "/api/v3/authentication/token?userId=", "server"), (HttpMethod.Post, "/api/v4/authentication/token", "server"),
        (HttpMethod.Get, "/api/v4/admin/users?search=", "admin"), (HttpMethod.Get, "/api/v4/admin/users/", "admin"),
        (HttpMethod.Post, "/api/v4/admin/users/{0}/ban", "admin-refused"), (HttpMethod.Post, "/api/v4/admin/users/{0}/unban", "admin-refused"),
        (HttpMethod.Get, "/api/v4/admin/audit?kind=", "admin"), (HttpMethod.Delete, "/api/v4/sessions", "admin-refused"),
        (HttpMethod.Delete, "/api/v4/admin/token", "admin-refused"),
    ];

    private static readonly string[] Strings =
    [
        "", " ", "\u0000", "a\nb", "\u202e", new string('x', 300), new string('é', 2000), "../../etc/passwd", "<script>", "' OR 1=1 --",
        "%00", "\ud800", "null", "target", "{}", "💥", "\t", "ascWebSdk#" + Guid.Empty,
    ];

    private static HttpRequestMessage Hostile(Random random, string apiKey, string serverKey, string accessToken, string adminToken, string[] tokens)
    {
        var (method, path, credential) = Endpoints[random.Next(Endpoints.Length)];
        var text = Pick(random, Strings);
        path = path.Contains("{0}", StringComparison.Ordinal) ? string.Format(System.Globalization.CultureInfo.InvariantCulture, path, Uri.EscapeDataString(text.Length > 0 ? text : "x"))
            : path.EndsWith('=') || path.EndsWith('/') ? path + Uri.EscapeDataString(text) : path;
        var request = new HttpRequestMessage(method, path);

        // Credentials: right, wrong, tampered or absent; the refusing endpoints never get a working admin token.
        var roll = random.Next(6);
        switch (credential)
        {
            case "api" when roll < 4:
                request.Headers.TryAddWithoutValidation("x-api-key", roll == 0 ? text : apiKey);
                break;
            case "bearer" when roll < 4:
                request.Headers.TryAddWithoutValidation("Authorization", roll == 0 ? "Bearer " + accessToken : "Bearer " + Pick(random, tokens));
                break;
            case "bearer-refused" when roll < 4:
                request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + Pick(random, tokens));
                break;
            case "server" when roll < 4:
                request.Headers.TryAddWithoutValidation("x-server-key", roll == 0 ? text : serverKey);
                break;
            case "admin" when roll < 4:
                request.Headers.TryAddWithoutValidation("x-admin-token", roll == 0 ? text : adminToken);
                break;
            case "admin-refused" when roll < 4:
                request.Headers.TryAddWithoutValidation("x-admin-token", roll == 0 ? "gat_" + text : Pick(random, tokens));
                break;
        }

        if (method != HttpMethod.Get)
            request.Content = Body(random, text, Pick(random, tokens));
        return request;
    }

    private static ByteArrayContent Body(Random random, string text, string token)
    {
        byte[] bytes = random.Next(14) switch
        {
            0 => "{\"userId\": \"a\", "u8.ToArray(),
            1 => [],
            2 => Encoding.UTF8.GetBytes(new string('[', 5000) + new string(']', 5000)),
            3 => Encoding.UTF8.GetBytes($"{{\"userId\":\"{Escape(text)}\",\"userId\":\"b\",\"deviceId\":\"d\"}}"),
            4 => "{\"userId\": 42, \"deviceId\": [], \"authToken\": {}, \"refreshToken\": true}"u8.ToArray(),
            5 => "{\"userId\": null, \"deviceId\": null, \"refreshToken\": null}"u8.ToArray(),
            6 => Encoding.UTF8.GetBytes($"{{\"userId\":\"{new string('u', 100_000)}\",\"deviceId\":\"d\"}}"),
            7 => [(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}'],
            8 => Encoding.UTF8.GetBytes($"{{\"userId\":\"target\",\"deviceId\":\"{Escape(text)}\",\"authToken\":\"{token}\"}}"),
            9 => Encoding.UTF8.GetBytes($"{{\"refreshToken\":\"{Escape(text)}grt_{Guid.NewGuid():n}\",\"userId\":\"{Escape(text)}\"}}"),
            10 => "null"u8.ToArray(),
            11 => Encoding.UTF8.GetBytes($"{{\"userId\":\"target\",\"deviceId\":\"d\",\"deviceInfo\":{{\"kind\":\"{new string('k', 400)}\"}},\"authToken\":\"{token}\"}}"),
            12 => RandomNumberGenerator.GetBytes(64),
            _ => Encoding.UTF8.GetBytes($"{{\"userId\":\"{Escape(text)}\",\"deviceId\":\"{Escape(text)}\",\"displayName\":\"{Escape(text)}\",\"authToken\":\"{token}\"}}"),
        };
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = random.Next(8) switch
        {
            0 => null,
            1 => new MediaTypeHeaderValue("text/plain"),
            2 => MediaTypeHeaderValue.Parse("application/json; charset=latin1"),
            _ => new MediaTypeHeaderValue("application/json"),
        };
        return content;
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

    /// <summary>JSON-escaped; a lone surrogate is written as its \u escape, which a JSON reader must refuse.</summary>
    private static string Escape(string value) =>
        string.Concat(value.Select(c => char.IsSurrogate(c) || char.IsControl(c) || c is '"' or '\\'
            ? $"\\u{(int)c:x4}"
            : c.ToString()));

    private static T Pick<T>(Random random, T[] values) => values[random.Next(values.Length)];
}
