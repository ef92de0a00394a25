using System.Text.Json.Nodes;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

public abstract class SessionTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    [SkippableFact]
    public async Task Unsecure_login_creates_the_user_and_returns_the_contract_shape()
    {
        var network = await server.CreateNetworkAsync();

        var body = await server.LoginAsync(network, "alice", "device-a", displayName: "Alice");

        Assert.StartsWith("eyJ", body["accessToken"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(body["refreshToken"]!.GetValue<string>()));
        var issuedAt = DateTimeOffset.Parse(body["issuedAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        var expiresAt = DateTimeOffset.Parse(body["expiresAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(TimeSpan.FromDays(30), expiresAt - issuedAt);
        Assert.Empty(body["files"]!.AsArray());
        var user = body["users"]![0]!;
        Assert.Equal("alice", user["userId"]!.GetValue<string>());
        Assert.Equal("Alice", user["displayName"]!.GetValue<string>());
        var id = user["_id"]!.GetValue<string>();
        Assert.Matches("^[0-9a-f]{24}$", id);
        // Shaped like a MongoDB ObjectId, as the hosted product's: its first 4 bytes are the creation time in seconds.
        var createdAt = DateTimeOffset.Parse(user["createdAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(createdAt.ToUnixTimeSeconds(), Convert.ToInt64(id[..8], 16));
        foreach (var field in new[] { "path", "metadata", "roles", "permissions", "flagCount", "hashFlag", "avatarFileId", "isDeleted", "isGlobalBan", "isGlobalBanned", "createdAt", "updatedAt" })
            Assert.True(user.AsObject().ContainsKey(field), $"user object lacks {field}");

        await using var scope = server.Services.CreateAsyncScope();
        var stored = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Users.SingleAsync(u => u.NetworkId == network.Id);
        Assert.Equal("alice", stored.UserId);
    }

    [SkippableFact]
    public async Task A_later_login_updates_the_display_name_and_keeps_it_when_none_is_given()
    {
        var network = await server.CreateNetworkAsync();
        await server.LoginAsync(network, "bob", "device-b", displayName: "Bob");

        await server.LoginAsync(network, "bob", "device-b", displayName: "Robert");
        var unchanged = await server.LoginAsync(network, "bob", "device-b");

        Assert.Equal("Robert", unchanged["users"]![0]!["displayName"]!.GetValue<string>());
    }

    [SkippableFact]
    public async Task Me_and_chat_settings_answer_with_a_live_access_token()
    {
        var network = await server.CreateNetworkAsync();
        var session = await server.LoginAsync(network, "carol", "device-c");
        var accessToken = session["accessToken"]!.GetValue<string>();

        using var me = await server.GetWithBearerAsync("/api/v3/users/me", accessToken);
        using var chat = await server.GetWithBearerAsync("/api/v3/network-settings/chat", accessToken);

        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        Assert.Equal("carol", JsonNode.Parse(await me.Content.ReadAsStringAsync())!["users"]![0]!["userId"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        var settings = JsonNode.Parse(await chat.Content.ReadAsStringAsync())!;
        Assert.True(settings["enabled"]!.GetValue<bool>());
        Assert.False(settings["mention"]!["isAllowMentionedChannelEnabled"]!.GetValue<bool>());
        Assert.False(settings["messagePreview"]!["isIncludeDeleted"]!.GetValue<bool>());
        Assert.False(settings["marker"]!["enabled"]!.GetValue<bool>());
    }

    [SkippableFact]
    public async Task Bearer_endpoints_refuse_a_missing_or_forged_token()
    {
        using var missing = await server.Http.GetAsync("/api/v3/users/me");
        using var forged = await server.GetWithBearerAsync("/api/v3/users/me", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");

        await Envelope.AssertUnauthorizedAsync(missing);
        await Envelope.AssertUnauthorizedAsync(forged);
    }

    [SkippableFact]
    public async Task The_access_token_expires_after_thirty_days()
    {
        var network = await server.CreateNetworkAsync();
        var accessToken = (await server.LoginAsync(network, "dave", "device-d"))["accessToken"]!.GetValue<string>();

        server.Clock.Advance(TimeSpan.FromDays(30) - TimeSpan.FromSeconds(1));
        using var stillValid = await server.GetWithBearerAsync("/api/v3/users/me", accessToken);
        server.Clock.Advance(TimeSpan.FromSeconds(1));
        using var expired = await server.GetWithBearerAsync("/api/v3/users/me", accessToken);

        Assert.Equal(HttpStatusCode.OK, stillValid.StatusCode);
        Assert.Contains("expired", await Envelope.AssertUnauthorizedAsync(expired), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Another_user_on_the_same_device_ends_the_first_users_session_but_the_same_user_does_not()
    {
        var network = await server.CreateNetworkAsync();
        var first = (await server.LoginAsync(network, "erin", "shared-device"))["accessToken"]!.GetValue<string>();
        var again = (await server.LoginAsync(network, "erin", "shared-device"))["accessToken"]!.GetValue<string>();

        using var bothLive = await server.GetWithBearerAsync("/api/v3/users/me", first);
        Assert.Equal(HttpStatusCode.OK, bothLive.StatusCode);

        var other = (await server.LoginAsync(network, "frank", "shared-device"))["accessToken"]!.GetValue<string>();

        using var firstAfter = await server.GetWithBearerAsync("/api/v3/users/me", first);
        using var againAfter = await server.GetWithBearerAsync("/api/v3/users/me", again);
        using var otherAfter = await server.GetWithBearerAsync("/api/v3/users/me", other);
        await Envelope.AssertUnauthorizedAsync(firstAfter);
        await Envelope.AssertUnauthorizedAsync(againAfter);
        Assert.Equal(HttpStatusCode.OK, otherAfter.StatusCode);
    }

    [SkippableFact]
    public async Task The_same_device_id_in_another_network_is_another_device()
    {
        var one = await server.CreateNetworkAsync();
        var two = await server.CreateNetworkAsync();
        var inOne = (await server.LoginAsync(one, "gina", "device-g"))["accessToken"]!.GetValue<string>();

        await server.LoginAsync(two, "hank", "device-g");

        using var stillLive = await server.GetWithBearerAsync("/api/v3/users/me", inOne);
        Assert.Equal(HttpStatusCode.OK, stillLive.StatusCode);
    }

    [SkippableFact]
    public async Task Sessions_per_user_and_device_are_capped_and_the_oldest_ends_first()
    {
        var network = await server.CreateNetworkAsync();
        var tokens = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            tokens.Add((await server.LoginAsync(network, "ivan", "device-i"))["accessToken"]!.GetValue<string>());
            server.Clock.Advance(TimeSpan.FromMilliseconds(10));
        }

        using var oldest = await server.GetWithBearerAsync("/api/v3/users/me", tokens[0]);
        using var second = await server.GetWithBearerAsync("/api/v3/users/me", tokens[1]);
        await Envelope.AssertUnauthorizedAsync(oldest);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
    }

    [SkippableFact]
    public async Task Secure_logout_ends_the_session_and_its_tokens()
    {
        var network = await server.CreateNetworkAsync();
        var session = await server.LoginAsync(network, "judy", "device-j");
        var accessToken = session["accessToken"]!.GetValue<string>();

        using var logout = await server.LogoutAsync(accessToken);
        Assert.Equal(HttpStatusCode.OK, logout.StatusCode);
        Assert.True(JsonNode.Parse(await logout.Content.ReadAsStringAsync())!["success"]!.GetValue<bool>());

        using var me = await server.GetWithBearerAsync("/api/v3/users/me", accessToken);
        using var refresh = await server.RefreshAsync(network, session["refreshToken"]!.GetValue<string>());
        using var logoutAgain = await server.LogoutAsync(accessToken);
        await Envelope.AssertUnauthorizedAsync(me);
        await Envelope.AssertUnauthorizedAsync(refresh);
        await Envelope.AssertUnauthorizedAsync(logoutAgain);
    }

    [SkippableFact]
    public async Task Refresh_rotates_both_tokens_and_the_new_access_token_works()
    {
        var network = await server.CreateNetworkAsync();
        var session = await server.LoginAsync(network, "kim", "device-k");
        server.Clock.Advance(TimeSpan.FromDays(20));

        using var refreshed = await server.RefreshAsync(network, session["refreshToken"]!.GetValue<string>());
        var body = JsonNode.Parse(await refreshed.Content.ReadAsStringAsync())!;

        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        Assert.NotEqual(session["refreshToken"]!.GetValue<string>(), body["refreshToken"]!.GetValue<string>());
        Assert.NotEqual(session["accessToken"]!.GetValue<string>(), body["accessToken"]!.GetValue<string>());
        Assert.Equal("kim", body["users"]![0]!["userId"]!.GetValue<string>());

        // The new access token outlives the first one's thirty days.
        server.Clock.Advance(TimeSpan.FromDays(15));
        using var me = await server.GetWithBearerAsync("/api/v3/users/me", body["accessToken"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
    }

    [SkippableFact]
    public async Task Refreshing_never_carries_a_session_past_ninety_days_from_its_login()
    {
        var network = await server.CreateNetworkAsync();
        var loggedInAt = server.Clock.GetUtcNow();
        var session = await server.LoginAsync(network, "nils", "device-n");
        var refreshToken = session["refreshToken"]!.GetValue<string>();
        JsonNode last = session;
        for (var step = 0; step < 3; step++)
        {
            server.Clock.Advance(TimeSpan.FromDays(29));
            using var refreshed = await server.RefreshAsync(network, refreshToken);
            Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
            last = JsonNode.Parse(await refreshed.Content.ReadAsStringAsync())!;
            refreshToken = last["refreshToken"]!.GetValue<string>();
        }

        // At day 87 the new tokens end with the session, at day 90, not thirty days later.
        Assert.Equal(loggedInAt + TimeSpan.FromDays(90), last["expiresAt"]!.GetValue<DateTimeOffset>(), TimeSpan.FromMilliseconds(1));
        var accessToken = last["accessToken"]!.GetValue<string>();
        var exp = JsonNode.Parse(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(accessToken.Split('.')[1]))!["exp"]!.GetValue<long>();
        Assert.InRange(exp, (loggedInAt + TimeSpan.FromDays(90)).ToUnixTimeSeconds() - 1, (loggedInAt + TimeSpan.FromDays(90)).ToUnixTimeSeconds());

        server.Clock.Advance(TimeSpan.FromDays(3));
        using var tooOld = await server.RefreshAsync(network, refreshToken);
        using var me = await server.GetWithBearerAsync("/api/v3/users/me", accessToken);
        await Envelope.AssertUnauthorizedAsync(tooOld);
        await Envelope.AssertUnauthorizedAsync(me);
        await server.LoginAsync(network, "nils", "device-n");
    }

    [SkippableFact]
    public async Task Reusing_a_refresh_token_ends_the_whole_session()
    {
        var network = await server.CreateNetworkAsync();
        var session = await server.LoginAsync(network, "leo", "device-l");
        var first = session["refreshToken"]!.GetValue<string>();

        using var rotated = await server.RefreshAsync(network, first);
        var second = JsonNode.Parse(await rotated.Content.ReadAsStringAsync())!;
        using var replay = await server.RefreshAsync(network, first);

        Assert.Contains("already used", await Envelope.AssertUnauthorizedAsync(replay), StringComparison.Ordinal);
        using var secondRefresh = await server.RefreshAsync(network, second["refreshToken"]!.GetValue<string>());
        using var me = await server.GetWithBearerAsync("/api/v3/users/me", second["accessToken"]!.GetValue<string>());
        await Envelope.AssertUnauthorizedAsync(secondRefresh);
        await Envelope.AssertUnauthorizedAsync(me);
    }

    [SkippableFact]
    public async Task A_refresh_token_only_works_with_its_own_networks_api_key_and_within_its_lifetime()
    {
        var network = await server.CreateNetworkAsync();
        var other = await server.CreateNetworkAsync();
        var refreshToken = (await server.LoginAsync(network, "mia", "device-m"))["refreshToken"]!.GetValue<string>();

        using var wrongNetwork = await server.RefreshAsync(other, refreshToken);
        await Envelope.AssertUnauthorizedAsync(wrongNetwork);

        server.Clock.Advance(TimeSpan.FromDays(60));
        using var expired = await server.RefreshAsync(network, refreshToken);
        Assert.Contains("expired", await Envelope.AssertUnauthorizedAsync(expired), StringComparison.Ordinal);
    }
}

[Trait(Category.Name, Category.Slow)]
public sealed class SessionTestsOnSqlite(SqliteServer server) : SessionTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class SessionTestsOnPostgres(PostgresServer server) : SessionTests<PostgresServer>(server);

/// <summary>
/// Room for a refresh's updates on the pages of the sessions and refresh tokens (GatehouseDb.RoomOnEachPageForUpdates).
/// A database of its own (its own fixture): another test's dead rows on a page could make room there without the setting.
/// </summary>
[Trait(Category.Name, Category.Postgres)]
public sealed class SessionPageRoomTestsOnPostgres(PostgresServer server) : IClassFixture<PostgresServer>
{
    /// <summary>
    /// A refresh once later logins have filled the pages its session and refresh token were written to: the new
    /// versions stay on those pages, in the room the tables keep free, so their indexes get no new entries. On a page
    /// filled to the brim a new version goes to another page.
    /// </summary>
    [SkippableFact]
    public async Task A_refresh_after_its_pages_have_filled_keeps_its_session_and_token_on_them()
    {
        var network = await server.CreateNetworkAsync();
        var refreshToken = (await server.LoginAsync(network, "early", "early-device"))["refreshToken"]!.GetValue<string>();
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var digest = Secrets.Digest(refreshToken);
        var sessionId = (await db.RefreshTokens.AsNoTracking().SingleAsync(r => r.Digest == digest)).SessionId;
        var sessionPage = await SessionPageAsync(db, sessionId);
        var tokenPage = await TokenPageAsync(db, digest);

        // A few dozen rows fit on a page: once later logins' rows are on the page and past it, it is as full as inserts
        // leave it.
        await Task.WhenAll(Enumerable.Range(0, 150).Select(i => server.LoginAsync(network, $"later-{i}", $"later-device-{i}")));
        var laterSessionPages = await db.Database.SqlQuery<long>(
            $"""SELECT DISTINCT (ctid::text::point)[0]::bigint AS "Value" FROM "Sessions" WHERE "DeviceId" LIKE 'later-device-%'""").ToListAsync();
        var laterTokenPages = await db.Database.SqlQuery<long>(
            $"""
            SELECT DISTINCT (r.ctid::text::point)[0]::bigint AS "Value" FROM "RefreshTokens" AS r
            JOIN "Sessions" AS s ON s."Id" = r."SessionId" WHERE s."DeviceId" LIKE 'later-device-%'
            """).ToListAsync();
        Assert.Contains(sessionPage, laterSessionPages);
        Assert.Contains(laterSessionPages, page => page > sessionPage);
        Assert.Contains(tokenPage, laterTokenPages);
        Assert.Contains(laterTokenPages, page => page > tokenPage);

        using var refreshed = await server.RefreshAsync(network, refreshToken);
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        Assert.NotNull((await db.Sessions.AsNoTracking().SingleAsync(s => s.Id == sessionId)).LastRefreshedAt);
        Assert.NotNull((await db.RefreshTokens.AsNoTracking().SingleAsync(r => r.Digest == digest)).UsedAt);
        Assert.Equal(sessionPage, await SessionPageAsync(db, sessionId));
        Assert.Equal(tokenPage, await TokenPageAsync(db, digest));
    }

    private static Task<long> SessionPageAsync(GatehouseDb db, Guid sessionId) =>
        db.Database.SqlQuery<long>($"""SELECT (ctid::text::point)[0]::bigint AS "Value" FROM "Sessions" WHERE "Id" = {sessionId}""").SingleAsync();

    private static Task<long> TokenPageAsync(GatehouseDb db, string digest) =>
        db.Database.SqlQuery<long>($"""SELECT (ctid::text::point)[0]::bigint AS "Value" FROM "RefreshTokens" WHERE "Digest" = {digest}""").SingleAsync();
}
