using Gatehouse.Server.Admins;
using Microsoft.Playwright;

namespace Gatehouse.Server.Tests.Console;

/// <summary>
/// The real server plus Debian's Chromium driven by Playwright. Each test opens its own browser context
/// (its own cookies), so tests share the browser but never a sign-in.
/// </summary>
public sealed class ConsoleFixture : IAsyncLifetime
{
    private IPlaywright? _playwright;

    public GatehouseServer Server { get; } = new();
    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        // Every test signs in from 127.0.0.1, several admins each, within the same minute: the per-address limit of
        // sign-ins (RateLimitTests and RateLimitSpellingTests prove it) would refuse the suite itself.
        Server.Settings["Gatehouse:RateLimits:ConsoleSignInsPerAddressPerMinute"] = "10000";
        await Server.InitializeAsync();
        _playwright = await Playwright.CreateAsync();
        Browser = await Chromium.LaunchAsync(_playwright);
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright?.Dispose();
        await Server.DisposeAsync();
    }

    /// <param name="bypassCsp">Only for a checker the test injects (axe-core): the console's own pages never need it.</param>
    public async Task<IPage> NewPageAsync(int width = 1280, int height = 900, bool bypassCsp = false)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = Server.BaseAddress.ToString(),
            ViewportSize = new ViewportSize { Width = width, Height = height },
            BypassCSP = bypassCsp,
        });
        return await context.NewPageAsync();
    }

    /// <summary>An admin whose one-time password was already replaced by <paramref name="password"/>.</summary>
    internal async Task<string> CreateAdminAsync(string password, bool superAdmin = false, TestNetwork? network = null,
        ConsoleRole? role = null, bool accessSecureMode = false)
    {
        await using var scope = Server.Services.CreateAsyncScope();
        var admins = scope.ServiceProvider.GetRequiredService<AdminAccounts>();
        var email = $"admin-{Guid.NewGuid():n}@example.com";
        var (admin, oneTime, error) = await admins.CreateAsync(email, superAdmin, "test");
        Assert.Null(error);
        Assert.Null(await admins.ChangePasswordAsync(admin!, oneTime!, password, null));
        if (network is not null && role is not null)
            await admins.SetMembershipAsync(admin!.Id, network.Id, role, accessSecureMode, "test");
        return email;
    }

    public static async Task SignInAsync(IPage page, string email, string password)
    {
        await page.GotoAsync("/console/signin");
        await page.FillAsync("#email", email);
        await page.FillAsync("#password", password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
    }

    /// <summary>
    /// Screenshots land in docs/images when GATEHOUSE_UPDATE_SCREENSHOTS=1 (to refresh the README's pictures),
    /// otherwise in a temporary folder: taken either way, so a page that cannot render fails the test.
    /// </summary>
    public static async Task ScreenshotAsync(IPage page, string name)
    {
        var folder = Environment.GetEnvironmentVariable("GATEHOUSE_UPDATE_SCREENSHOTS") == "1"
            ? Repository.PathOf("docs", "images")
            : Path.Combine(Path.GetTempPath(), "gatehouse-screenshots");
        Directory.CreateDirectory(folder);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(folder, name + ".png"), FullPage = true });
    }
}
