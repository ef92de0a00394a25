using Microsoft.Playwright;
using System.Text.Json;

namespace Gatehouse.Server.Tests.Console;

/// <summary>
/// Every console page under axe-core (pinned in tests/websdk, installed by ./test.sh), as a super admin with a role in
/// a network sees them, at desktop and phone width: no serious or critical violation.
/// </summary>
[Trait(Category.Name, Category.Browser)]
public sealed class ConsoleAccessibilityTests(ConsoleFixture console) : IClassFixture<ConsoleFixture>
{
    private const string Password = "correct horse battery staple";

    [Theory]
    [InlineData(1280)]
    [InlineData(375)]
    public async Task Every_page_passes_axe_core_without_a_serious_or_critical_violation(int width)
    {
        var axe = Repository.PathOf("tests", "websdk", "node_modules", "axe-core", "axe.min.js");
        Assert.True(File.Exists(axe), $"axe-core is not installed in {axe}: run `npm ci --prefix tests/websdk` (./test.sh does).");
        var network = await console.Server.CreateNetworkAsync();
        var email = await console.CreateAdminAsync(Password, superAdmin: true);
        await console.Server.LoginAsync(network, "alice", "device-a");
        var page = await console.NewPageAsync(width: width, height: 900, bypassCsp: true);
        await ConsoleFixture.SignInAsync(page, email, Password);

        var problems = new List<string>();
        foreach (var path in new[]
                 {
                     "dashboard", "integrations", "integrations?confirm=visitor-secret", "security", "admin-users", "users", "users?userId=alice",
                     "audit",
                 }.Select(p => $"/console/n/{network.Id}/{p}").Concat(["/console/networks", "/console/admins", "/console/keys", "/console/account/password",
                     "/console/account/two-factor"]))
        {
            await page.GotoAsync(path);
            await CheckAsync(path);
        }
        // The two-factor set-up, with its QR code and key.
        await page.GetByRole(AriaRole.Button, new() { Name = "Set up two-factor sign-in" }).ClickAsync();
        await CheckAsync("/console/account/two-factor (set-up)");

        async Task CheckAsync(string shown)
        {
            await page.AddScriptTagAsync(new() { Path = axe });
            var violations = await page.EvaluateAsync<JsonElement>(
                "async () => (await axe.run(document, { resultTypes: ['violations'] })).violations" +
                ".filter(v => v.impact === 'serious' || v.impact === 'critical')" +
                ".map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')}`)");
            problems.AddRange(violations.EnumerateArray().Select(v => $"{shown}: {v.GetString()}"));
        }

        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }
}
