using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Gatehouse.Server.Admins;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Gatehouse.Server.Tests.Console;

[Trait(Category.Name, Category.Browser)]
public sealed partial class ConsoleTests(ConsoleFixture console) : IClassFixture<ConsoleFixture>
{
    private const string Password = "correct horse battery staple";
    private GatehouseServer Server => console.Server;

    [Fact]
    public async Task The_bootstrap_admin_signs_in_with_the_printed_password_and_must_change_it_first()
    {
        var oneTime = OneTimePasswordRegex().Match(Server.ConsoleOutput).Groups[1].Value;
        var page = await console.NewPageAsync();

        await ConsoleFixture.SignInAsync(page, "admin@gatehouse.local", oneTime);
        await Expect(page).ToHaveURLAsync(new Regex("/console/account/password$"));
        await Expect(page.GetByRole(AriaRole.Note)).ToContainTextAsync("one-time password");

        await page.GotoAsync("/console/networks");
        await Expect(page).ToHaveURLAsync(new Regex("/console/account/password$"));

        await page.FillAsync("#current", oneTime);
        await page.FillAsync("#replacement", "short");
        await page.EvaluateAsync("document.querySelector('#replacement').removeAttribute('minlength')");
        await page.GetByRole(AriaRole.Button, new() { Name = "Change password" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("12 to 128 characters");

        await page.FillAsync("#current", oneTime);
        await page.FillAsync("#replacement", Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Change password" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Your password was changed.");
        await page.GotoAsync("/console/networks");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Networks", Exact = true })).ToBeVisibleAsync();

        await page.ClickAsync("text=Sign out");
        await Expect(page).ToHaveURLAsync(new Regex("/console/signin"));
        await ConsoleFixture.SignInAsync(page, "admin@gatehouse.local", oneTime);
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("email or password is wrong");
        await ConsoleFixture.SignInAsync(page, "admin@gatehouse.local", Password);
        await Expect(page).Not.ToHaveURLAsync(new Regex("/console/(signin|account/password)"));
    }

    [Fact]
    public async Task Repeated_wrong_passwords_lock_the_account_until_the_lockout_ends()
    {
        var email = await console.CreateAdminAsync(Password);
        var page = await console.NewPageAsync();

        for (var i = 0; i < 5; i++)
            await ConsoleFixture.SignInAsync(page, email, "wrong password " + i);
        await ConsoleFixture.SignInAsync(page, email, Password);
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("locked");

        Server.Clock.Advance(TimeSpan.FromMinutes(15));
        await ConsoleFixture.SignInAsync(page, email, Password);
        await Expect(page).Not.ToHaveURLAsync(new Regex("/console/signin"));
    }

    [Fact]
    public async Task A_viewer_sees_everything_read_only_and_a_forged_post_is_refused()
    {
        var network = await Server.CreateNetworkAsync();
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Viewer);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);

        await page.GotoAsync($"/console/n/{network.Id}/integrations");
        await Expect(page.GetByText("You have read-only access to this network.")).ToBeVisibleAsync();
        await Expect(page.GetByText("Regenerate API key")).ToHaveCountAsync(0);
        await Expect(page.GetByText("Turn secure mode on")).ToHaveCountAsync(0);
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Save chat settings" })).ToBeDisabledAsync();

        var forged = await ForgedPostAsync(page, $"/console/n/{network.Id}/integrations?handler=SecureMode", new() { ["on"] = "true" });
        var forgedKey = await ForgedPostAsync(page, $"/console/n/{network.Id}/integrations?handler=RegenerateApiKey", []);

        var withoutToken = await page.Context.APIRequest.PostAsync($"/console/n/{network.Id}/integrations?handler=SecureMode",
            new() { Form = page.Context.APIRequest.CreateFormData().Set("on", "true"), MaxRedirects = 0 });

        Assert.Equal(403, forged);
        Assert.Equal(403, forgedKey);
        Assert.Equal(400, withoutToken.Status);
        await using var scope = Server.Services.CreateAsyncScope();
        var stored = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Networks.SingleAsync(n => n.Id == network.Id);
        Assert.False(stored.SecureMode);
        Assert.Equal(network.ApiKey, stored.ApiKey);
    }

    [Fact]
    public async Task An_admin_cannot_raise_its_own_rights_or_grant_a_permission_it_lacks()
    {
        var network = await Server.CreateNetworkAsync(secureMode: true);
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: false);
        var colleague = await console.CreateAdminAsync("another long password", network: network, role: ConsoleRole.Viewer);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);
        await page.GotoAsync($"/console/n/{network.Id}/admin-users");
        Guid IdOf(string address)
        {
            using var scope = Server.Services.CreateScope();
            return scope.ServiceProvider.GetRequiredService<GatehouseDb>().Admins.Single(a => a.Email == address).Id;
        }

        var selfGrant = await ForgedPostAsync(page, $"/console/n/{network.Id}/admin-users?handler=UpdateAdmin",
            new() { ["adminId"] = IdOf(email).ToString(), ["role"] = "Admin", ["accessSecureMode"] = "true" });
        var grantToOther = await ForgedPostAsync(page, $"/console/n/{network.Id}/admin-users?handler=UpdateAdmin",
            new() { ["adminId"] = IdOf(colleague).ToString(), ["role"] = "Admin", ["accessSecureMode"] = "true" });

        Assert.Equal(403, selfGrant);
        Assert.Equal(403, grantToOther);
        await using var check = Server.Services.CreateAsyncScope();
        var memberships = check.ServiceProvider.GetRequiredService<GatehouseDb>().AdminMemberships.Where(m => m.NetworkId == network.Id);
        Assert.False(await memberships.AnyAsync(m => m.CanAccessSecureMode));
    }

    [Fact]
    public async Task Without_access_secure_mode_an_admin_changes_no_security_switch_and_no_admin_who_holds_it()
    {
        var network = await Server.CreateNetworkAsync(secureMode: true);
        await Server.GenerateServerKeyAsync(network);
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: false);
        var holder = await console.CreateAdminAsync("another long password", network: network, role: ConsoleRole.Admin, accessSecureMode: true);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);
        Guid IdOf(string address)
        {
            using var scope = Server.Services.CreateScope();
            return scope.ServiceProvider.GetRequiredService<GatehouseDb>().Admins.Single(a => a.Email == address).Id;
        }

        await page.GotoAsync($"/console/n/{network.Id}/integrations");
        await Expect(page.Locator("#secure-mode-permission")).ToContainTextAsync("needs the Access Secure Mode permission");
        await Expect(page.GetByText("Turn secure mode off")).ToHaveCountAsync(0);
        await Expect(page.Locator("#single-use")).ToBeDisabledAsync();
        await page.GotoAsync($"/console/n/{network.Id}/security");
        await Expect(page.GetByText("Turn mTLS on")).ToHaveCountAsync(0);
        await Expect(page.Locator("#certificates-permission")).ToHaveTextAsync("Creating certificates and changing mTLS need the Access Secure Mode permission.");
        await page.GotoAsync($"/console/n/{network.Id}/admin-users");
        await Expect(page.Locator("tr").Filter(new() { HasText = holder }).Locator("form")).ToHaveCountAsync(0);
        var secureModeOff = await ForgedPostAsync(page, $"/console/n/{network.Id}/integrations?handler=SecureMode", new() { ["on"] = "false" });
        var mtlsOn = await ForgedPostAsync(page, $"/console/n/{network.Id}/security?handler=Mtls", new() { ["on"] = "true" });
        var demote = await ForgedPostAsync(page, $"/console/n/{network.Id}/admin-users?handler=UpdateAdmin",
            new() { ["adminId"] = IdOf(holder).ToString(), ["role"] = "Viewer", ["accessSecureMode"] = "false" });
        var disable = await ForgedPostAsync(page, $"/console/n/{network.Id}/admin-users?handler=UpdateAdmin",
            new() { ["adminId"] = IdOf(holder).ToString(), ["role"] = "Admin", ["accessSecureMode"] = "false", ["disabled"] = "true" });

        Assert.Equal([403, 403, 403, 403], new[] { secureModeOff, mtlsOn, demote, disable });
        await using var check = Server.Services.CreateAsyncScope();
        var db = check.ServiceProvider.GetRequiredService<GatehouseDb>();
        var stored = await db.Networks.SingleAsync(n => n.Id == network.Id);
        Assert.True(stored.SecureMode);
        Assert.False(stored.MtlsEnabled);
        var holderId = IdOf(holder);
        var held = await db.AdminMemberships.SingleAsync(m => m.NetworkId == network.Id && m.AdminId == holderId);
        Assert.Equal((ConsoleRole.Admin, true, false), (held.Role, held.CanAccessSecureMode, held.Disabled));

        // The admin's own refused actions are not attempts on the network: the dashboard counts them apart.
        await Server.FlushAuditAsync();
        await page.GotoAsync($"/console/n/{network.Id}/dashboard");
        var unauthorized = page.Locator(".metric").Filter(new() { HasText = "Unauthorized attempts" });
        await Expect(unauthorized.Locator(".metric-value")).ToHaveTextAsync("0");
        await Expect(unauthorized).ToContainTextAsync(new Regex("[1-9][0-9]* console action"));
    }

    [Fact]
    public async Task Turning_secure_mode_on_says_how_many_sessions_end_and_can_keep_them()
    {
        var network = await Server.CreateNetworkAsync();
        await Server.LoginAsync(network, "ann", "device-a");
        var bob = await Server.LoginAsync(network, "bob", "device-b");
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: true);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);

        await page.GotoAsync($"/console/n/{network.Id}/integrations");
        await page.ClickAsync("text=Turn secure mode on");
        await Expect(page.Locator("#confirm-sessions")).ToContainTextAsync("2 sessions opened without an auth token are live");
        await Expect(page.Locator("#confirm-no-key")).ToBeVisibleAsync();
        await ConsoleFixture.ScreenshotAsync(page, "secure-mode-confirm");
        await page.CheckAsync("input[name=keepSessions]");
        await page.Locator("dialog").GetByRole(AriaRole.Button, new() { Name = "Turn secure mode on" }).ClickAsync();

        await Expect(page.Locator("#secure-mode-state")).ToHaveTextAsync("on");
        await Expect(page.Locator("[role=status]")).ToContainTextAsync("2 sessions opened without one were kept");
        await page.ReloadAsync();
        await Expect(page.Locator("#secure-mode-state")).ToHaveTextAsync("on");
        using var me = await Server.GetWithBearerAsync("/api/v3/users/me", bob["accessToken"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);

        // The single-use switch beside it: saved, and shown as saved after a reload.
        await page.CheckAsync("#single-use");
        await page.Locator("form").Filter(new() { Has = page.Locator("#single-use") }).GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Expect(page.Locator("[role=status]")).ToContainTextAsync("Each auth token now opens one session only.");
        await page.ReloadAsync();
        await Expect(page.Locator("#single-use")).ToBeCheckedAsync();
    }

    [Fact]
    public async Task An_admin_only_requests_people_and_is_answered_alike_whether_or_not_they_have_an_account()
    {
        var network = await Server.CreateNetworkAsync();
        var elsewhere = await Server.CreateNetworkAsync();
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: true);
        var existing = await console.CreateAdminAsync("another long password", network: elsewhere, role: ConsoleRole.Admin);
        var newcomer = $"new-{Guid.NewGuid():n}@example.com";
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);
        var adminUsers = $"/console/n/{network.Id}/admin-users";

        async Task<string> RequestAsync(string address)
        {
            await page.GotoAsync(adminUsers);
            await page.FillAsync("input[name=email]", address);
            await page.SelectOptionAsync("form:has(input[name=email]) select[name=role]", "Admin");
            await page.ClickAsync("text=Request admin");
            return (await page.Locator("[role=status]").TextContentAsync())!.Trim().Replace(address, "EMAIL", StringComparison.Ordinal);
        }
        var forExisting = await RequestAsync(existing);
        var forNewcomer = await RequestAsync(newcomer);

        Assert.Equal(forExisting, forNewcomer);
        Assert.Equal("Request recorded: a super admin can now add EMAIL to this network as Admin.", forExisting);
        await using (var scope = Server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
            Assert.False(await db.Admins.AnyAsync(a => a.Email == newcomer));
            Assert.False(await db.AdminMemberships.AnyAsync(m => m.NetworkId == network.Id && db.Admins.Any(a => a.Id == m.AdminId && a.Email == existing)));
        }

        var superAdmin = await console.CreateAdminAsync("super long password", superAdmin: true);
        var superPage = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(superPage, superAdmin, "super long password");
        await superPage.GotoAsync(adminUsers);
        await Expect(superPage.Locator("form:has(button[value=true])")).ToHaveCountAsync(2);
        await superPage.Locator("li").Filter(new() { HasText = newcomer }).GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();
        await Expect(superPage.Locator("#one-time-password")).ToBeVisibleAsync();
        await superPage.GotoAsync(adminUsers);
        await superPage.Locator("li").Filter(new() { HasText = existing }).GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();
        await Expect(superPage.Locator("[role=status]")).ToContainTextAsync($"{existing} now has its role in this network.");
        await superPage.ReloadAsync();
        await Expect(superPage.Locator("form:has(button[value=true])")).ToHaveCountAsync(0);
        await using var check = Server.Services.CreateAsyncScope();
        var members = await check.ServiceProvider.GetRequiredService<GatehouseDb>().AdminMemberships.Where(m => m.NetworkId == network.Id)
            .Join(check.ServiceProvider.GetRequiredService<GatehouseDb>().Admins, m => m.AdminId, a => a.Id, (m, a) => a.Email).ToListAsync();
        Assert.Contains(existing, members);
        Assert.Contains(newcomer, members);
    }

    [Fact]
    public async Task A_network_the_admin_has_no_role_in_is_not_found_and_a_portal_page_refused_both_inside_the_console()
    {
        var mine = await Server.CreateNetworkAsync();
        var other = await Server.CreateNetworkAsync();
        var email = await console.CreateAdminAsync(Password, network: mine, role: ConsoleRole.Admin);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);

        var notFound = await page.GotoAsync($"/console/n/{other.Id}/integrations");
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("no such network");
        await Expect(page.Locator("header .who")).ToContainTextAsync(email);
        var refused = await page.GotoAsync("/console/admins");
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("does not allow");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync();

        Assert.Equal(404, notFound!.Status);
        Assert.Equal(403, refused!.Status);
    }

    [Fact]
    public async Task A_super_admin_cannot_generate_a_server_key()
    {
        var network = await Server.CreateNetworkAsync(secureMode: true);
        var email = await console.CreateAdminAsync(Password, superAdmin: true);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);

        await page.GotoAsync($"/console/n/{network.Id}/integrations");
        await Expect(page.Locator("#no-server-key")).ToContainTextAsync("A super admin cannot generate a server key");
        await Expect(page.GetByText("Generate new server key")).ToHaveCountAsync(0);
        var forged = await ForgedPostAsync(page, $"/console/n/{network.Id}/integrations?handler=GenerateServerKey", []);

        Assert.Equal(403, forged);
        await using var scope = Server.Services.CreateAsyncScope();
        Assert.False(await scope.ServiceProvider.GetRequiredService<GatehouseDb>().ServerKeys.AnyAsync(k => k.NetworkId == network.Id));
    }

    [Fact]
    public async Task An_admin_enables_secure_mode_generates_a_key_seen_once_rotates_it_and_sees_it_all_in_the_audit_and_dashboard()
    {
        var network = await Server.CreateNetworkAsync();
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: true);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);
        var integrations = $"/console/n/{network.Id}/integrations";
        await page.GotoAsync(integrations);

        // Secure mode, behind a dialog that says what changes for clients.
        await Expect(page.Locator("#no-server-key")).ToContainTextAsync("Turn secure mode on first");
        await page.ClickAsync("text=Turn secure mode on");
        await Expect(page.GetByRole(AriaRole.Alertdialog)).ToContainTextAsync("Every new session will need an auth token");
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Turn secure mode on" }).ClickAsync();
        await Expect(page.Locator("#secure-mode-state")).ToHaveTextAsync("on");
        await ConsoleFixture.ScreenshotAsync(page, "integrations");

        // Chat settings edited here are what the SDK reads.
        await page.GetByLabel("Read markers").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Save chat settings" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Chat settings saved.");

        // The first key: a warning, then the key, once.
        var firstKey = await GenerateKeyAsync(page);
        await Expect(page.GetByRole(AriaRole.Alertdialog)).ToContainTextAsync("you will not see it again");
        await ConsoleFixture.ScreenshotAsync(page, "server-key-shown-once");
        await page.ClickAsync("text=I have stored the key");
        Assert.DoesNotContain(firstKey, await page.ContentAsync(), StringComparison.Ordinal);
        // Back to the page that showed it: the key is not shown again, and no second key was made.
        await page.GoBackAsync();
        Assert.DoesNotContain(firstKey, await page.ContentAsync(), StringComparison.Ordinal);
        await Expect(page.Locator("#reveal-gone")).ToBeVisibleAsync();
        await using (var scope = Server.Services.CreateAsyncScope())
            Assert.Equal(1, await scope.ServiceProvider.GetRequiredService<GatehouseDb>().ServerKeys.CountAsync(k => k.NetworkId == network.Id));
        await page.GotoAsync(integrations);
        await Expect(page.Locator("table").First).ToContainTextAsync(email);

        var authToken = await Server.MintAsync(firstKey, "alice");
        var session = await Server.LoginAsync(network, "alice", "device-a", authToken);
        using (var chat = await Server.GetWithBearerAsync("/api/v3/network-settings/chat", session["accessToken"]!.GetValue<string>()))
            Assert.Contains("\"marker\":{\"enabled\":true}", await chat.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The second key: the warning names the grace; the old key stops when it ends.
        await page.ClickAsync("text=Generate new server key");
        await Expect(page.GetByRole(AriaRole.Alertdialog)).ToContainTextAsync("for 1 hour");
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Generate new server key" }).ClickAsync();
        var secondKey = (await page.Locator("#new-server-key").TextContentAsync())!.Trim();
        Assert.NotEqual(firstKey, secondKey);
        using (var insideGrace = await Server.MintV3Async(firstKey, "alice"))
            Assert.Equal(HttpStatusCode.OK, insideGrace.StatusCode);
        Server.Clock.Advance(TimeSpan.FromHours(1));
        using (var afterGrace = await Server.MintV3Async(firstKey, "alice"))
            await Envelope.AssertUnauthorizedAsync(afterGrace);
        using (var refused = await Server.CreateSessionAsync(network, "alice", "device-a"))
            await Envelope.AssertUnauthorizedAsync(refused);
        await Server.MintAsync(secondKey, "alice");
        await Server.FlushAuditAsync();

        // The audit log shows what happened, and filters by kind.
        await page.GotoAsync($"/console/n/{network.Id}/audit");
        var log = page.Locator("table.audit");
        await Expect(log).ToContainTextAsync("network.secure_mode_changed");
        await Expect(log).ToContainTextAsync("server_key.generated");
        await Expect(log).ToContainTextAsync("auth_token.minted");
        await Expect(log).ToContainTextAsync("server_key_expired");
        await Expect(log).ToContainTextAsync(email);
        await ConsoleFixture.ScreenshotAsync(page, "audit");
        await page.SelectOptionAsync("#kind", "server_key.generated");
        await page.ClickAsync("text=Filter");
        await Expect(log.Locator("tbody tr")).ToHaveCountAsync(2);

        // The dashboard draws its chart on the server.
        await page.GotoAsync($"/console/n/{network.Id}/dashboard");
        await Expect(page.Locator("svg#auth-token-chart rect.minted")).ToHaveCountAsync(24);
        await Expect(page.Locator(".metric").Filter(new() { HasText = "Unauthorized attempts" })).ToHaveClassAsync(new Regex("off-target"));
        await Expect(page.Locator(".metric").Filter(new() { HasText = "Server key age" })).ToContainTextAsync("0 days");
        await ConsoleFixture.ScreenshotAsync(page, "dashboard");
    }

    [Fact]
    public async Task An_admin_allows_visitors_and_gets_a_visitor_secret_shown_once_that_a_reload_neither_shows_nor_generates_again()
    {
        var network = await Server.CreateNetworkAsync(secureMode: true);
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: true);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);
        var integrations = $"/console/n/{network.Id}/integrations";
        await page.GotoAsync(integrations);

        // Both off at first; the form shows what is stored, before and after saving.
        await Expect(page.Locator("#visitors-allowed")).Not.ToBeCheckedAsync();
        await Expect(page.Locator("#bots-allowed")).Not.ToBeCheckedAsync();
        await page.CheckAsync("#visitors-allowed");
        await page.Locator("form").Filter(new() { Has = page.Locator("#visitors-allowed") }).GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Visitors are allowed, bots are refused.");
        await page.ReloadAsync();
        await Expect(page.Locator("#visitors-allowed")).ToBeCheckedAsync();
        await Expect(page.Locator("#bots-allowed")).Not.ToBeCheckedAsync();
        await Expect(page.Locator("#no-visitor-secret")).ToContainTextAsync("visitors are refused until one is");

        // The secret: confirmed, generated by a POST, shown by the GET it redirects to, and by no GET after it.
        await page.ClickAsync("text=Generate visitor secret");
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Generate visitor secret" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alertdialog)).ToContainTextAsync("you will not see it again");
        Assert.Contains(integrations + "?reveal=", page.Url, StringComparison.Ordinal);
        var secret = (await page.Locator("#new-visitor-secret").TextContentAsync())!.Trim();
        Assert.StartsWith("gvs_", secret, StringComparison.Ordinal);
        await ConsoleFixture.ScreenshotAsync(page, "visitor-secret-shown-once");
        await page.ReloadAsync();
        Assert.DoesNotContain(secret, await page.ContentAsync(), StringComparison.Ordinal);
        await Expect(page.GetByRole(AriaRole.Alertdialog)).ToHaveCountAsync(0);
        await Expect(page.Locator("#reveal-gone")).ToContainTextAsync("not shown again");
        await Expect(page.Locator("table").Filter(new() { HasText = "Visitor secrets" }).Locator("tbody tr")).ToHaveCountAsync(1);
        await using (var scope = Server.Services.CreateAsyncScope())
            Assert.Equal(1, await scope.ServiceProvider.GetRequiredService<GatehouseDb>().VisitorSecrets.CountAsync(s => s.NetworkId == network.Id));

        // The secret signs a visitor in; the page counts it, and turning visitors off ends its session.
        var backend = new Gatehouse.Client.AuthTokenClient(Server.Http,
            new() { Endpoint = Server.BaseAddress, ServerKey = await Server.GenerateServerKeyAsync(network), VisitorSecret = secret });
        var signature = backend.SignVisitor("device-v", Server.Clock.GetUtcNow().AddHours(1));
        using var visitor = await Server.CreateVisitorSessionAsync(network, "device-v", authSignature: signature.AuthSignature,
            authSignatureExpiresAt: signature.AuthSignatureExpiresAt);
        Assert.Equal(HttpStatusCode.OK, visitor.StatusCode);
        await page.ReloadAsync();
        await Expect(page.Locator("#visitor-count")).ToHaveTextAsync("1 visitor");
        await ConsoleFixture.ScreenshotAsync(page, "visitors");
        await page.UncheckAsync("#visitors-allowed");
        await page.Locator("form").Filter(new() { Has = page.Locator("#visitors-allowed") }).GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("1 session of theirs ended.");

        // An admin without Access Secure Mode sees the switches disabled, and a forged change is refused.
        var other = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: false);
        var otherPage = await console.NewPageAsync(width: 390, height: 844);
        await ConsoleFixture.SignInAsync(otherPage, other, Password);
        await otherPage.GotoAsync(integrations);
        await Expect(otherPage.Locator("#visitors-allowed")).ToBeDisabledAsync();
        await Expect(otherPage.GetByText("Generate visitor secret")).ToHaveCountAsync(0);
        var overflow = await otherPage.EvaluateAsync<int>("document.documentElement.scrollWidth - window.innerWidth");
        Assert.True(overflow <= 0, $"the page is {overflow}px wider than a 390px screen");
        await ConsoleFixture.ScreenshotAsync(otherPage, "visitors-390");
        Assert.Equal(403, await ForgedPostAsync(otherPage, $"{integrations}?handler=AnonymousModes", new() { ["visitors"] = "true", ["bots"] = "true" }));
        Assert.Equal(403, await ForgedPostAsync(otherPage, $"{integrations}?handler=GenerateVisitorSecret", []));
        await using var check = Server.Services.CreateAsyncScope();
        var stored = await check.ServiceProvider.GetRequiredService<GatehouseDb>().Networks.SingleAsync(n => n.Id == network.Id);
        Assert.Equal((false, false), (stored.VisitorsAllowed, stored.BotsAllowed));
    }

    [Fact]
    public async Task Console_sign_ins_and_their_refusals_reach_the_audit_log_everyone_s_for_a_super_admin_and_only_its_own_for_an_admin()
    {
        var network = await Server.CreateNetworkAsync();
        var admin = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin);
        var super = await console.CreateAdminAsync(Password, superAdmin: true);
        var adminPage = await console.NewPageAsync();
        var superPage = await console.NewPageAsync();
        var wrongPassword = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(wrongPassword, admin, "not the password");
        await ConsoleFixture.SignInAsync(adminPage, admin, Password);
        await ConsoleFixture.SignInAsync(superPage, super, Password);
        await Server.FlushAuditAsync();
        var audit = $"/console/n/{network.Id}/audit";

        await superPage.GotoAsync(audit);
        var everyone = superPage.Locator("table.audit");
        await Expect(everyone).ToContainTextAsync(admin);
        await Expect(everyone).ToContainTextAsync(super);
        await Expect(everyone).ToContainTextAsync("admin.sign_in_refused");
        await Expect(everyone.Locator("td").First).ToContainTextAsync(" UTC");
        await adminPage.GotoAsync(audit);
        var own = adminPage.Locator("table.audit");
        await Expect(own).ToContainTextAsync("admin.signed_in");
        await Expect(own).ToContainTextAsync("admin.sign_in_refused");
        await Expect(own).Not.ToContainTextAsync(super);

        // The current filter exports as CSV; a value a spreadsheet would run as a formula is defused.
        await Server.LoginAsync(network, "=1+2", "device-formula");
        await Server.FlushAuditAsync();
        var export = await adminPage.Context.APIRequest.GetAsync($"{audit}?handler=Csv&kind=session.created");
        var csv = await export.TextAsync();
        Assert.Equal(200, export.Status);
        Assert.StartsWith("time,kind,outcome,actor,user_id,reason,detail,client_address", csv, StringComparison.Ordinal);
        Assert.Contains(",'=1+2,", csv, StringComparison.Ordinal);
        Assert.DoesNotContain("admin.signed_in", csv, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dialog_keeps_the_keyboard_inside_closes_on_Escape_and_no_settings_page_scrolls_sideways_on_a_phone()
    {
        var network = await Server.CreateNetworkAsync(secureMode: true);
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: true);
        await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Viewer);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);
        var integrations = $"/console/n/{network.Id}/integrations";

        await page.GotoAsync(integrations + "?confirm=api-key");
        for (var i = 0; i < 8; i++)
        {
            await page.Keyboard.PressAsync(i % 3 == 2 ? "Shift+Tab" : "Tab");
            Assert.True(await page.EvaluateAsync<bool>("document.querySelector('dialog.modal[open]').contains(document.activeElement)"),
                $"focus left the dialog after {i + 1} key presses");
        }
        await page.Keyboard.PressAsync("Escape");
        await Expect(page).ToHaveURLAsync(new Regex("/integrations$"));
        await Expect(page.GetByRole(AriaRole.Alertdialog)).ToHaveCountAsync(0);

        var phone = await console.NewPageAsync(width: 375, height: 740);
        await ConsoleFixture.SignInAsync(phone, email, Password);
        // On a phone the navigation is folded under "Menu".
        await phone.GotoAsync($"/console/n/{network.Id}/audit");
        await Expect(phone.GetByRole(AriaRole.Link, new() { Name = "Audit log" })).Not.ToBeVisibleAsync();
        await phone.GetByText("Menu").ClickAsync();
        await Expect(phone.GetByRole(AriaRole.Link, new() { Name = "Audit log" })).ToBeVisibleAsync();
        foreach (var section in new[] { "integrations", "security", "admin-users", "audit", "dashboard" })
        {
            await phone.GotoAsync($"/console/n/{network.Id}/{section}");
            var overflow = await phone.EvaluateAsync<int>("document.documentElement.scrollWidth - window.innerWidth");
            Assert.True(overflow <= 0, $"{section} is {overflow}px wider than a 375px screen");
        }
        await ConsoleFixture.ScreenshotAsync(phone, "dashboard-375");
    }

    [Fact]
    public async Task An_admin_finds_a_user_ends_one_session_then_all_and_bans_with_a_reason_while_a_viewer_only_reads()
    {
        var network = await Server.CreateNetworkAsync();
        await Server.SetAnonymousModeAsync(network, Users.UserKind.Visitor, true);
        var admin = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin);
        var viewer = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Viewer);
        var phoneLogin = await Server.LoginAsync(network, "alice", "phone", displayName: "Alice");
        string onPhone;
        using (var refreshed = await Server.RefreshAsync(network, phoneLogin["refreshToken"]!.GetValue<string>()))
        {
            Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
            onPhone = (await refreshed.Content.ReadFromJsonAsync<JsonObject>())!["accessToken"]!.GetValue<string>();
        }
        var onLaptop = (await Server.LoginAsync(network, "alice", "laptop"))["accessToken"]!.GetValue<string>();
        await Server.LoginAsync(network, "bob", "bob-phone");
        using (var visitor = await Server.CreateVisitorSessionAsync(network, "visitor-device"))
            Assert.Equal(HttpStatusCode.OK, visitor.StatusCode);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, admin, Password);
        var users = $"/console/n/{network.Id}/users";

        // Signed-in users by default; visitors only when asked for.
        await page.GotoAsync(users);
        await Expect(page.Locator("#users tbody tr")).ToHaveCountAsync(2);
        await page.SelectOptionAsync("#type", "visitor");
        await page.ClickAsync("text=Find");
        await Expect(page.Locator("#users tbody tr")).ToHaveCountAsync(1);
        await page.FillAsync("#search", "Ali");
        await page.SelectOptionAsync("#type", "signed-in");
        await page.ClickAsync("text=Find");
        await Expect(page.Locator("#users tbody tr")).ToHaveCountAsync(1);
        await page.ClickAsync("#users >> text=alice");
        await Expect(page.Locator("#sessions tbody tr")).ToHaveCountAsync(2);
        // Each session: where it was opened from, and when and from where it was last refreshed (or never).
        var phoneRow = page.Locator("#sessions tbody tr").Filter(new() { HasText = "phone" });
        await Expect(phoneRow.Locator("td").Nth(1)).ToContainTextAsync("from 127.0.0.1");
        await Expect(phoneRow.Locator("td").Nth(2)).ToContainTextAsync($"{Server.Clock.GetUtcNow():yyyy-MM-dd HH:mm:ss} UTC from 127.0.0.1");
        await Expect(page.Locator("#sessions tbody tr").Filter(new() { HasText = "laptop" }).Locator("td").Nth(2)).ToHaveTextAsync("never");
        await ConsoleFixture.ScreenshotAsync(page, "users");

        // One session, after a confirmation: the laptop's ends, the phone's stays.
        await page.Locator("#sessions tbody tr").Filter(new() { HasText = "laptop" }).GetByRole(AriaRole.Link).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alertdialog)).ToContainTextAsync("other sessions stay");
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "End session" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("The session was ended");
        await Expect(page.Locator("#sessions tbody tr")).ToHaveCountAsync(1);
        using (var laptop = await Server.GetWithBearerAsync("/api/v3/users/me", onLaptop))
            await Envelope.AssertUnauthorizedAsync(laptop);
        using (var phone = await Server.GetWithBearerAsync("/api/v3/users/me", onPhone))
            Assert.Equal(HttpStatusCode.OK, phone.StatusCode);

        await page.ClickAsync("text=End all sessions");
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "End all sessions" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("1 session of alice ended.");
        await Expect(page.Locator("#no-sessions")).ToBeVisibleAsync();

        await page.GetByRole(AriaRole.Link, new() { Name = "Ban" }).ClickAsync();
        await page.FillAsync("#reason", "spam");
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Ban" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("alice is banned");
        await Expect(page.Locator("#banned")).ToBeVisibleAsync();
        using (var login = await Server.CreateSessionAsync(network, "alice", "phone"))
            await Envelope.AssertErrorAsync(login, HttpStatusCode.Forbidden, 400312);
        await Server.FlushAuditAsync();
        await page.GotoAsync($"/console/n/{network.Id}/audit?kind=user.banned");
        await Expect(page.Locator("table.audit")).ToContainTextAsync("reason: spam");

        // A viewer sees, and changes nothing even by a forged post.
        var viewerPage = await console.NewPageAsync(width: 375, height: 740);
        await ConsoleFixture.SignInAsync(viewerPage, viewer, Password);
        await viewerPage.GotoAsync($"{users}?userId=bob");
        await Expect(viewerPage.Locator("#sessions tbody tr")).ToHaveCountAsync(1);
        await Expect(viewerPage.GetByRole(AriaRole.Link, new() { Name = "Ban" })).ToHaveCountAsync(0);
        var overflow = await viewerPage.EvaluateAsync<int>("document.documentElement.scrollWidth - window.innerWidth");
        Assert.True(overflow <= 0, $"the users page is {overflow}px wider than a 375px screen");
        Assert.Equal(403, await ForgedPostAsync(viewerPage, $"{users}?handler=Ban", new() { ["userId"] = "bob", ["banned"] = "true" }));
        Assert.Equal(403, await ForgedPostAsync(viewerPage, $"{users}?handler=EndAll", new() { ["userId"] = "bob" }));
        await using var check = Server.Services.CreateAsyncScope();
        var db = check.ServiceProvider.GetRequiredService<GatehouseDb>();
        Assert.False((await db.Users.SingleAsync(u => u.NetworkId == network.Id && u.UserId == "bob")).IsGlobalBan);
    }

    [Fact]
    public async Task A_super_admin_sees_each_admins_rights_as_stored_unlocks_a_locked_account_and_resets_a_password_shown_once()
    {
        var network = await Server.CreateNetworkAsync();
        var viewer = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Viewer);
        var holder = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: true);
        var super = await console.CreateAdminAsync(Password, superAdmin: true);
        var locked = await console.NewPageAsync();
        for (var i = 0; i < 5; i++)
            await ConsoleFixture.SignInAsync(locked, viewer, "wrong password " + i);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, super, Password);
        await page.GotoAsync("/console/admins");
        var networkName = (await Server.Services.CreateAsyncScope().ServiceProvider.GetRequiredService<GatehouseDb>()
            .Networks.SingleAsync(n => n.Id == network.Id)).Name;

        await ConsoleFixture.ScreenshotAsync(page, "admins");
        // Each admin's form in the network shows what it holds; saving one unchanged changes nothing.
        await Expect(page.GetByLabel($"Role of {viewer} in {networkName}")).ToHaveValueAsync("Viewer");
        await Expect(page.GetByLabel($"Access Secure Mode for {viewer} in {networkName}")).Not.ToBeCheckedAsync();
        await Expect(page.GetByLabel($"Role of {holder} in {networkName}")).ToHaveValueAsync("Admin");
        await Expect(page.GetByLabel($"Access Secure Mode for {holder} in {networkName}")).ToBeCheckedAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = $"Save the rights of {viewer} in {networkName}" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = $"Save the rights of {holder} in {networkName}" }).ClickAsync();
        await using (var scope = Server.Services.CreateAsyncScope())
        {
            var memberships = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().AdminMemberships.Where(m => m.NetworkId == network.Id).ToListAsync();
            Assert.Contains(memberships, m => m.Role == ConsoleRole.Viewer && !m.CanAccessSecureMode);
            Assert.Contains(memberships, m => m.Role == ConsoleRole.Admin && m.CanAccessSecureMode);
        }

        // The locked account, unlocked before its lockout ends.
        await Expect(page.Locator("#admins tr").Filter(new() { HasText = viewer })).ToContainTextAsync("Locked until");
        await page.GetByRole(AriaRole.Button, new() { Name = $"Unlock {viewer}" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("can sign in again");
        await ConsoleFixture.SignInAsync(locked, viewer, Password);
        await Expect(locked).Not.ToHaveURLAsync(new Regex("/console/signin"));

        // A reset: asked first, the one-time password shown once, the old password and the old sign-in gone.
        await page.GetByRole(AriaRole.Link, new() { Name = $"Reset the password of {viewer}" }).ClickAsync();
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Reset password" }).ClickAsync();
        var oneTime = (await page.Locator("#one-time-password").TextContentAsync())!.Trim();
        await page.ReloadAsync();
        Assert.DoesNotContain(oneTime, await page.ContentAsync(), StringComparison.Ordinal);
        await locked.ReloadAsync();
        await Expect(locked).ToHaveURLAsync(new Regex("/console/signin"));
        await ConsoleFixture.SignInAsync(locked, viewer, Password);
        await Expect(locked.GetByRole(AriaRole.Alert)).ToBeVisibleAsync();
        await ConsoleFixture.SignInAsync(locked, viewer, oneTime);
        await Expect(locked).ToHaveURLAsync(new Regex("/console/account/password"));
        await Server.FlushAuditAsync();
        await page.GotoAsync($"/console/n/{network.Id}/audit");
        await Expect(page.Locator("table.audit")).ToContainTextAsync("admin.password_reset");
        await Expect(page.Locator("table.audit")).ToContainTextAsync("admin.unlocked");
    }

    [Fact]
    public async Task The_dashboard_shows_a_figure_near_its_limit_in_amber_apart_from_on_target_and_off_target()
    {
        var network = await Server.CreateNetworkAsync();
        var (token, _) = await Server.GenerateAdminTokenAsync(await Server.CreateAdminAsync(network), network, TimeSpan.FromDays(20));
        Assert.NotNull(token);
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Viewer);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);

        await page.GotoAsync($"/console/n/{network.Id}/dashboard");

        var expiring = page.Locator(".metric").Filter(new() { HasText = "Admin tokens expiring within 30 days" });
        await Expect(expiring.Locator(".metric-value")).ToHaveTextAsync("1");
        await Expect(expiring).ToHaveClassAsync(new Regex("near-limit"));
        await Expect(expiring).ToContainTextAsync("near its limit");
        await Expect(page.Locator(".metric").Filter(new() { HasText = "Unauthorized attempts" })).ToHaveClassAsync(new Regex("on-target"));
        await Expect(page.Locator(".metric").Filter(new() { HasText = "Server key age" })).ToHaveClassAsync(new Regex("off-target"));
    }

    [Fact]
    public async Task The_dashboard_shows_the_share_of_server_to_server_calls_made_with_a_verified_client_certificate()
    {
        var network = await Server.CreateNetworkAsync(secureMode: true);
        var serverKey = await Server.GenerateServerKeyAsync(network);
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var csr = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=shop-backend", key,
            System.Security.Cryptography.HashAlgorithmName.SHA256).CreateSigningRequestPem();
        using var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(
            await Server.IssueClientCertificateAsync(network, "shop-backend", csr, mtlsOn: false), key.ExportPkcs8PrivateKeyPem());
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Viewer);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);
        var dashboard = $"/console/n/{network.Id}/dashboard";
        var share = page.Locator(".metric").Filter(new() { HasText = "Server-to-server calls over mTLS" });

        await page.GotoAsync(dashboard);
        await Expect(share.Locator(".metric-value")).ToHaveTextAsync("no calls");

        // mTLS off, two mints without a certificate: none of the calls used one.
        await Server.MintAsync(serverKey, "alice");
        await Server.MintAsync(serverKey, "bob");
        await Server.FlushAuditAsync();
        await page.ReloadAsync();
        await Expect(share.Locator(".metric-value")).ToHaveTextAsync("0 %");
        await Expect(share).ToHaveClassAsync(new Regex("off-target"));

        // A mint and a backend session with the network's certificate: half the calls.
        using var withCertificate = Server.HttpsClient(certificate);
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/api/v3/authentication/token?userId=carol"))
        {
            request.Headers.Add("x-server-key", serverKey);
            using var minted = await withCertificate.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, minted.StatusCode);
        }
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/api/v5/server/sessions")
               { Content = System.Net.Http.Json.JsonContent.Create(new { userId = "carol" }) })
        {
            request.Headers.Add("x-server-key", serverKey);
            using var opened = await withCertificate.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, opened.StatusCode);
        }
        await Server.FlushAuditAsync();
        await page.ReloadAsync();
        await Expect(share.Locator(".metric-value")).ToHaveTextAsync("50 %");
        await Expect(share).ToHaveClassAsync(new Regex("near-limit"));
        await Expect(share).ToContainTextAsync("2 of 4");
    }

    [Fact]
    public async Task The_console_fits_a_phone_screen_and_works_from_the_keyboard_alone()
    {
        var network = await Server.CreateNetworkAsync();
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: true);
        var page = await console.NewPageAsync(width: 375, height: 740);

        await page.GotoAsync("/console/signin");
        // Chromium may apply autofocus after the load event; keys typed before it would go nowhere.
        await Expect(page.Locator("#email")).ToBeFocusedAsync();
        await page.Keyboard.TypeAsync(email);
        await Expect(page.Locator("#email")).ToHaveValueAsync(email);
        await page.Keyboard.PressAsync("Tab");
        await Expect(page.Locator("#password")).ToBeFocusedAsync();
        await page.Keyboard.TypeAsync(Password);
        await Expect(page.Locator("#password")).ToHaveValueAsync(Password);
        await page.Keyboard.PressAsync("Enter");
        // The address first, so a failure names the page the browser is on; then its styles, which the width check needs.
        await Expect(page).ToHaveURLAsync(new Regex("/integrations$"));
        await page.WaitForLoadStateAsync();

        var overflow = await page.EvaluateAsync<int>("document.documentElement.scrollWidth - window.innerWidth");
        Assert.True(overflow <= 0, $"the page is {overflow}px wider than a 375px screen");

        await TabToAsync(page, "Turn secure mode on");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page).ToHaveURLAsync(new Regex("confirm=secure-mode"));
        await page.WaitForLoadStateAsync();
        await TabToAsync(page, "Turn secure mode on");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("#secure-mode-state")).ToHaveTextAsync("on");
    }

    [Fact]
    public async Task An_admin_generates_an_admin_token_sees_it_once_uses_it_and_revokes_it()
    {
        var network = await Server.CreateNetworkAsync();
        await Server.LoginAsync(network, "frank", "device-f");
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: true);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);
        var adminUsers = $"/console/n/{network.Id}/admin-users";
        await page.GotoAsync(adminUsers);

        await page.ClickAsync("text=Generate new token");
        await Expect(page.GetByRole(AriaRole.Alertdialog)).ToContainTextAsync("grace period");
        await page.FillAsync("#days", "90");
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Generate new token" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alertdialog)).ToContainTextAsync("you will not see it again");
        var token = (await page.Locator("#new-admin-token").TextContentAsync())!.Trim();
        await ConsoleFixture.ScreenshotAsync(page, "admin-token-shown-once");
        // Shown by a GET the generation redirected to: a reload shows it no more and makes no second token.
        await page.ReloadAsync();
        Assert.DoesNotContain(token, await page.ContentAsync(), StringComparison.Ordinal);
        await Expect(page.Locator("#reveal-gone")).ToBeVisibleAsync();
        await using (var scope = Server.Services.CreateAsyncScope())
            Assert.Equal(1, await scope.ServiceProvider.GetRequiredService<GatehouseDb>().AdminTokens.CountAsync(t => t.NetworkId == network.Id));
        await page.GotoAsync(adminUsers);
        await Expect(page.Locator("#active-tokens")).ToHaveTextAsync("1");
        await Expect(page.Locator("#token-table")).ToContainTextAsync(email);

        using (var works = await Server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users/frank", token))
            Assert.Equal(HttpStatusCode.OK, works.StatusCode);
        // A month unused makes the token an orphan (and ends the console sign-in, which idles out after 8 hours).
        Server.Clock.Advance(TimeSpan.FromDays(31));
        await page.ReloadAsync();
        await Expect(page).ToHaveURLAsync(new Regex("/console/signin"));
        await ConsoleFixture.SignInAsync(page, email, Password);
        await page.GotoAsync(adminUsers);
        await Expect(page.Locator("#orphan-tokens")).ToHaveTextAsync("1");
        await ConsoleFixture.ScreenshotAsync(page, "admin-users");

        // Revoking asks first, naming whose token and when it was made.
        await page.Locator("#token-table").GetByRole(AriaRole.Link, new() { NameRegex = new Regex("^Revoke the token of") }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alertdialog)).ToContainTextAsync(email);
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Link, new() { Name = "Cancel" }).ClickAsync();
        await Expect(page.Locator("#active-tokens")).ToHaveTextAsync("1");
        await page.Locator("#token-table").GetByRole(AriaRole.Link, new() { NameRegex = new Regex("^Revoke the token of") }).ClickAsync();
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Revoke token" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("revoked");
        await Expect(page.Locator("#active-tokens")).ToHaveTextAsync("0");
        using var refused = await Server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users/frank", token);
        await Envelope.AssertUnauthorizedAsync(refused);
    }

    [Fact]
    public async Task A_super_admin_sees_why_it_holds_no_admin_token_and_cannot_forge_one()
    {
        var network = await Server.CreateNetworkAsync();
        var email = await console.CreateAdminAsync(Password, superAdmin: true);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);

        await page.GotoAsync($"/console/n/{network.Id}/admin-users");
        await Expect(page.Locator("#no-token")).ToContainTextAsync("A super admin cannot generate admin tokens");
        var forged = await ForgedPostAsync(page, $"/console/n/{network.Id}/admin-users?handler=GenerateToken", new() { ["days"] = "30" });

        Assert.Equal(403, forged);
        await using var scope = Server.Services.CreateAsyncScope();
        Assert.False(await scope.ServiceProvider.GetRequiredService<GatehouseDb>().AdminTokens.AnyAsync(t => t.NetworkId == network.Id));
    }

    [Fact]
    public async Task An_admin_creates_a_certificate_from_a_csr_downloads_it_and_switches_mtls_on_only_once_one_exists()
    {
        var network = await Server.CreateNetworkAsync(secureMode: true);
        var email = await console.CreateAdminAsync(Password, network: network, role: ConsoleRole.Admin, accessSecureMode: true);
        var page = await console.NewPageAsync();
        await ConsoleFixture.SignInAsync(page, email, Password);
        var security = $"/console/n/{network.Id}/security";
        await page.GotoAsync(security);

        // No certificate yet: the switch is not offered, the page says why, and a forged switch is refused as a
        // refusal (red, an alert), never in the green success banner.
        await Expect(page.GetByText("Turn mTLS on")).ToHaveCountAsync(0);
        await Expect(page.Locator("#mtls-unavailable")).ToContainTextAsync("Create a certificate below");
        Assert.Equal(302, await ForgedPostAsync(page, $"{security}?handler=Mtls", new() { ["on"] = "true" }));
        await page.ReloadAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("Create a certificate before turning mTLS on");
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveCountAsync(0);
        await Expect(page.Locator("#mtls-state")).ToHaveTextAsync("off");

        // A CSR pasted in the form is issued, and downloads with its chain.
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var csr = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=shop-backend", key,
            System.Security.Cryptography.HashAlgorithmName.SHA256).CreateSigningRequestPem();
        await page.FillAsync("#name", "shop-backend");
        await page.FillAsync("#csr", csr);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create certificate" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Certificate shop-backend issued");
        var download = await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("#download-created"));
        var downloaded = await File.ReadAllTextAsync((await download.PathAsync())!);
        Assert.Equal(2, Regex.Count(downloaded, "BEGIN CERTIFICATE"));
        Assert.Equal("shop-backend.pem", download.SuggestedFilename);

        await page.GotoAsync(security);
        await Expect(page.Locator("#certificate-table")).ToContainTextAsync("shop-backend");
        await page.ClickAsync("text=Turn mTLS on");
        await Expect(page.GetByRole(AriaRole.Alertdialog)).ToContainTextAsync("this network's active certificate");
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Turn mTLS on" }).ClickAsync();
        await Expect(page.Locator("#mtls-state")).ToHaveTextAsync("on");
        await ConsoleFixture.ScreenshotAsync(page, "security");

        using var withoutCertificate = await Server.MintV3Async(await Server.GenerateServerKeyAsync(network), "alice");
        await Envelope.AssertUnauthorizedAsync(withoutCertificate);
    }

    private static async Task<string> GenerateKeyAsync(IPage page)
    {
        await page.ClickAsync("text=Generate new server key");
        await Expect(page.GetByRole(AriaRole.Alertdialog)).ToContainTextAsync("shown only once");
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Generate new server key" }).ClickAsync();
        return (await page.Locator("#new-server-key").TextContentAsync())!.Trim();
    }

    /// <summary>A POST the page never offered, with a valid antiforgery token taken from the sign-out form.</summary>
    private static async Task<int> ForgedPostAsync(IPage page, string path, Dictionary<string, string> fields)
    {
        var token = await page.Locator("form[action='/console/signout'] input[name=__RequestVerificationToken]").InputValueAsync();
        var form = page.Context.APIRequest.CreateFormData();
        form.Set("__RequestVerificationToken", token);
        foreach (var (name, value) in fields)
            form.Set(name, value);
        var response = await page.Context.APIRequest.PostAsync(path, new() { Form = form, MaxRedirects = 0 });
        return response.Status;
    }

    private static async Task TabToAsync(IPage page, string text)
    {
        for (var i = 0; i < 60; i++)
        {
            await page.Keyboard.PressAsync("Tab");
            var focused = await page.EvaluateAsync<string>("document.activeElement ? document.activeElement.textContent.trim() : ''");
            if (focused == text)
                return;
        }
        Assert.Fail($"Tab never reached '{text}'");
    }

    [GeneratedRegex(@"One-time password:\s+(\S+)")]
    private static partial Regex OneTimePasswordRegex();
}
