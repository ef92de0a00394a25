using System.Text.Json.Nodes;
using Gatehouse.Server.Admins;
using Gatehouse.Server.AdminTokens;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

public abstract class AdminTokenTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    [SkippableFact]
    public async Task Only_an_admin_with_access_secure_mode_gets_a_token()
    {
        var network = await server.CreateNetworkAsync();
        var superAdmin = await server.CreateAdminAsync(superAdmin: true);
        var withoutPermission = await server.CreateAdminAsync(network, accessSecureMode: false);
        var viewer = await server.CreateAdminAsync(network, ConsoleRole.Viewer);
        var stranger = await server.CreateAdminAsync();
        var permitted = await server.CreateAdminAsync(network);

        Assert.Contains("super admin", (await server.GenerateAdminTokenAsync(superAdmin, network)).Error, StringComparison.Ordinal);
        Assert.Contains("Access Secure Mode", (await server.GenerateAdminTokenAsync(withoutPermission, network)).Error, StringComparison.Ordinal);
        Assert.Contains("Viewer", (await server.GenerateAdminTokenAsync(viewer, network)).Error, StringComparison.Ordinal);
        Assert.NotNull((await server.GenerateAdminTokenAsync(stranger, network)).Error);
        Assert.Contains("365 days", (await server.GenerateAdminTokenAsync(permitted, network, TimeSpan.FromDays(366))).Error, StringComparison.Ordinal);
        var (token, error) = await server.GenerateAdminTokenAsync(permitted, network);
        Assert.Null(error);
        Assert.StartsWith("gat_", token, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task The_token_is_kept_as_a_digest_and_listed_by_its_metadata_only()
    {
        var network = await server.CreateNetworkAsync();
        var admin = await server.CreateAdminAsync(network);
        var (token, _) = await server.GenerateAdminTokenAsync(admin, network);

        await using var scope = server.Services.CreateAsyncScope();
        var listed = await scope.ServiceProvider.GetRequiredService<AdminTokenService>().ListAsync(network.Id);
        var stored = Assert.Single(listed);
        Assert.Equal(admin.Email, stored.AdminEmail);
        Assert.Equal(64, stored.Token.Digest.Length);
        Assert.DoesNotContain(token!, stored.Token.Digest, StringComparison.Ordinal);
        Assert.Equal(server.Clock.GetUtcNow().AddDays(365), stored.Token.ExpiresAt, TimeSpan.FromMilliseconds(1));
    }

    [SkippableFact]
    public async Task A_replaced_token_works_for_the_grace_and_no_longer_and_never_three_at_once()
    {
        var network = await server.CreateNetworkAsync();
        var admin = await server.CreateAdminAsync(network);
        var (first, _) = await server.GenerateAdminTokenAsync(admin, network);
        var (second, _) = await server.GenerateAdminTokenAsync(admin, network);

        server.Clock.Advance(TimeSpan.FromHours(24) - TimeSpan.FromSeconds(1));
        using (var inside = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", first!))
            Assert.Equal(HttpStatusCode.OK, inside.StatusCode);
        var (third, _) = await server.GenerateAdminTokenAsync(admin, network);
        using (var endedByThird = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", first!))
            Assert.Contains("expired", await Envelope.AssertUnauthorizedAsync(endedByThird), StringComparison.Ordinal);

        server.Clock.Advance(TimeSpan.FromHours(24));
        using var secondAfterGrace = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", second!);
        using var newest = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", third!);
        await Envelope.AssertUnauthorizedAsync(secondAfterGrace);
        Assert.Equal(HttpStatusCode.OK, newest.StatusCode);
    }

    [SkippableFact]
    public async Task A_replacement_can_revoke_the_previous_token_at_once()
    {
        var network = await server.CreateNetworkAsync();
        var admin = await server.CreateAdminAsync(network);
        var (first, _) = await server.GenerateAdminTokenAsync(admin, network);

        await server.GenerateAdminTokenAsync(admin, network, revokePrevious: true);

        using var response = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", first!);
        Assert.Contains("revoked", await Envelope.AssertUnauthorizedAsync(response), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task An_admin_revokes_its_own_token_a_super_admin_anyones_and_nobody_else_can()
    {
        var network = await server.CreateNetworkAsync();
        var owner = await server.CreateAdminAsync(network);
        var colleague = await server.CreateAdminAsync(network);
        var superAdmin = await server.CreateAdminAsync(superAdmin: true);
        var (ownersToken, _) = await server.GenerateAdminTokenAsync(owner, network);
        var (colleaguesToken, _) = await server.GenerateAdminTokenAsync(colleague, network);
        await using var scope = server.Services.CreateAsyncScope();
        var service = scope.ServiceProvider.GetRequiredService<AdminTokenService>();
        var tokens = await service.ListAsync(network.Id);
        var ownersId = tokens.Single(t => t.AdminEmail == owner.Email).Token.Id;
        var colleaguesId = tokens.Single(t => t.AdminEmail == colleague.Email).Token.Id;

        Assert.Contains("Only the token's own admin or a super admin", (await service.RevokeAsync(colleague, network.Id, ownersId, null))?.Message, StringComparison.Ordinal);
        Assert.Contains("no such admin token", (await service.RevokeAsync(owner, network.Id, Guid.NewGuid(), null))?.Message, StringComparison.Ordinal);
        using (var stillWorks = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", ownersToken!))
            Assert.Equal(HttpStatusCode.OK, stillWorks.StatusCode);

        Assert.Null(await service.RevokeAsync(superAdmin, network.Id, colleaguesId, null));
        using (var selfRevoke = await server.AdminAsync(HttpMethod.Delete, "/api/v4/admin/token", ownersToken!))
            Assert.Equal(HttpStatusCode.OK, selfRevoke.StatusCode);

        using var owners = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", ownersToken!);
        using var colleagues = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", colleaguesToken!);
        await Envelope.AssertUnauthorizedAsync(owners);
        await Envelope.AssertUnauthorizedAsync(colleagues);
    }

    [SkippableFact]
    public async Task Expired_disabled_and_unpermitted_tokens_and_missing_or_unknown_ones_are_refused()
    {
        var network = await server.CreateNetworkAsync();
        var shortLived = await server.CreateAdminAsync(network);
        var toDisable = await server.CreateAdminAsync(network);
        var toDemote = await server.CreateAdminAsync(network);
        var (expiring, _) = await server.GenerateAdminTokenAsync(shortLived, network, TimeSpan.FromDays(1));
        var (ofDisabled, _) = await server.GenerateAdminTokenAsync(toDisable, network);
        var (ofDemoted, _) = await server.GenerateAdminTokenAsync(toDemote, network);
        // Each used once first, so the refusals below come after the server has kept them as good.
        foreach (var token in new[] { ofDisabled, ofDemoted })
        {
            using var good = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", token!);
            Assert.Equal(HttpStatusCode.OK, good.StatusCode);
        }
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var admins = scope.ServiceProvider.GetRequiredService<AdminAccounts>();
            await admins.SetMembershipAsync(toDisable.Id, network.Id, ConsoleRole.Admin, true, "test", disabled: true);
            await admins.SetMembershipAsync(toDemote.Id, network.Id, ConsoleRole.Admin, canAccessSecureMode: false, "test");
        }

        using var disabled = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", ofDisabled!);
        using var demoted = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", ofDemoted!);
        using var unknown = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", "gat_made-up");
        using var missing = await server.Http.GetAsync("/api/v4/admin/users");
        server.Clock.Advance(TimeSpan.FromDays(1));
        using var expired = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", expiring!);

        Assert.Contains("revoked", await Envelope.AssertUnauthorizedAsync(disabled), StringComparison.Ordinal);
        Assert.Contains("revoked", await Envelope.AssertUnauthorizedAsync(demoted), StringComparison.Ordinal);
        await Envelope.AssertUnauthorizedAsync(unknown);
        Assert.Contains("x-admin-token", await Envelope.AssertUnauthorizedAsync(missing), StringComparison.Ordinal);
        Assert.Contains("expired", await Envelope.AssertUnauthorizedAsync(expired), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Disabling_an_admin_revokes_its_admin_tokens_for_good()
    {
        var network = await server.CreateNetworkAsync();
        var admin = await server.CreateAdminAsync(network);
        var (token, _) = await server.GenerateAdminTokenAsync(admin, network);
        var demoted = await server.CreateAdminAsync(network);
        var (demotedToken, _) = await server.GenerateAdminTokenAsync(demoted, network);
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var admins = scope.ServiceProvider.GetRequiredService<AdminAccounts>();
            await admins.SetMembershipAsync(admin.Id, network.Id, ConsoleRole.Admin, true, "test", disabled: true);
            await admins.SetMembershipAsync(admin.Id, network.Id, ConsoleRole.Admin, true, "test", disabled: false);
            await admins.SetMembershipAsync(demoted.Id, network.Id, ConsoleRole.Viewer, true, "test");
            await admins.SetMembershipAsync(demoted.Id, network.Id, ConsoleRole.Admin, true, "test");
        }

        using var enabledAgain = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", token!);
        using var promotedAgain = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", demotedToken!);
        var (fresh, error) = await server.GenerateAdminTokenAsync(admin, network);
        using var freshWorks = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", fresh!);
        await server.FlushAuditAsync();

        Assert.Contains("revoked", await Envelope.AssertUnauthorizedAsync(enabledAgain), StringComparison.Ordinal);
        Assert.Contains("revoked", await Envelope.AssertUnauthorizedAsync(promotedAgain), StringComparison.Ordinal);
        Assert.Null(error);
        Assert.Equal(HttpStatusCode.OK, freshWorks.StatusCode);
        await using var audit = server.Services.CreateAsyncScope();
        Assert.Equal(2, await audit.ServiceProvider.GetRequiredService<GatehouseDb>().AuditEvents
            .CountAsync(e => e.NetworkId == network.Id && e.Kind == "admin_token.revoked" && e.Reason == "admin_rights_removed"));
    }

    [SkippableFact]
    public async Task A_token_of_one_network_cannot_act_on_another()
    {
        var home = await server.CreateNetworkAsync();
        var elsewhere = await server.CreateNetworkAsync();
        await server.LoginAsync(home, "bob", "device-1");
        var bobElsewhere = await server.LoginAsync(elsewhere, "bob", "device-2");
        await server.LoginAsync(elsewhere, "only-elsewhere", "device-3");
        var (token, _) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(home), home);

        using var lookup = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users/only-elsewhere", token!);
        using var ban = await server.AdminAsync(HttpMethod.Post, "/api/v4/admin/users/bob/ban", token!);
        using var list = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", token!);

        await Envelope.AssertErrorAsync(lookup, HttpStatusCode.NotFound, 400400);
        Assert.Equal(HttpStatusCode.OK, ban.StatusCode);
        using var elsewhereStillLive = await server.GetWithBearerAsync("/api/v3/users/me", bobElsewhere["accessToken"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, elsewhereStillLive.StatusCode);
        var users = JsonNode.Parse(await list.Content.ReadAsStringAsync())!["users"]!.AsArray();
        Assert.Equal(["bob"], users.Select(u => u!["userId"]!.GetValue<string>()));
    }

    [SkippableFact]
    public async Task Revoking_a_users_sessions_ends_every_access_and_refresh_token_it_has()
    {
        var network = await server.CreateNetworkAsync();
        var phone = await server.LoginAsync(network, "carol", "phone");
        var laptop = await server.LoginAsync(network, "carol", "laptop");
        var other = await server.LoginAsync(network, "dave", "tablet");
        var (token, _) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);
        // In use before: the node keeps their sessions as live, and must stop trusting them once they end.
        foreach (var session in new[] { phone, laptop })
        {
            using var before = await server.GetWithBearerAsync("/api/v3/users/me", session["accessToken"]!.GetValue<string>());
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        using var revoke = await server.AdminAsync(HttpMethod.Delete, "/api/v4/sessions", token!, new { userId = "carol" });
        using var unknownUser = await server.AdminAsync(HttpMethod.Delete, "/api/v4/sessions", token!, new { userId = "nobody" });
        using var noUser = await server.AdminAsync(HttpMethod.Delete, "/api/v4/sessions", token!, new { });

        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        Assert.True(JsonNode.Parse(await revoke.Content.ReadAsStringAsync())!["success"]!.GetValue<bool>());
        await Envelope.AssertErrorAsync(unknownUser, HttpStatusCode.NotFound, 400400);
        await Envelope.AssertBadRequestAsync(noUser);
        foreach (var session in new[] { phone, laptop })
        {
            using var me = await server.GetWithBearerAsync("/api/v3/users/me", session["accessToken"]!.GetValue<string>());
            using var refresh = await server.RefreshAsync(network, session["refreshToken"]!.GetValue<string>());
            await Envelope.AssertUnauthorizedAsync(me);
            await Envelope.AssertUnauthorizedAsync(refresh);
        }
        using var untouched = await server.GetWithBearerAsync("/api/v3/users/me", other["accessToken"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, untouched.StatusCode);
    }

    [SkippableFact]
    public async Task A_ban_refuses_logins_and_live_tokens_with_400312_and_an_unban_lets_an_earlier_auth_token_log_in()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var session = await server.LoginAsync(network, "erin", "device-e", await server.MintAsync(serverKey, "erin"));
        var mintedBeforeBan = await server.MintAsync(serverKey, "erin");
        var (token, _) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);
        // Read first, so the server keeps the user as not banned before the ban.
        using (var before = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users/erin", token!))
            Assert.False(JsonNode.Parse(await before.Content.ReadAsStringAsync())!["users"]![0]!["isGlobalBanned"]!.GetValue<bool>());

        using (var ban = await server.AdminAsync(HttpMethod.Post, "/api/v4/admin/users/erin/ban", token!))
            Assert.Equal(HttpStatusCode.OK, ban.StatusCode);
        using (var login = await server.CreateSessionAsync(network, "erin", "device-e", mintedBeforeBan))
            await Envelope.AssertErrorAsync(login, HttpStatusCode.Forbidden, 400312);
        using (var me = await server.GetWithBearerAsync("/api/v3/users/me", session["accessToken"]!.GetValue<string>()))
            await Envelope.AssertErrorAsync(me, HttpStatusCode.Forbidden, 400312);
        using (var refresh = await server.RefreshAsync(network, session["refreshToken"]!.GetValue<string>()))
            await Envelope.AssertErrorAsync(refresh, HttpStatusCode.Forbidden, 400312);
        using (var shown = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users/erin", token!))
            Assert.True(JsonNode.Parse(await shown.Content.ReadAsStringAsync())!["users"]![0]!["isGlobalBanned"]!.GetValue<bool>());

        using (var unban = await server.AdminAsync(HttpMethod.Post, "/api/v4/admin/users/erin/unban", token!))
            Assert.Equal(HttpStatusCode.OK, unban.StatusCode);
        using (var shownAgain = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users/erin", token!))
            Assert.False(JsonNode.Parse(await shownAgain.Content.ReadAsStringAsync())!["users"]![0]!["isGlobalBanned"]!.GetValue<bool>());
        await server.LoginAsync(network, "erin", "device-e", mintedBeforeBan);
        using var oldToken = await server.GetWithBearerAsync("/api/v3/users/me", session["accessToken"]!.GetValue<string>());
        await Envelope.AssertUnauthorizedAsync(oldToken);
    }

    [SkippableFact]
    public async Task Admin_actions_are_audited_with_the_admins_identity_and_the_audit_api_filters_and_pages()
    {
        var network = await server.CreateNetworkAsync();
        for (var i = 0; i < 3; i++)
            await server.LoginAsync(network, $"user-{i}", $"device-{i}", displayName: i == 1 ? "Findable Name" : null);
        var admin = await server.CreateAdminAsync(network);
        var (token, _) = await server.GenerateAdminTokenAsync(admin, network);
        using (await server.AdminAsync(HttpMethod.Post, "/api/v4/admin/users/user-0/ban", token!)) { }
        await server.FlushAuditAsync();

        using var banned = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/audit?kind=user.banned", token!);
        using var paged = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users?limit=2&page=2", token!);
        using var search = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users?search=Findable", token!);
        using var badPaging = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users?limit=1000", token!);
        using var badKind = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/audit?kind=nope", token!);
        using var badTime = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/audit?from=yesterday", token!);

        var events = JsonNode.Parse(await banned.Content.ReadAsStringAsync())!["events"]!.AsArray();
        var ban = Assert.Single(events)!;
        Assert.Equal("user-0", ban["userId"]!.GetValue<string>());
        Assert.StartsWith($"admin:{admin.Email} token:", ban["actor"]!.GetValue<string>(), StringComparison.Ordinal);
        var page = JsonNode.Parse(await paged.Content.ReadAsStringAsync())!;
        Assert.Equal(3, page["paging"]!["total"]!.GetValue<int>());
        Assert.Equal("user-2", Assert.Single(page["users"]!.AsArray())!["userId"]!.GetValue<string>());
        Assert.Equal("user-1", Assert.Single(JsonNode.Parse(await search.Content.ReadAsStringAsync())!["users"]!.AsArray())!["userId"]!.GetValue<string>());
        await Envelope.AssertBadRequestAsync(badPaging);
        await Envelope.AssertBadRequestAsync(badKind);
        await Envelope.AssertBadRequestAsync(badTime);

        await using var scope = server.Services.CreateAsyncScope();
        var stored = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().AdminTokens.SingleAsync(t => t.NetworkId == network.Id);
        Assert.NotNull(stored.LastUsedAt);
    }
}

[Trait(Category.Name, Category.Slow)]
public sealed class AdminTokenTestsOnSqlite(SqliteServer server) : AdminTokenTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class AdminTokenTestsOnPostgres(PostgresServer server) : AdminTokenTests<PostgresServer>(server);
