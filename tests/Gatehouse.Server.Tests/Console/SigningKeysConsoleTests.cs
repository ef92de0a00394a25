using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Gatehouse.Server.Admins;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Gatehouse.Server.Tests.Console;

/// <summary>
/// Portal → Signing keys, in Chromium: a super admin rotates, reloads (nothing repeats), retires the old key, and the
/// tokens that key signed are refused. A server of its own: retiring a key ends tokens other classes hold.
/// </summary>
[Trait(Category.Name, Category.Browser)]
public sealed class SigningKeysConsoleTests(ConsoleFixture console) : IClassFixture<ConsoleFixture>
{
    private const string Password = "correct horse battery staple";
    private GatehouseServer Server => console.Server;

    [Fact]
    public async Task A_super_admin_rotates_then_retires_the_old_key_and_the_tokens_it_signed_are_refused()
    {
        var network = await Server.CreateNetworkAsync();
        var accessToken = (await Server.LoginAsync(network, "ada", "device-ada"))["accessToken"]!.GetValue<string>();
        var oldKid = await JwksKidsAsync();
        var email = await console.CreateAdminAsync(Password, superAdmin: true);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);

        await page.GetByRole(AriaRole.Link, new() { Name = "Signing keys" }).ClickAsync();
        var rows = page.Locator("tbody tr");
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(rows.First).ToContainTextAsync("Signs new tokens");
        Server.Clock.Advance(TimeSpan.FromHours(1));
        await page.GetByRole(AriaRole.Link, new() { Name = "Rotate signing key" }).ClickAsync();
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Rotate signing key" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("signs new tokens now");
        await page.ReloadAsync();
        await Expect(rows).ToHaveCountAsync(2);
        await Expect(rows.Nth(1)).ToContainTextAsync("Verifies the tokens it signed, until");
        await ConsoleFixture.ScreenshotAsync(page, "console-signing-keys");

        using (var stillValid = await Server.GetWithBearerAsync("/api/v3/users/me", accessToken))
            Assert.Equal(HttpStatusCode.OK, stillValid.StatusCode);
        await page.GetByRole(AriaRole.Link, new() { Name = $"Retire key {Gatehouse.Server.Console.KeysModel.Abbreviated(Assert.Single(oldKid))}" }).ClickAsync();
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Retire key" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("is retired: every token it signed is refused");
        await Expect(rows.Nth(1)).ToContainTextAsync("its tokens are refused");

        using (var refused = await Server.GetWithBearerAsync("/api/v3/users/me", accessToken))
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.DoesNotContain(oldKid.Single(), await JwksKidsAsync());

        var narrow = await console.NewPageAsync(width: 390, height: 844);
        await ConsoleFixture.SignInAsync(narrow, email, Password);
        await narrow.GotoAsync("/console/keys");
        await Expect(narrow.Locator("tbody tr")).ToHaveCountAsync(2);
        await ConsoleFixture.ScreenshotAsync(narrow, "console-signing-keys-390");
    }

    [Fact]
    public async Task An_admin_who_is_not_a_super_admin_neither_sees_nor_opens_the_page()
    {
        var network = await Server.CreateNetworkAsync();
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: true);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);

        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Signing keys" })).ToHaveCountAsync(0);
        var opened = await page.GotoAsync("/console/keys");
        Assert.Equal(403, opened!.Status);
    }

    private async Task<List<string>> JwksKidsAsync()
    {
        var jwks = await Server.Http.GetFromJsonAsync<JsonNode>("/.well-known/jwks.json");
        return [.. jwks!["keys"]!.AsArray().Select(k => k!["kid"]!.GetValue<string>())];
    }
}
