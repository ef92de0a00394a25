using System.Text.RegularExpressions;
using Gatehouse.Server.Admins;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Gatehouse.Server.Tests.Console;

/// <summary>
/// The audit log as an admin reads it, in Chromium: details as named fields, times to the second in UTC, admins by
/// their email, the whole width of a wide screen, and no sideways scrolling on a phone.
/// </summary>
[Trait(Category.Name, Category.Browser)]
public sealed partial class AuditConsoleTests(ConsoleFixture console) : IClassFixture<ConsoleFixture>
{
    private const string Password = "correct horse battery staple";
    private GatehouseServer Server => console.Server;

    [Fact]
    public async Task The_audit_log_shows_details_as_named_fields_admins_by_email_and_uses_the_whole_width()
    {
        var network = await Server.CreateNetworkAsync(secureMode: true);
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: true);
        var colleague = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Viewer);
        Guid colleagueId;
        await using (var scope = Server.Services.CreateAsyncScope())
            colleagueId = (await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Admins.SingleAsync(a => a.Email == colleague)).Id;
        var page = await console.NewPageAsync(width: 1920, height: 1080);
        await ConsoleFixture.SignInAsync(page, email, Password);
        await page.GotoAsync($"/console/n/{network.Id}/integrations");
        await page.ClickAsync("text=Generate new server key");
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Generate new server key" }).ClickAsync();
        await Expect(page.Locator("#new-server-key")).ToBeVisibleAsync();
        await Server.FlushAuditAsync();
        var audit = $"/console/n/{network.Id}/audit";

        // The key's row: its kind named, its outcome in words, its actor the admin's email, its detail as fields.
        await page.GotoAsync($"{audit}?kind=server_key.generated");
        var row = page.Locator("table.audit tbody tr");
        await Expect(row).ToHaveCountAsync(1);
        await Expect(row).ToContainTextAsync("Server key generated");
        await Expect(row).ToContainTextAsync("server_key.generated");
        await Expect(row).ToContainTextAsync("Success");
        await Expect(row.Locator(".actor-name")).ToHaveTextAsync(email);
        await Expect(row.Locator(".actor-kind")).ToHaveTextAsync("admin");
        await Expect(row).Not.ToContainTextAsync($"admin:{email}");
        var previous = row.Locator("dl div").Filter(new() { Has = page.Locator("dt", new() { HasText = "Previous valid until" }) });
        await Expect(previous.Locator("dd")).ToHaveTextAsync(TimeInUtc());
        var detail = (await row.Locator("td.detail").InnerTextAsync()).Trim();
        Assert.DoesNotContain("previous_valid_until", detail, StringComparison.Ordinal);
        Assert.DoesNotMatch(FractionOrOffset(), detail);
        await Expect(row.Locator("td").First).ToHaveTextAsync(TimeInUtc());

        // The colleague's rights: the admin it names by id, shown by its email.
        await page.GotoAsync($"{audit}?kind=admin.role_changed");
        var changed = page.Locator("table.audit tbody tr").Filter(new() { HasText = colleague });
        await Expect(changed).ToHaveCountAsync(1);
        await Expect(changed.Locator("dl")).ToContainTextAsync("Access Secure Mode");
        await Expect(changed.Locator("dl")).ToContainTextAsync("Viewer");
        await Expect(page.Locator("table.audit")).Not.ToContainTextAsync(colleagueId.ToString());
        await ConsoleFixture.ScreenshotAsync(page, "audit-1920");

        // The whole width of a wide screen: past 1,200 px, and up to the page's margin (a cap of 1,400 px on the page
        // left it 1,344 px wide, ending 300 px short of the right edge).
        await page.GotoAsync(audit);
        var box = await page.Locator("table.audit").BoundingBoxAsync();
        Assert.True(box!.Width > 1200, $"the audit table is {box.Width}px wide on a 1,920px screen");
        Assert.True(box.X + box.Width >= 1920 - 40, $"the audit table ends at {box.X + box.Width}px on a 1,920px screen");

        // On a phone the table scrolls within itself, never the page.
        var phone = await console.NewPageAsync(width: 375, height: 740);
        await ConsoleFixture.SignInAsync(phone, email, Password);
        await phone.GotoAsync(audit);
        await Expect(phone.Locator("table.audit")).ToBeVisibleAsync();
        var width = await phone.EvaluateAsync<int>("document.scrollingElement.scrollWidth");
        Assert.True(width <= 375, $"the audit page is {width}px wide on a 375px screen");
        await ConsoleFixture.ScreenshotAsync(phone, "audit-375");
    }

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")]
    private static partial Regex TimeInUtc();

    [GeneratedRegex(@"\d{2}:\d{2}:\d{2}\.\d|[+-]\d{2}:\d{2}\b|\dT\d")]
    private static partial Regex FractionOrOffset();
}
