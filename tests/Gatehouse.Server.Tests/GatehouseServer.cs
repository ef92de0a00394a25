using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Networks;
using Gatehouse.Server.ServerKeys;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Time.Testing;

namespace Gatehouse.Server.Tests;

public sealed record TestNetwork(string Id, string ApiKey);

/// <summary>
/// The real server, in this process, on a real port of 127.0.0.1 and a real SQLite file in a fresh folder.
/// Only the clock is ours to move. One per test class; each test makes its own networks and users.
/// </summary>
public class GatehouseServer : IAsyncLifetime
{
    private readonly StringBuilder _console = new();
    private WebApplication? _app;

    public string DataDirectory { get; init; } = NewDataDirectory();

    public static string NewDataDirectory() => Path.Combine(Path.GetTempPath(), "gatehouse-tests", Guid.NewGuid().ToString("n"));
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);
    public HttpClient Http { get; private set; } = null!;
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>The HTTPS endpoint of the same server (its self-signed certificate; clients pin it).</summary>
    public Uri HttpsAddress { get; private set; } = null!;
    public IServiceProvider Services => _app!.Services;

    /// <summary>What the first start printed to the terminal.</summary>
    public string ConsoleOutput => _console.ToString();

    public virtual bool UsesSqlite => true;

    /// <summary>When set, every response body the test client receives is kept here (to search them for secrets).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string>? ResponseBodies { get; init; }

    /// <summary>A last word on the host for a test that needs one (a log sink, say).</summary>
    public Action<WebApplicationBuilder>? Configure { get; init; }

    /// <summary>Extra settings for a test class that needs them (keys as in appsettings, "Gatehouse:…").</summary>
    public Dictionary<string, string?> Settings { get; } = [];

    public virtual async Task InitializeAsync()
    {
        if (Settings.GetValueOrDefault("Gatehouse:Database:Provider") == "PostgreSQL")
            Settings.TryAdd("Gatehouse:KeyEncryption:Key", PostgresServer.KeyEncryptionKey);
        _app = GatehouseApp.Build([], builder =>
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0;https://127.0.0.1:0");
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>(Settings)
            {
                ["Gatehouse:DataDirectory"] = DataDirectory,
            });
            builder.Services.Replace(ServiceDescriptor.Singleton<TimeProvider>(Clock));
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            Configure?.Invoke(builder);
        });
        await using (var console = new StringWriter(_console))
            await GatehouseApp.InitializeAsync(_app, console);
        await _app.StartAsync();
        var addresses = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        BaseAddress = new Uri(addresses.Single(a => a.StartsWith("http://", StringComparison.Ordinal)));
        HttpsAddress = new Uri(addresses.Single(a => a.StartsWith("https://", StringComparison.Ordinal)));
        Http = ResponseBodies is null
            ? new HttpClient { BaseAddress = BaseAddress }
            : new HttpClient(new RecordingHandler(ResponseBodies)) { BaseAddress = BaseAddress };
    }

    public virtual async Task DisposeAsync()
    {
        await StopAsync();
        DeleteDataDirectory(DataDirectory);
    }

    public static void DeleteDataDirectory(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind harms nothing; failing the test over it would.
        }
    }

    /// <summary>
    /// A client of the HTTPS endpoint that trusts exactly this server's certificate and, when given, presents
    /// a client certificate: a real TLS handshake on 127.0.0.1.
    /// </summary>
    public HttpClient HttpsClient(System.Security.Cryptography.X509Certificates.X509Certificate2? clientCertificate = null)
    {
        var pinned = Services.GetRequiredService<Certificates.ServerCertificate>().Certificate.RawData;
        var handler = new HttpClientHandler
        {
            ClientCertificateOptions = ClientCertificateOption.Manual,
            ServerCertificateCustomValidationCallback = (_, certificate, _, _) => certificate is not null && certificate.RawData.AsSpan().SequenceEqual(pinned),
        };
        if (clientCertificate is not null)
            handler.ClientCertificates.Add(clientCertificate);
        return new HttpClient(handler, disposeHandler: true) { BaseAddress = HttpsAddress };
    }

    /// <summary>Stops the server but keeps its data, as a process exit would.</summary>
    public async Task StopAsync()
    {
        Http?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    }

    public async Task<TestNetwork> CreateNetworkAsync(bool secureMode = false)
    {
        await using var scope = Services.CreateAsyncScope();
        var admin = scope.ServiceProvider.GetRequiredService<NetworkAdministration>();
        var network = await admin.CreateAsync($"test {Guid.NewGuid():n}", "test");
        if (secureMode)
            await admin.SetSecureModeAsync(network, true, "test");
        return new TestNetwork(network.Id, network.ApiKey);
    }

    /// <summary>Allows (or refuses) visitors' or bots' sessions, as the console's switch does.</summary>
    internal async Task SetAnonymousModeAsync(TestNetwork network, Users.UserKind kind, bool on)
    {
        await using var scope = Services.CreateAsyncScope();
        var admin = scope.ServiceProvider.GetRequiredService<NetworkAdministration>();
        await admin.SetAnonymousModeAsync((await admin.FindAsync(network.Id))!, kind, on, "test");
    }

    public async Task<string> GenerateVisitorSecretAsync(TestNetwork network)
    {
        await using var scope = Services.CreateAsyncScope();
        var found = await scope.ServiceProvider.GetRequiredService<NetworkAdministration>().FindAsync(network.Id);
        return await scope.ServiceProvider.GetRequiredService<Visitors.VisitorSecrets>().GenerateAsync(found!, "test");
    }

    public Task<HttpResponseMessage> CreateVisitorSessionAsync(TestNetwork network, string deviceId, string kind = "visitor",
        string? authSignature = null, string? authSignatureExpiresAt = null) =>
        PostJsonAsync($"/api/v5/sessions/{kind}", new { deviceId, authSignature, authSignatureExpiresAt, deviceInfo = new { kind = "ios", model = "test", sdkVersion = "7.20.0" } },
            network.ApiKey);

    public async Task SetSecureModeAsync(TestNetwork network, bool on)
    {
        await using var scope = Services.CreateAsyncScope();
        var admin = scope.ServiceProvider.GetRequiredService<NetworkAdministration>();
        await admin.SetSecureModeAsync((await admin.FindAsync(network.Id))!, on, "test");
    }

    public async Task<string> GenerateServerKeyAsync(TestNetwork network)
    {
        await using var scope = Services.CreateAsyncScope();
        var found = await scope.ServiceProvider.GetRequiredService<NetworkAdministration>().FindAsync(network.Id);
        var (key, error) = await scope.ServiceProvider.GetRequiredService<ServerKeyService>().GenerateAsync(found!, "test");
        Assert.Null(error);
        return key!;
    }

    /// <summary>A console admin with a role in the network, as the console would create it.</summary>
    internal async Task<Admins.Admin> CreateAdminAsync(TestNetwork? network = null, Admins.ConsoleRole role = Admins.ConsoleRole.Admin,
        bool accessSecureMode = true, bool superAdmin = false)
    {
        await using var scope = Services.CreateAsyncScope();
        var admins = scope.ServiceProvider.GetRequiredService<Admins.AdminAccounts>();
        var (admin, _, error) = await admins.CreateAsync($"admin-{Guid.NewGuid():n}@example.com", superAdmin, "test");
        Assert.Null(error);
        if (network is not null)
            await admins.SetMembershipAsync(admin!.Id, network.Id, role, accessSecureMode, "test");
        return admin!;
    }

    internal async Task<(string? Token, string? Error)> GenerateAdminTokenAsync(Admins.Admin admin, TestNetwork network, TimeSpan? lifetime = null,
        bool revokePrevious = false)
    {
        await using var scope = Services.CreateAsyncScope();
        var (token, error) = await scope.ServiceProvider.GetRequiredService<AdminTokens.AdminTokenService>()
            .GenerateAsync(admin, network.Id, lifetime ?? TimeSpan.FromDays(365), revokePrevious, null);
        return (token, error?.Message);
    }

    /// <summary>
    /// What the console's Security tab does with a CSR: issues the certificate and answers what "Download" gives (the
    /// certificate followed by the authority's); with <paramref name="mtlsOn"/>, turns mTLS on for the network.
    /// </summary>
    public async Task<string> IssueClientCertificateAsync(TestNetwork network, string name, string csrPem, bool mtlsOn = true)
    {
        await using var scope = Services.CreateAsyncScope();
        var found = (await scope.ServiceProvider.GetRequiredService<NetworkAdministration>().FindAsync(network.Id))!;
        var certificates = scope.ServiceProvider.GetRequiredService<Certificates.ClientCertificates>();
        var (issued, error) = await certificates.CreateAsync(found, name, csrPem, "test");
        Assert.Null(error);
        if (mtlsOn)
            Assert.Null(await certificates.SetMtlsAsync(found, true, "test"));
        return Services.GetRequiredService<Certificates.CertificateAuthority>().ChainPem(issued!);
    }

    /// <summary>Trusts exactly this server's self-signed HTTPS certificate, as a customer pins it.</summary>
    public bool IsThisServersCertificate(System.Security.Cryptography.X509Certificates.X509Certificate? presented) =>
        presented is not null && presented.GetRawCertData().AsSpan().SequenceEqual(Services.GetRequiredService<Certificates.ServerCertificate>().Certificate.RawData);

    public async Task<HttpResponseMessage> AdminAsync(HttpMethod method, string path, string adminToken, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Add("x-admin-token", adminToken);
        if (body is not null)
            request.Content = JsonContent.Create(body);
        return await Http.SendAsync(request);
    }

    public Task FlushAuditAsync() => Services.GetRequiredService<AuditLog>().FlushAsync();

    // ---- the API as a client calls it ----

    public async Task<HttpResponseMessage> MintV3Async(string serverKey, string userId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v3/authentication/token?userId={Uri.EscapeDataString(userId)}");
        request.Headers.Add("x-server-key", serverKey);
        return await Http.SendAsync(request);
    }

    public async Task<string> MintAsync(string serverKey, string userId)
    {
        using var response = await MintV3Async(serverKey, userId);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<string>())!;
    }

    public async Task<HttpResponseMessage> PostJsonAsync(string path, object body, string? apiKey = null, string? serverKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        if (apiKey is not null)
            request.Headers.Add("x-api-key", apiKey);
        if (serverKey is not null)
            request.Headers.Add("x-server-key", serverKey);
        return await Http.SendAsync(request);
    }

    public Task<HttpResponseMessage> CreateSessionAsync(TestNetwork network, string userId, string deviceId, string? authToken = null, string? displayName = null) =>
        PostJsonAsync("/api/v5/sessions", new { userId, deviceId, displayName, authToken, deviceInfo = new { kind = "web", model = "test", sdkVersion = "6.35.3" } }, network.ApiKey);

    /// <summary>A session that must succeed; returns its body.</summary>
    public async Task<JsonNode> LoginAsync(TestNetwork network, string userId, string deviceId, string? authToken = null, string? displayName = null)
    {
        using var response = await CreateSessionAsync(network, userId, deviceId, authToken, displayName);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToJsonString());
        return body;
    }

    public async Task<HttpResponseMessage> GetWithBearerAsync(string path, string accessToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new("Bearer", accessToken);
        return await Http.SendAsync(request);
    }

    public async Task<HttpResponseMessage> LogoutAsync(string accessToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, "/api/v4/sessions");
        request.Headers.Authorization = new("Bearer", accessToken);
        return await Http.SendAsync(request);
    }

    public Task<HttpResponseMessage> RefreshAsync(TestNetwork network, string refreshToken) =>
        PostJsonAsync("/api/v4/sessions/refresh", new { refreshToken }, network.ApiKey);
}

/// <summary>Keeps a copy of every response body that passes through.</summary>
internal sealed class RecordingHandler(System.Collections.Concurrent.ConcurrentQueue<string> bodies) : DelegatingHandler(new HttpClientHandler())
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken);
        await response.Content.LoadIntoBufferAsync(cancellationToken);
        bodies.Enqueue(await response.Content.ReadAsStringAsync(cancellationToken));
        return response;
    }
}
