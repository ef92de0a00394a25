using Gatehouse.Server.Audit;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using SessionOptions = Gatehouse.Server.Configuration.SessionOptions;

namespace Gatehouse.Server.Tests.Rules;

/// <summary>The login, refresh and logout rules on rows in memory: no server, no database, no clock.</summary>
[Trait(Category.Name, Category.Fast)]
public sealed class SessionRulesTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly Network Network = new() { Id = "net-1", Name = "test", Region = "sg", ApiKey = "sg_key", SecureMode = true };
    private static readonly SessionOptions Settings = new()
    {
        AccessTokenLifetime = TimeSpan.FromDays(30),
        RefreshTokenLifetime = TimeSpan.FromDays(60),
        AbsoluteLifetime = TimeSpan.FromDays(90),
        MaxPerUserAndDevice = 2,
    };

    private static Login LoginOf(string userId, string deviceId, string? displayName = null) => new(userId, deviceId, displayName, "ios", "iPhone", "6.35.3");

    [Fact]
    public void A_first_login_creates_the_user_binds_the_device_and_opens_a_session_with_its_refresh_token_and_audit_event()
    {
        var rows = new LoginRows();
        var created = new NewRows();

        var (opened, refusal) = SessionRules.Login(rows, created, Network, LoginOf("alice", "device-1", "Alice"), "203.0.113.7", Now, Settings);

        Assert.Null(refusal);
        var user = Assert.Single(created.Users);
        Assert.Equal(("alice", "Alice", "net-1"), (user.UserId, user.DisplayName, user.NetworkId));
        Assert.Equal(user.Id, Assert.Single(created.Bindings).UserRef);
        var session = Assert.Single(created.Sessions);
        Assert.Equal((Now + Settings.AccessTokenLifetime, "ios", true), (session.ExpiresAt, session.DeviceKind, session.OpenedWithAuthToken));
        var refresh = Assert.Single(created.RefreshTokens);
        Assert.Equal(Secrets.Digest(opened!.RefreshToken!), refresh.Digest);
        Assert.Equal(Now + Settings.RefreshTokenLifetime, refresh.ExpiresAt);
        var audited = Assert.Single(created.AuditEvents);
        Assert.Equal((AuditKinds.SessionCreated, "alice", "203.0.113.7"), (audited.Kind, audited.UserId, audited.ClientAddress));
        Assert.Equal((AuditKinds.SessionCreated, true), (opened.Raised!.Kind, opened.Raised.StoredWithChange));
    }

    [Fact]
    public void Another_user_logging_in_on_a_device_signs_the_previous_user_out_of_it()
    {
        var rows = new LoginRows();
        var created = new NewRows();
        var (alice, _) = SessionRules.Login(rows, created, Network, LoginOf("alice", "shared"), null, Now, Settings);

        var (bob, _) = SessionRules.Login(rows, created, Network, LoginOf("bob", "shared"), null, Now.AddMinutes(1), Settings);

        Assert.Equal(RevokeReasons.DeviceRebound, alice!.Session.RevokedReason);
        Assert.Null(bob!.Session.RevokedAt);
        Assert.Equal(bob.User.Id, rows.Bindings["shared"].UserRef);
    }

    [Fact]
    public void Sessions_of_one_user_on_one_device_beyond_the_cap_end_oldest_first()
    {
        var rows = new LoginRows();
        var created = new NewRows();
        var first = SessionRules.Login(rows, created, Network, LoginOf("alice", "phone"), null, Now, Settings).Opened!;
        var second = SessionRules.Login(rows, created, Network, LoginOf("alice", "phone"), null, Now.AddSeconds(1), Settings).Opened!;
        // Same instant as the second: the order written decides.
        var third = SessionRules.Login(rows, created, Network, LoginOf("alice", "phone"), null, Now.AddSeconds(1), Settings).Opened!;

        Assert.Equal(RevokeReasons.SessionCap, first.Session.RevokedReason);
        Assert.Null(second.Session.RevokedAt);
        Assert.Null(third.Session.RevokedAt);
        Assert.Single(created.Users);
    }

    [Fact]
    public void A_banned_user_is_refused_and_nothing_is_created()
    {
        var rows = new LoginRows();
        rows.Users.Add("mallory", new User { Id = "u-1", NetworkId = Network.Id, UserId = "mallory", IsGlobalBan = true });
        var created = new NewRows();

        var (opened, refusal) = SessionRules.Login(rows, created, Network, LoginOf("mallory", "device"), null, Now, Settings);

        Assert.Null(opened);
        Assert.Same(Errors.UserBanned, refusal);
        Assert.Empty(created.Sessions);
        Assert.Empty(created.Bindings);
    }

    [Fact]
    public void A_visitor_login_makes_a_visitor_without_a_display_name_and_an_ordinary_login_cannot_take_that_user_over()
    {
        var rows = new LoginRows { VisitorsAllowed = true };
        var created = new NewRows();
        var visitorId = Visitors.VisitorIdentity.UserIdFor(Network.Id, UserKind.Visitor, "device-v");

        var (visitor, refusal) = SessionRules.Login(rows, created, Network,
            new Login(visitorId, "device-v", "Sneaky", "ios", null, null, UserKind.Visitor), null, Now, Settings);
        var (takeover, refused) = SessionRules.Login(rows, created, Network, LoginOf(visitorId, "device-x", "Mallory"), null, Now, Settings);

        Assert.Null(refusal);
        Assert.Equal((UserKind.Visitor, null), (visitor!.User.Kind, visitor.User.DisplayName));
        Assert.Null(takeover);
        Assert.Same(Errors.VisitorNotPermitted, refused);
        Assert.Equal(488999, refused!.Code);
        Assert.Single(created.Users);
        Assert.Single(created.Sessions);
    }

    [Fact]
    public void A_bot_login_on_an_id_a_signed_in_user_holds_is_refused_and_the_user_stays_signed_in()
    {
        var botId = Visitors.VisitorIdentity.UserIdFor(Network.Id, UserKind.Bot, "crawler-1");
        var user = new User { Id = "u-1", NetworkId = Network.Id, UserId = botId };
        var rows = new LoginRows { BotsAllowed = true };
        rows.Users.Add(botId, user);
        var created = new NewRows();

        var (opened, refusal) = SessionRules.Login(rows, created, Network, new Login(botId, "crawler-1", null, null, null, null, UserKind.Bot), null, Now, Settings);
        var (botUser, botRefusal) = SessionRules.Login(new LoginRows { Users = { [botId] = new User { Id = "u-2", NetworkId = Network.Id, UserId = botId, Kind = UserKind.Bot } } },
            new NewRows(), Network, LoginOf(botId, "device"), null, Now, Settings);

        Assert.Null(opened);
        Assert.Same(Errors.DeviceHasSignedInUser, refusal);
        Assert.Equal(UserKind.SignedIn, user.Kind);
        Assert.Empty(created.Sessions);
        Assert.Null(botUser);
        Assert.Equal(488998, botRefusal!.Code);
    }

    [Fact]
    public void A_visitor_or_bot_is_refused_when_its_switch_was_read_off_in_the_transaction_and_cannot_renew_once_it_is_off()
    {
        var created = new NewRows();
        var visitorId = Visitors.VisitorIdentity.UserIdFor(Network.Id, UserKind.Visitor, "device-v");
        var visitor = new User { Id = "u-v", NetworkId = Network.Id, UserId = visitorId, Kind = UserKind.Visitor };
        var session = new Session { Id = Guid.NewGuid(), NetworkId = Network.Id, UserRef = "u-v", DeviceId = "device-v", CreatedAt = Now, ExpiresAt = Now.AddDays(30) };
        var row = new RefreshToken { Digest = "d", SessionId = session.Id, IssuedAt = Now, ExpiresAt = Now.AddDays(60) };
        var off = new Network { Id = Network.Id, Name = "test", Region = "sg", ApiKey = "sg_key", BotsAllowed = true };

        var (opened, refusal) = SessionRules.Login(new LoginRows { BotsAllowed = true }, created, Network,
            new Login(visitorId, "device-v", null, null, null, null, UserKind.Visitor), null, Now, Settings);
        var (bot, botRefusal) = SessionRules.Login(new LoginRows { VisitorsAllowed = true }, created, Network,
            new Login("bot-x", "crawler", null, null, null, null, UserKind.Bot), null, Now, Settings);

        Assert.Null(opened);
        Assert.Same(Errors.VisitorModeOff, refusal);
        Assert.Null(bot);
        Assert.Same(Errors.BotModeOff, botRefusal);
        Assert.Empty(created.Users);
        Assert.Same(Errors.VisitorModeOff, SessionRules.RenewalRefusal(row, session, visitor, off, Now.AddDays(1), Settings));
        off.VisitorsAllowed = true;
        Assert.Null(SessionRules.RenewalRefusal(row, session, visitor, off, Now.AddDays(1), Settings));
    }

    [Fact]
    public void A_session_the_backend_opens_has_no_refresh_token_counts_as_proven_and_names_the_server_key_in_its_event()
    {
        var unsecured = new Network { Id = "net-2", Name = "open", Region = "sg", ApiKey = "sg_open" };
        var created = new NewRows();

        var (opened, refusal) = SessionRules.Login(new LoginRows(), created, unsecured,
            new Login("alice", "backend:1", null, "backend", null, null, Backend: "server-key:42"), null, Now, Settings);

        Assert.Null(refusal);
        Assert.Null(opened!.RefreshToken);
        Assert.Empty(created.RefreshTokens);
        Assert.True(opened.Session.OpenedWithAuthToken);
        Assert.Equal("server-key:42", Assert.Single(created.AuditEvents).Actor);
    }

    [Fact]
    public void A_returning_user_keeps_its_display_name_unless_a_new_one_is_given()
    {
        var user = new User { Id = "u-1", NetworkId = Network.Id, UserId = "alice", DisplayName = "Alice", UpdatedAt = Now.AddDays(-1) };
        var rows = new LoginRows();
        rows.Users.Add("alice", user);

        SessionRules.Login(rows, new NewRows(), Network, LoginOf("alice", "d1"), null, Now, Settings);
        Assert.Equal(("Alice", Now.AddDays(-1)), (user.DisplayName, user.UpdatedAt));

        SessionRules.Login(rows, new NewRows(), Network, LoginOf("alice", "d1", "Alice B."), null, Now, Settings);
        Assert.Equal(("Alice B.", Now), (user.DisplayName, user.UpdatedAt));
    }

    [Fact]
    public void A_refresh_token_is_known_only_in_its_own_network_and_by_its_exact_digest()
    {
        var (session, row, _) = Opened();
        Assert.True(SessionRules.IsKnown(row, session, Network.Id, row.Digest));
        Assert.False(SessionRules.IsKnown(row, session, "net-2", row.Digest));
        Assert.False(SessionRules.IsKnown(row, session, Network.Id, Secrets.Digest("grt_guess")));
        Assert.False(SessionRules.IsKnown(null, session, Network.Id, row.Digest));
    }

    [Fact]
    public void A_renewal_is_refused_for_a_ban_before_an_ended_session_then_for_the_session_age_then_for_the_token_expiry()
    {
        var (session, row, user) = Opened();
        Assert.Null(SessionRules.RenewalRefusal(row, session, user, Network, Now.AddDays(1), Settings));

        var unusedButExpired = new RefreshToken { Digest = row.Digest, SessionId = session.Id, IssuedAt = Now, ExpiresAt = Now.AddDays(1) };
        Assert.Same(Errors.RefreshTokenExpired, SessionRules.RenewalRefusal(unusedButExpired, session, user, Network, Now.AddDays(2), Settings));
        // A token already used is judged by its reuse, not its age: the claim that follows ends the session.
        unusedButExpired.UsedAt = Now;
        Assert.Null(SessionRules.RenewalRefusal(unusedButExpired, session, user, Network, Now.AddDays(2), Settings));

        Assert.Same(Errors.SessionTooOld, SessionRules.RenewalRefusal(row, session, user, Network, Now + Settings.AbsoluteLifetime, Settings));
        SessionRules.Revoke(session, Now, RevokeReasons.Logout);
        Assert.Same(Errors.SessionEnded, SessionRules.RenewalRefusal(row, session, user, Network, Now.AddDays(1), Settings));
        user.IsGlobalBan = true;
        Assert.Same(Errors.UserBanned, SessionRules.RenewalRefusal(row, session, user, Network, Now.AddDays(1), Settings));
    }

    [Fact]
    public void A_renewal_never_takes_the_tokens_past_the_sessions_absolute_end()
    {
        var (session, _, _) = Opened();
        var late = Now + Settings.AbsoluteLifetime - TimeSpan.FromDays(1);

        var (row, secret) = SessionRules.Renew(session, late, "203.0.113.7", Settings);

        var end = Now + Settings.AbsoluteLifetime;
        Assert.Equal(end, session.ExpiresAt);
        Assert.Equal(end, row.ExpiresAt);
        Assert.Equal(Secrets.Digest(secret), row.Digest);
        Assert.Equal(session.Id, row.SessionId);
        Assert.Equal(late, session.LastRefreshedAt);
        Assert.Equal("203.0.113.7", session.LastRefreshedFrom);
    }

    private static (Session Session, RefreshToken Row, User User) Opened()
    {
        var rows = new LoginRows();
        var created = new NewRows();
        var opened = SessionRules.Login(rows, created, Network, LoginOf("alice", "d1"), null, Now, Settings).Opened!;
        return (opened.Session, created.RefreshTokens.Single(), opened.User);
    }
}
