using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.FileProviders;
using System.Text.Json;
using Microsoft.Playwright;

namespace Gatehouse.Server.Tests.WebSdk;

/// <summary>
/// Gatehouse, Chromium, and a second web server on another port of 127.0.0.1 that serves the test page and the
/// official SDK's UMD build (installed from npm by ./test.sh into tests/websdk). The page's origin is not the
/// API's, so every SDK call is cross-origin, preflights included, as in a customer's web app.
/// </summary>
public sealed class WebSdkFixture : IAsyncLifetime
{
    private IPlaywright? _playwright;
    private WebApplication? _pageServer;

    public GatehouseServer Server { get; } = new();
    public IBrowser Browser { get; private set; } = null!;
    public Uri PageOrigin { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var sdk = Repository.PathOf("tests", "websdk", "node_modules", "@amityco", "ts-sdk", "dist");
        if (!File.Exists(Path.Combine(sdk, "index.umd.js")))
            throw new InvalidOperationException($"The web SDK is not installed in {sdk}: run `npm ci --prefix tests/websdk` (./test.sh does).");

        await Server.InitializeAsync();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        _pageServer = builder.Build();
        _pageServer.UseFileServer(new FileServerOptions { FileProvider = new PhysicalFileProvider(Repository.PathOf("tests", "websdk", "page")) });
        _pageServer.UseStaticFiles(new StaticFileOptions { FileProvider = new PhysicalFileProvider(sdk), RequestPath = new PathString("/sdk") });
        await _pageServer.StartAsync();
        PageOrigin = new Uri(_pageServer.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());

        _playwright = await Playwright.CreateAsync();
        Browser = await Chromium.LaunchAsync(_playwright);
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright?.Dispose();
        if (_pageServer is not null)
            await _pageServer.DisposeAsync();
        await Server.DisposeAsync();
    }

    /// <summary>A fresh browser profile (its own local storage, so its own SDK device id) with the page loaded.</summary>
    public async Task<SdkPage> OpenAsync(TestNetwork network, IBrowserContext? sharedContext = null, bool controlClock = false)
    {
        var context = sharedContext ?? await Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        if (controlClock)
            await page.Clock.InstallAsync();
        await page.GotoAsync(PageOrigin.ToString());
        var apiUrl = Server.BaseAddress.ToString().TrimEnd('/');
        await page.EvaluateAsync("([key, url]) => harness.create(key, url)", new[] { network.ApiKey, apiUrl });
        return new SdkPage(page);
    }
}

/// <summary>The test page, driven through the SDK calls an app makes.</summary>
public sealed class SdkPage(IPage page)
{
    public IPage Page => page;

    private static readonly System.Text.Json.JsonSerializerOptions Json = new(System.Text.Json.JsonSerializerDefaults.Web);

    public Task<SdkResult> LoginAsync(string userId, string? displayName = null, string? authToken = null, string? deviceId = null) =>
        ResultAsync("([u, n, t, d]) => harness.login(u, n, t, d)", new[] { userId, displayName, authToken, deviceId });

    public Task<SdkResult> MeAsync() => ResultAsync("() => harness.me()");

    public Task<SdkResult> SecureLogoutAsync() => ResultAsync("() => harness.secureLogout()");

    private async Task<SdkResult> ResultAsync(string script, object? argument = null) =>
        (await page.EvaluateAsync<System.Text.Json.JsonElement>(script, argument)).Deserialize<SdkResult>(Json)!;

    public Task<string> StateAsync() => page.EvaluateAsync<string>("() => harness.state()");

    public Task<string[]> StatesAsync() => page.EvaluateAsync<string[]>("() => harness.states()");

    public Task<string?> AccessTokenAsync() => page.EvaluateAsync<string?>("() => harness.accessToken()");

    public Task<int> RenewalsAsync() => page.EvaluateAsync<int>("() => harness.renewals()");
}

public sealed record SdkError(int? Code, string Message);

public sealed record SdkResult(bool Ok, string State, SdkError? Error, string? UserId, string? DisplayName);
