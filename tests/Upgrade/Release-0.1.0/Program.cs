// Fills a database the way release 0.1.0 does, through that release's own code and HTTP API, and writes what its
// clients would hold (API keys, server keys, tokens, a client certificate) to a manifest, so UpgradeTests can check
// that every one of them still works after a newer release upgrades the database in place.
//
// Usage: UpgradeFixture <data directory> <manifest path> [PostgreSQL connection string]
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Gatehouse.Server;
using Gatehouse.Server.Admins;
using Gatehouse.Server.AdminTokens;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Certificates;
using Gatehouse.Server.Networks;
using Gatehouse.Server.ServerKeys;
using Gatehouse.Server.Storage;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.EntityFrameworkCore;

var dataDirectory = args[0];
var manifestPath = args[1];
var postgres = args.Length > 2 ? args[2] : null;

var settings = new Dictionary<string, string?> { ["Gatehouse:DataDirectory"] = dataDirectory };
if (postgres is not null)
{
    settings["Gatehouse:Database:Provider"] = "PostgreSQL";
    settings["Gatehouse:Database:ConnectionString"] = postgres;
}
var app = GatehouseApp.Build([], builder =>
{
    builder.WebHost.UseUrls("http://127.0.0.1:0;https://127.0.0.1:0");
    builder.Configuration.AddInMemoryCollection(settings);
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
});
await GatehouseApp.InitializeAsync(app, TextWriter.Null);
await app.StartAsync();
var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
using var http = new HttpClient { BaseAddress = new Uri(addresses.Single(a => a.StartsWith("http://", StringComparison.Ordinal))) };
var httpsAddress = new Uri(addresses.Single(a => a.StartsWith("https://", StringComparison.Ordinal)));
var serverCertificate = app.Services.GetRequiredService<ServerCertificate>().Certificate;

var manifest = new JsonObject
{
    ["release"] = "0.1.0",
    ["serverCertificateThumbprint"] = serverCertificate.Thumbprint,
    ["certificateAuthorityPem"] = app.Services.GetRequiredService<CertificateAuthority>().CertificatePem,
    ["jwks"] = JsonNode.Parse(await http.GetStringAsync(new Uri("/.well-known/jwks.json", UriKind.Relative))),
};

// A network in the default mode: users log in with the API key alone.
var open = await CreateNetworkAsync("Upgrade: open", secureMode: false);
var alice = await LoginAsync(open.ApiKey, "alice", "device-alice");
var carolFirst = await LoginAsync(open.ApiKey, "carol", "device-carol");
var carol = await RefreshAsync(open.ApiKey, carolFirst["refreshToken"]!.GetValue<string>());
manifest["open"] = new JsonObject
{
    ["networkId"] = open.Id,
    ["apiKey"] = open.ApiKey,
    ["alice"] = alice,
    ["carol"] = carol,
    ["carolSpentRefreshToken"] = carolFirst["refreshToken"]!.GetValue<string>(),
};

// A network in secure mode: a server key in its grace period beside the current one, an admin with an admin token,
// and a user banned through the admin API.
var secure = await CreateNetworkAsync("Upgrade: secure", secureMode: true);
var keyInGrace = await GenerateServerKeyAsync(secure);
var bob = await LoginAsync(secure.ApiKey, "bob", "device-bob", await MintAsync(http, keyInGrace, "bob"));
var currentKey = await GenerateServerKeyAsync(secure);
var dave = await LoginAsync(secure.ApiKey, "dave", "device-dave", await MintAsync(http, currentKey, "dave"));
var secureAdminToken = await GenerateAdminTokenAsync(secure, "secure-admin@upgrade.example");
await LoginAsync(secure.ApiKey, "mallory", "device-mallory", await MintAsync(http, currentKey, "mallory"));
using (var ban = new HttpRequestMessage(HttpMethod.Post, "/api/v4/admin/users/mallory/ban"))
{
    ban.Headers.Add("x-admin-token", secureAdminToken);
    using var banned = await http.SendAsync(ban);
    banned.EnsureSuccessStatusCode();
}
using (var refused = await PostSessionAsync(secure.ApiKey, "mallory", "device-mallory", await MintAsync(http, currentKey, "mallory")))
{
    manifest["bannedLoginStatus"] = (int)refused.StatusCode;
    manifest["bannedLoginCode"] = JsonNode.Parse(await refused.Content.ReadAsStringAsync())!["code"]!.GetValue<int>();
}
manifest["secure"] = new JsonObject
{
    ["networkId"] = secure.Id,
    ["apiKey"] = secure.ApiKey,
    ["serverKey"] = currentKey,
    ["serverKeyInGrace"] = keyInGrace,
    ["adminToken"] = secureAdminToken,
    ["bob"] = bob,
    ["dave"] = dave,
    ["bannedUserId"] = "mallory",
};

// A network with mTLS on: its backend reaches the auth-token endpoint and the admin API only with its certificate.
var mtls = await CreateNetworkAsync("Upgrade: mTLS", secureMode: true);
var mtlsKey = await GenerateServerKeyAsync(mtls);
var mtlsAdminToken = await GenerateAdminTokenAsync(mtls, "mtls-admin@upgrade.example");
using var clientKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
var chainPem = await ScopedAsync(async services =>
{
    var network = (await services.GetRequiredService<NetworkAdministration>().FindAsync(mtls.Id))!;
    var certificates = services.GetRequiredService<ClientCertificates>();
    var request = new CertificateRequest("CN=upgrade-backend, O=Customer", clientKey, HashAlgorithmName.SHA256);
    var (issued, error) = await certificates.CreateAsync(network, "upgrade-backend", request.CreateSigningRequestPem(), "upgrade-fixture");
    Check(error is null, error);
    Check(await certificates.SetMtlsAsync(network, true, "upgrade-fixture") is null, "mTLS did not turn on");
    return services.GetRequiredService<CertificateAuthority>().ChainPem(issued!);
});
using var clientCertificate = X509Certificate2.CreateFromPem(chainPem, clientKey.ExportPkcs8PrivateKeyPem());
using var mtlsHandler = new HttpClientHandler
{
    ClientCertificateOptions = ClientCertificateOption.Manual,
    ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented is not null && presented.RawData.AsSpan().SequenceEqual(serverCertificate.RawData),
};
mtlsHandler.ClientCertificates.Add(clientCertificate);
using var mtlsHttp = new HttpClient(mtlsHandler) { BaseAddress = httpsAddress };
var erin = await LoginAsync(mtls.ApiKey, "erin", "device-erin", await MintAsync(mtlsHttp, mtlsKey, "erin"));
using (var withoutCertificate = await SendMintAsync(http, mtlsKey, "erin"))
    Check(withoutCertificate.StatusCode != HttpStatusCode.OK, "mTLS let a mint through without a certificate");
manifest["mtls"] = new JsonObject
{
    ["networkId"] = mtls.Id,
    ["apiKey"] = mtls.ApiKey,
    ["serverKey"] = mtlsKey,
    ["adminToken"] = mtlsAdminToken,
    ["certificateChainPem"] = chainPem,
    ["privateKeyPem"] = clientKey.ExportPkcs8PrivateKeyPem(),
    ["erin"] = erin,
};

// The audit log as this release leaves it: every event's id and kind, to be found unchanged after the upgrade.
await app.Services.GetRequiredService<AuditLog>().FlushAsync();
manifest["audit"] = await ScopedAsync(async services =>
{
    var events = await services.GetRequiredService<GatehouseDb>().AuditEvents.AsNoTracking()
        .OrderBy(e => e.Id).Select(e => new { e.Id, e.Kind, e.Outcome }).ToListAsync();
    return new JsonArray([.. events.Select(e => (JsonNode)new JsonObject { ["id"] = e.Id, ["kind"] = e.Kind, ["outcome"] = e.Outcome })]);
});

await app.StopAsync();
await app.DisposeAsync();
await File.WriteAllTextAsync(manifestPath, manifest.ToJsonString());
return 0;

async Task<T> ScopedAsync<T>(Func<IServiceProvider, Task<T>> work)
{
    await using var scope = app.Services.CreateAsyncScope();
    return await work(scope.ServiceProvider);
}

Task<Network> CreateNetworkAsync(string name, bool secureMode) => ScopedAsync(async services =>
{
    var networks = services.GetRequiredService<NetworkAdministration>();
    var network = await networks.CreateAsync(name, "upgrade-fixture");
    if (secureMode)
        Check(await networks.SetSecureModeAsync(network, true, "upgrade-fixture") is null, "secure mode did not turn on");
    return network;
});

Task<string> GenerateServerKeyAsync(Network network) => ScopedAsync(async services =>
{
    var found = (await services.GetRequiredService<NetworkAdministration>().FindAsync(network.Id))!;
    var (key, error) = await services.GetRequiredService<ServerKeyService>().GenerateAsync(found, "upgrade-fixture");
    Check(error is null, error?.Message);
    return key!;
});

Task<string> GenerateAdminTokenAsync(Network network, string email) => ScopedAsync(async services =>
{
    var admins = services.GetRequiredService<AdminAccounts>();
    var (admin, _, error) = await admins.CreateAsync(email, false, "upgrade-fixture");
    Check(error is null, error);
    await admins.SetMembershipAsync(admin!.Id, network.Id, ConsoleRole.Admin, true, "upgrade-fixture");
    var (token, refusal) = await services.GetRequiredService<AdminTokenService>().GenerateAsync(admin, network.Id, TimeSpan.FromDays(365), false, null);
    Check(refusal is null, refusal);
    return token!;
});

async Task<HttpResponseMessage> SendMintAsync(HttpClient client, string serverKey, string userId)
{
    using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v3/authentication/token?userId={Uri.EscapeDataString(userId)}");
    request.Headers.Add("x-server-key", serverKey);
    return await client.SendAsync(request);
}

async Task<string> MintAsync(HttpClient client, string serverKey, string userId)
{
    using var response = await SendMintAsync(client, serverKey, userId);
    Check(response.StatusCode == HttpStatusCode.OK, $"mint answered {response.StatusCode}");
    return (await response.Content.ReadFromJsonAsync<string>())!;
}

async Task<HttpResponseMessage> PostSessionAsync(string apiKey, string userId, string deviceId, string? authToken)
{
    using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v5/sessions")
    {
        Content = JsonContent.Create(new { userId, deviceId, authToken, deviceInfo = new { kind = "web", model = "upgrade", sdkVersion = "6.35.3" } }),
    };
    request.Headers.Add("x-api-key", apiKey);
    return await http.SendAsync(request);
}

async Task<JsonObject> LoginAsync(string apiKey, string userId, string deviceId, string? authToken = null)
{
    using var response = await PostSessionAsync(apiKey, userId, deviceId, authToken);
    var body = await response.Content.ReadAsStringAsync();
    Check(response.StatusCode == HttpStatusCode.OK, $"login of {userId} answered {response.StatusCode}: {body}");
    return Tokens(JsonNode.Parse(body)!);
}

async Task<JsonObject> RefreshAsync(string apiKey, string refreshToken)
{
    using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v4/sessions/refresh") { Content = JsonContent.Create(new { refreshToken }) };
    request.Headers.Add("x-api-key", apiKey);
    using var response = await http.SendAsync(request);
    var body = await response.Content.ReadAsStringAsync();
    Check(response.StatusCode == HttpStatusCode.OK, $"refresh answered {response.StatusCode}: {body}");
    return Tokens(JsonNode.Parse(body)!);
}

static JsonObject Tokens(JsonNode session) => new()
{
    ["accessToken"] = session["accessToken"]!.GetValue<string>(),
    ["refreshToken"] = session["refreshToken"]!.GetValue<string>(),
};

static void Check(bool condition, string? problem)
{
    if (!condition)
        throw new InvalidOperationException($"Upgrade fixture: {problem}");
}
