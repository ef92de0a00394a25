using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Gatehouse.Server.Admins;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Gatehouse.Server.Tests.Console;

/// <summary>
/// Two-factor sign-in and account states, walked in Chromium against a server of its own (the portal-wide requirement
/// must not reach other classes' admins). Codes come from an RFC 6238 implementation written here, not the server's
/// library, at the server's fake clock.
/// </summary>
[Trait(Category.Name, Category.Browser)]
public sealed class TwoFactorConsoleTests(ConsoleFixture console) : IClassFixture<ConsoleFixture>
{
    private const string Password = "correct horse battery staple";
    private GatehouseServer Server => console.Server;

    [Fact]
    public void The_tests_own_authenticator_gives_the_codes_of_RFC_6238()
    {
        // RFC 6238, appendix B: the SHA-1 key "12345678901234567890" at 59 s and at 1111111109 s (last 6 of 8 digits).
        var key = Encoding.ASCII.GetBytes("12345678901234567890");
        Assert.Equal("287082", Code(key, DateTimeOffset.FromUnixTimeSeconds(59)));
        Assert.Equal("081804", Code(key, DateTimeOffset.FromUnixTimeSeconds(1111111109)));
    }

    [Fact]
    public async Task An_admin_sets_up_an_authenticator_and_signs_in_with_each_code_once_or_with_a_recovery_code_once()
    {
        var email = await console.CreateAdminAsync(Password);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);
        var earlier = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(earlier, email, Password);

        await page.GetByRole(AriaRole.Link, new() { Name = "Two-factor sign-in" }).ClickAsync();
        await Expect(page.Locator("#two-factor")).ToContainTextAsync("Off");
        await page.GetByRole(AriaRole.Button, new() { Name = "Set up two-factor sign-in" }).ClickAsync();
        // The QR code is an SVG drawn on the server that the browser renders; the key beside it is the same secret.
        var qr = page.GetByRole(AriaRole.Img, new() { NameRegex = new Regex("QR code") });
        await Expect(qr).ToBeVisibleAsync();
        Assert.True(await qr.EvaluateAsync<int>("img => img.naturalWidth") > 100);
        var key = (await page.Locator("#manual-key").TextContentAsync())!;
        await ConsoleFixture.ScreenshotAsync(page, "two-factor-setup");
        await page.ReloadAsync();
        Assert.Equal(key, await page.Locator("#manual-key").TextContentAsync());

        // The secret is stored encrypted, never as the key shown.
        await using (var scope = Server.Services.CreateAsyncScope())
        {
            var stored = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Admins.AsNoTracking().SingleAsync(a => a.Email == email);
            Assert.DoesNotContain(key.Replace(" ", "", StringComparison.Ordinal), stored.TwoFactorSecret, StringComparison.OrdinalIgnoreCase);
        }

        // A wrong code, or the right one without the password (a stolen session), turns nothing on.
        await page.FillAsync("#code", "000000" == Code(key) ? "111111" : "000000");
        await page.FillAsync("#confirm-password", Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Turn on two-factor sign-in" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("does not match");
        await page.FillAsync("#code", Code(key));
        await page.FillAsync("#confirm-password", "not the password at all");
        await page.GetByRole(AriaRole.Button, new() { Name = "Turn on two-factor sign-in" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("password is wrong");
        var enrolmentCode = Code(key);
        await page.FillAsync("#code", enrolmentCode);
        await page.FillAsync("#confirm-password", Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Turn on two-factor sign-in" }).ClickAsync();
        var codes = (await page.Locator("#recovery-codes").TextContentAsync())!.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(TwoFactor.RecoveryCodeCount, codes.Length);
        Assert.All(codes, c => Assert.Matches("^[a-z2-7]{4}(-[a-z2-7]{4}){3}$", c));
        await ConsoleFixture.ScreenshotAsync(page, "two-factor-recovery-codes");
        await page.ReloadAsync();
        Assert.DoesNotContain(codes[0], await page.ContentAsync(), StringComparison.Ordinal);
        // A sign-in made with the password alone (a session someone may have taken) ended; this one goes on.
        await earlier.ReloadAsync();
        await Expect(earlier).ToHaveURLAsync(new Regex("/console/signin"));
        await Expect(page.Locator("#recovery-left")).ToContainTextAsync($"{TwoFactor.RecoveryCodeCount} of {TwoFactor.RecoveryCodeCount}");
        await using (var scope = Server.Services.CreateAsyncScope())
        {
            var stored = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().RecoveryCodes.AsNoTracking().Select(c => c.Digest).ToListAsync();
            Assert.DoesNotContain(stored, d => codes.Any(c => d.Contains(c.Replace("-", "", StringComparison.Ordinal), StringComparison.Ordinal)));
        }

        // A password alone no longer opens the console.
        await page.ClickAsync("text=Sign out");
        await ConsoleFixture.SignInAsync(page, email, Password);
        await Expect(page).ToHaveURLAsync(new Regex("/console/signin/code"));
        await page.GotoAsync("/console/networks");
        await Expect(page).ToHaveURLAsync(new Regex("/console/signin\\?"));

        // The code used to turn it on is spent; the next step's code opens the console.
        await ConsoleFixture.SignInAsync(page, email, Password);
        await page.FillAsync("#code", enrolmentCode);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("wrong or was already used");
        Server.Clock.Advance(TimeSpan.FromSeconds(30));
        await page.FillAsync("#code", Code(key));
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page).Not.ToHaveURLAsync(new Regex("/console/signin"));
        await Expect(page.Locator(".who")).ToContainTextAsync(email);

        // A recovery code, once.
        await page.ClickAsync("text=Sign out");
        await ConsoleFixture.SignInAsync(page, email, Password);
        await page.FillAsync("#code", codes[3].ToUpperInvariant());
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.Locator(".who")).ToContainTextAsync(email);
        await page.ClickAsync("text=Sign out");
        await ConsoleFixture.SignInAsync(page, email, Password);
        await page.FillAsync("#code", codes[3]);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("wrong or was already used");

        await Server.FlushAuditAsync();
        var super = await console.CreateAdminAsync(Password, superAdmin: true);
        var network = await Server.CreateNetworkAsync();
        var auditor = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(auditor, super, Password);
        await auditor.GotoAsync($"/console/n/{network.Id}/audit?kind=admin.two_factor_enabled");
        await Expect(auditor.Locator("table.audit")).ToContainTextAsync(email);
        await auditor.GotoAsync($"/console/n/{network.Id}/audit?kind=admin.recovery_code_used");
        await Expect(auditor.Locator("table.audit")).ToContainTextAsync(email);
        await auditor.GotoAsync($"/console/n/{network.Id}/audit?kind=admin.sign_in_refused");
        await Expect(auditor.Locator("table.audit tbody tr").Filter(new() { HasText = email }).Filter(new() { HasText = "wrong_code" })).ToHaveCountAsync(2);
    }

    [Fact]
    public async Task Wrong_codes_count_towards_the_lockout_so_a_known_password_gives_no_more_guesses()
    {
        var email = await console.CreateAdminAsync(Password);
        var key = await EnrolAsync(email);
        var page = await console.NewPageAsync();
        var right = Code(key);

        for (var i = 0; i < 5; i++)
        {
            await ConsoleFixture.SignInAsync(page, email, Password);
            if (!page.Url.Contains("/console/signin/code", StringComparison.Ordinal))
                break;
            await page.FillAsync("#code", right == "000000" ? "999999" : "000000");
            await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        }
        await ConsoleFixture.SignInAsync(page, email, Password);
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("locked");
        await Expect(page).ToHaveURLAsync(new Regex("/console/signin(\\?|$)"));
    }

    [Fact]
    public async Task Required_two_factor_sends_an_admin_without_it_to_set_it_up_and_a_super_admin_resets_a_lost_one()
    {
        var network = await Server.CreateNetworkAsync();
        var admin = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin);
        var super = await console.CreateAdminAsync(Password, superAdmin: true);
        var superKey = await EnrolAsync(super);
        var superPage = await console.NewPageAsync();
        await SignInWithCodeAsync(superPage, super, superKey);
        await superPage.GotoAsync("/console/admins");
        await superPage.GetByRole(AriaRole.Button, new() { Name = "Require for every admin" }).ClickAsync();
        try
        {
            await Expect(superPage.GetByRole(AriaRole.Status)).ToContainTextAsync("Two-factor sign-in is required");
            await Expect(superPage.Locator("#two-factor-policy")).ToContainTextAsync("Required");
            await ConsoleFixture.ScreenshotAsync(superPage, "admins-two-factor");

            // The admin signs in with its password and is sent to set up a second factor before anything else.
            var page = await console.NewPageAsync(width: 390, height: 844);
            await ConsoleFixture.SignInAsync(page, admin, Password);
            await Expect(page).ToHaveURLAsync(new Regex("/console/account/two-factor$"));
            await Expect(page.GetByRole(AriaRole.Note)).ToContainTextAsync("requires two-factor");
            await page.GotoAsync($"/console/n/{network.Id}/dashboard");
            await Expect(page).ToHaveURLAsync(new Regex("/console/account/two-factor$"));
            await page.GetByRole(AriaRole.Button, new() { Name = "Set up two-factor sign-in" }).ClickAsync();
            var overflow = await page.EvaluateAsync<int>("document.documentElement.scrollWidth - window.innerWidth");
            Assert.True(overflow <= 0, $"the set-up page is {overflow}px wider than a 390px screen");
            await ConsoleFixture.ScreenshotAsync(page, "two-factor-setup-phone");
            var key = (await page.Locator("#manual-key").TextContentAsync())!;
            await page.FillAsync("#code", Code(key));
            await page.FillAsync("#confirm-password", Password);
            await page.GetByRole(AriaRole.Button, new() { Name = "Turn on two-factor sign-in" }).ClickAsync();
            await page.GetByRole(AriaRole.Link, new() { Name = "Done" }).ClickAsync();
            await page.GotoAsync($"/console/n/{network.Id}/dashboard");
            await Expect(page).ToHaveURLAsync(new Regex("/dashboard$"));

            // While required, it cannot be turned off: the control says why, and a forged post changes nothing.
            await page.GotoAsync("/console/account/two-factor");
            await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Turn off" })).ToBeDisabledAsync();
            await Expect(page.Locator("#off-why")).ToContainTextAsync("requires");

            // The admin loses its phone: a super admin resets it, after a confirmation; the admin's sign-in ends and
            // it must set up a new authenticator at its next sign-in.
            await superPage.ReloadAsync();
            await superPage.GetByRole(AriaRole.Link, new() { Name = $"Reset the two-factor sign-in of {admin}" }).ClickAsync();
            await Expect(superPage.GetByRole(AriaRole.Alertdialog)).ToContainTextAsync("lost its authenticator");
            await superPage.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Reset two-factor" }).ClickAsync();
            await Expect(superPage.GetByRole(AriaRole.Status)).ToContainTextAsync("sets up a new authenticator");
            await page.ReloadAsync();
            await Expect(page).ToHaveURLAsync(new Regex("/console/signin"));
            await ConsoleFixture.SignInAsync(page, admin, Password);
            await Expect(page).ToHaveURLAsync(new Regex("/console/account/two-factor$"));
        }
        finally
        {
            await using var scope = Server.Services.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<TwoFactor>().SetRequiredAsync(false, "test", null);
        }
        await Server.FlushAuditAsync();
        await superPage.GotoAsync($"/console/n/{network.Id}/audit?kind=portal.two_factor_required_changed");
        await Expect(superPage.Locator("table.audit")).ToContainTextAsync(super);
        await superPage.GotoAsync($"/console/n/{network.Id}/audit?kind=admin.two_factor_disabled");
        await Expect(superPage.Locator("table.audit")).ToContainTextAsync(admin);
    }

    [Fact]
    public async Task A_disabled_account_is_signed_out_cannot_sign_in_and_loses_its_admin_tokens_for_good()
    {
        var network = await Server.CreateNetworkAsync();
        var holderEmail = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: true);
        Admin holder;
        await using (var scope = Server.Services.CreateAsyncScope())
            holder = (await scope.ServiceProvider.GetRequiredService<AdminAccounts>().FindByEmailAsync(holderEmail))!;
        var (token, tokenError) = await Server.GenerateAdminTokenAsync(holder, network);
        Assert.Null(tokenError);
        using (var before = await Server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", token!))
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, holder.Email, Password);
        await Expect(page.Locator(".who")).ToContainTextAsync(holder.Email);

        var super = await console.CreateAdminAsync(Password, superAdmin: true);
        var superPage = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(superPage, super, Password);
        await superPage.GotoAsync("/console/admins");
        // Not offered for oneself.
        await Expect(superPage.GetByRole(AriaRole.Link, new() { Name = $"Disable the account of {super}" })).ToHaveCountAsync(0);
        await superPage.GetByRole(AriaRole.Link, new() { Name = $"Disable the account of {holder.Email}" }).ClickAsync();
        await Expect(superPage.GetByRole(AriaRole.Alertdialog)).ToContainTextAsync("revoked for good");
        await superPage.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Disable account" }).ClickAsync();
        await Expect(superPage.GetByRole(AriaRole.Status)).ToContainTextAsync("is disabled");
        await Expect(superPage.Locator("#admins tr").Filter(new() { HasText = holder.Email })).ToContainTextAsync("Disabled since");
        await superPage.ReloadAsync();
        await Expect(superPage.Locator("#admins tr").Filter(new() { HasText = holder.Email })).ToContainTextAsync("Disabled since");

        await page.ReloadAsync();
        await Expect(page).ToHaveURLAsync(new Regex("/console/signin"));
        await ConsoleFixture.SignInAsync(page, holder.Email, "a wrong password here");
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("email or password is wrong");
        await ConsoleFixture.SignInAsync(page, holder.Email, Password);
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("disabled");
        using (var after = await Server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", token!))
            Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        await using (var scope = Server.Services.CreateAsyncScope())
            holder = (await scope.ServiceProvider.GetRequiredService<AdminAccounts>().FindByEmailAsync(holderEmail))!;
        var (_, whileDisabled) = await Server.GenerateAdminTokenAsync(holder, network);
        Assert.Contains("active admin", whileDisabled, StringComparison.Ordinal);

        await superPage.GetByRole(AriaRole.Button, new() { Name = $"Enable the account of {holder.Email}" }).ClickAsync();
        await Expect(superPage.GetByRole(AriaRole.Status)).ToContainTextAsync("can sign in again");
        await ConsoleFixture.SignInAsync(page, holder.Email, Password);
        await Expect(page.Locator(".who")).ToContainTextAsync(holder.Email);
        using (var enabled = await Server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", token!))
            Assert.Equal(HttpStatusCode.Unauthorized, enabled.StatusCode);
        await using (var scope = Server.Services.CreateAsyncScope())
            holder = (await scope.ServiceProvider.GetRequiredService<AdminAccounts>().FindByEmailAsync(holderEmail))!;
        var (renewed, renewError) = await Server.GenerateAdminTokenAsync(holder, network);
        Assert.Null(renewError);
        using (var fresh = await Server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", renewed!))
            Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);

        await Server.FlushAuditAsync();
        await superPage.GotoAsync($"/console/n/{network.Id}/audit?kind=admin.disabled");
        await Expect(superPage.Locator("table.audit")).ToContainTextAsync(holder.Email);
    }

    /// <summary>Turns two-factor on for an account as the console does, and returns the authenticator's key.</summary>
    private async Task<string> EnrolAsync(string email)
    {
        await using var scope = Server.Services.CreateAsyncScope();
        var admin = (await scope.ServiceProvider.GetRequiredService<AdminAccounts>().FindByEmailAsync(email))!;
        var twoFactor = scope.ServiceProvider.GetRequiredService<TwoFactor>();
        var key = (await twoFactor.EnrolmentAsync(admin))!.Secret;
        var (codes, error) = await twoFactor.ConfirmAsync(admin, Code(key), null);
        Assert.Null(error);
        Assert.NotNull(codes);
        // The enrolment spent this step's code; sign-ins use the next one.
        Server.Clock.Advance(TimeSpan.FromSeconds(30));
        return key;
    }

    private async Task SignInWithCodeAsync(IPage page, string email, string key)
    {
        await ConsoleFixture.SignInAsync(page, email, Password);
        await page.FillAsync("#code", Code(key));
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.Locator(".who")).ToContainTextAsync(email);
        Server.Clock.Advance(TimeSpan.FromSeconds(30));
    }

    private string Code(string base32Key) => Code(Base32(base32Key), Server.Clock.GetUtcNow());

    /// <summary>RFC 6238 with HMAC-SHA1, 30-second steps, 6 digits (RFC 4226's dynamic truncation).</summary>
    private static string Code(byte[] key, DateTimeOffset at)
    {
        Span<byte> counter = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(counter, at.ToUnixTimeSeconds() / 30);
#pragma warning disable CA5350 // RFC 6238's default, and what every authenticator app computes.
        var hash = HMACSHA1.HashData(key, counter);
#pragma warning restore CA5350
        var offset = hash[^1] & 0x0f;
        var binary = BinaryPrimitives.ReadInt32BigEndian(hash.AsSpan(offset)) & 0x7fffffff;
        return (binary % 1_000_000).ToString("D6", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>RFC 4648 base32, as authenticator apps read the key (spaces ignored).</summary>
    private static byte[] Base32(string text)
    {
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        var bits = 0;
        var buffer = 0;
        var bytes = new List<byte>();
        foreach (var c in text.ToUpperInvariant().Where(c => c is not (' ' or '=')))
        {
            buffer = (buffer << 5) | Alphabet.IndexOf(c, StringComparison.Ordinal);
            bits += 5;
            if (bits >= 8)
            {
                bytes.Add((byte)(buffer >> (bits - 8)));
                bits -= 8;
            }
        }
        return [.. bytes];
    }
}
