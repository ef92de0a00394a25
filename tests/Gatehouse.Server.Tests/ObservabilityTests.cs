using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Gatehouse.Server.Admins;
using Microsoft.AspNetCore.Routing;

namespace Gatehouse.Server.Tests;

[Trait(Category.Name, Category.Fast)]
public sealed partial class ObservabilityTests(GatehouseServer server) : IClassFixture<GatehouseServer>
{
    [Fact]
    public async Task Every_public_endpoint_the_server_maps_is_in_the_openapi_document_and_the_reference_page_serves()
    {
        var document = JsonNode.Parse(await server.Http.GetStringAsync("/openapi/v1.json"))!;
        var mapped = server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText is { } path && new[] { "/api/", "/.well-known/", "/oauth/" }.Any(prefix => path.StartsWith(prefix, StringComparison.Ordinal)))
            .SelectMany(e => e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods.Select(method => (Path: e.RoutePattern.RawText!, Method: method.ToLowerInvariant())))
            .ToList();

        Assert.StartsWith("3.1", document["openapi"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.True(mapped.Count >= 16, $"only {mapped.Count} endpoints found");
        foreach (var (path, method) in mapped)
            Assert.True(document["paths"]?[path]?[method] is not null, $"{method.ToUpperInvariant()} {path} is missing from /openapi/v1.json");
        Assert.NotNull(document["components"]!["schemas"]!["ErrorEnvelope"]);
        var sessionBodyReference = document["paths"]!["/api/v5/sessions"]!["post"]!["requestBody"]!["content"]!["application/json"]!["schema"]!["$ref"]!;
        Assert.Equal("#/components/schemas/SessionRequest", sessionBodyReference.GetValue<string>());
        var sessionBody = document["components"]!["schemas"]!["SessionRequest"]!;
        Assert.Equal("alice", sessionBody["examples"]![0]!["userId"]!.GetValue<string>());
        Assert.Equal(["userId", "deviceId"], sessionBody["required"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.NotNull(document["paths"]!["/api/v4/sessions/refresh"]!["post"]!["responses"]!["401"]);

        using var reference = await server.Http.GetAsync("/docs");
        Assert.Equal(HttpStatusCode.OK, reference.StatusCode);
        Assert.Contains("scalar", await reference.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Each_operation_called_without_a_credential_answers_as_its_documented_security_says_with_a_documented_refusal()
    {
        var document = JsonNode.Parse(await server.Http.GetStringAsync("/openapi/v1.json"))!;
        var operations = 0;
        foreach (var (path, item) in document["paths"]!.AsObject())
        {
            foreach (var (method, operation) in item!.AsObject())
            {
                operations++;
                var called = $"{method.ToUpperInvariant()} {path}";
                using var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), path.Replace("{userId}", "nobody", StringComparison.Ordinal));
                using var response = await server.Http.SendAsync(request);
                // An empty requirement among the alternatives means none is needed.
                var requirements = operation!["security"]!.AsArray().Select(requirement => requirement!.AsObject().Select(scheme => scheme.Key).ToList()).ToList();
                Assert.NotEmpty(requirements);
                if (requirements.Any(schemes => schemes.Count == 0))
                {
                    Assert.True(response.StatusCode == HttpStatusCode.OK, $"{called} is documented as public but answered {(int)response.StatusCode}");
                    continue;
                }

                Assert.True(requirements.SelectMany(schemes => schemes).All(scheme => document["components"]!["securitySchemes"]![scheme] is not null), called);
                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{called} needs a credential but answered {(int)response.StatusCode}");
                var refusal = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
                var documented = operation["responses"]!["401"]!["content"]!["application/json"]!["examples"]!.AsObject()
                    .Select(example => example.Value!["value"]!["message"]!.GetValue<string>());
                Assert.Contains(refusal["message"]!.GetValue<string>(), documented);
            }
        }
        Assert.True(operations >= 20, $"only {operations} operations documented");
    }

    [Fact]
    public async Task Health_and_readiness_answer()
    {
        Assert.Equal("ok", await server.Http.GetStringAsync("/healthz"));
        using var ready = await server.Http.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("ready", JsonNode.Parse(await ready.Content.ReadAsStringAsync())!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Metrics_count_security_events_and_requests_per_route_without_user_ids_or_secrets()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        await server.LoginAsync(network, "metrics-user-7f3a", "device-m", await server.MintAsync(serverKey, "metrics-user-7f3a"));
        using (await server.MintV3Async("gsk_wrong", "metrics-user-7f3a")) { }

        var metrics = "";
        for (var attempt = 0; attempt < 50 && !metrics.Contains("kind=\"session.created\"", StringComparison.Ordinal); attempt++)
        {
            await Task.Delay(100);
            metrics = await server.Http.GetStringAsync("/metrics");
        }

        Assert.Matches(MintedRegex(), metrics);
        Assert.Contains("kind=\"server_key.refused\",outcome=\"refused\",reason=\"server_key_invalid\"", metrics, StringComparison.Ordinal);
        Assert.Contains("http_route=\"/api/v5/sessions\"", metrics, StringComparison.Ordinal);
        Assert.DoesNotContain("metrics-user-7f3a", metrics, StringComparison.Ordinal);
        Assert.DoesNotContain(serverKey, metrics, StringComparison.Ordinal);
    }

    [GeneratedRegex("gatehouse_security_events_total\\{[^}]*kind=\"auth_token.minted\"[^}]*\\} [1-9]")]
    private static partial Regex MintedRegex();
}

/// <summary>Every flow, with every category logging at Debug, and not one issued secret in the log.</summary>
[Trait(Category.Name, Category.Slow)]
public sealed class SecretFreeLogTests : IAsyncLifetime
{
    private readonly ConcurrentQueue<LogLine> _lines = new();
    private readonly ConcurrentQueue<string> _responses = new();
    private GatehouseServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = new GatehouseServer
        {
            Configure = builder => builder.Logging.AddProvider(new LogRecorder(_lines)),
            ResponseBodies = _responses,
        };
        foreach (var category in new[] { "Default", "Microsoft", "Microsoft.AspNetCore", "Microsoft.EntityFrameworkCore", "Gatehouse" })
            _server.Settings[$"Logging:LogLevel:{category}"] = "Debug";
        await _server.InitializeAsync();
    }

    public Task DisposeAsync() => _server.DisposeAsync();

    [Fact]
    public async Task No_issued_secret_reaches_the_log_or_any_response_but_the_one_that_issued_it()
    {
        var secrets = new List<string>();
        var network = await _server.CreateNetworkAsync(secureMode: true);
        var serverKey = await _server.GenerateServerKeyAsync(network);
        secrets.Add(serverKey);
        var authToken = await _server.MintAsync(serverKey, "alice");
        secrets.Add(authToken);
        var session = await _server.LoginAsync(network, "alice", "device-a", authToken);
        secrets.Add(session["accessToken"]!.GetValue<string>());
        secrets.Add(session["refreshToken"]!.GetValue<string>());
        using (var refreshed = await _server.RefreshAsync(network, session["refreshToken"]!.GetValue<string>()))
        {
            var body = JsonNode.Parse(await refreshed.Content.ReadAsStringAsync())!;
            secrets.Add(body["refreshToken"]!.GetValue<string>());
            secrets.Add(body["accessToken"]!.GetValue<string>());
        }
        using (await _server.RefreshAsync(network, session["refreshToken"]!.GetValue<string>())) { }
        using (var v4 = await _server.PostJsonAsync("/api/v4/authentication/token", new { userId = "bob" }, serverKey: serverKey))
            secrets.Add(JsonNode.Parse(await v4.Content.ReadAsStringAsync())!["authToken"]!.GetValue<string>());

        var admin = await _server.CreateAdminAsync(network);
        var (adminToken, _) = await _server.GenerateAdminTokenAsync(admin, network);
        secrets.Add(adminToken!);
        using (await _server.AdminAsync(HttpMethod.Post, "/api/v4/admin/users/alice/ban", adminToken!)) { }
        using (await _server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", "gat_wrong")) { }

        await using (var scope = _server.Services.CreateAsyncScope())
        {
            var accounts = scope.ServiceProvider.GetRequiredService<AdminAccounts>();
            var (created, oneTime, _) = await accounts.CreateAsync("log-test@example.com", superAdmin: false, "test");
            secrets.Add(oneTime!);
            secrets.Add("a brand new password for the log test");
            await accounts.ChangePasswordAsync(created!, oneTime!, "a brand new password for the log test", null);
            await accounts.SignInAsync("log-test@example.com", "a wrong password guess 12345", null);
            secrets.Add("a wrong password guess 12345");
        }
        await _server.FlushAuditAsync();
        await _server.StopAsync();

        var log = string.Join('\n', _lines.Select(l => l.Everything));
        Assert.Contains("Security event auth_token.minted", log, StringComparison.Ordinal);
        Assert.Contains("Microsoft.EntityFrameworkCore", log, StringComparison.Ordinal);
        foreach (var secret in secrets)
            Assert.DoesNotContain(secret, log, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", log, StringComparison.Ordinal);

        // In flight: a secret is in the answer that issues it and in no other.
        var responses = _responses.ToList();
        Assert.True(responses.Count >= 7, $"only {responses.Count} responses were recorded");
        foreach (var secret in secrets)
            Assert.True(responses.Count(body => body.Contains(secret, StringComparison.Ordinal)) <= 1, $"a secret appears in more than one response");
        Assert.DoesNotContain(responses, body => body.Contains("PRIVATE KEY", StringComparison.Ordinal));
    }
}
