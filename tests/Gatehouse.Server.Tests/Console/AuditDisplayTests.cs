using Gatehouse.Server.Audit;
using Gatehouse.Server.Console;

namespace Gatehouse.Server.Tests.Console;

/// <summary>
/// How the audit page reads what the log stores: the details the event factories write, as named fields with times to
/// the second in UTC; free text as it is; actors as who they are.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class AuditDisplayTests
{
    private static readonly DateTimeOffset At = new(2026, 11, 30, 10, 0, 0, 123, TimeSpan.Zero);

    [Fact]
    public void A_server_key_detail_reads_as_named_fields_with_its_time_to_the_second_in_UTC()
    {
        var keyId = Guid.NewGuid();
        var stored = SecurityEvents.ServerKeyGenerated("admin:ann@example.com", "n1", keyId, At.AddTicks(4567)).Detail;

        var shown = AuditDisplay.Detail(stored);

        Assert.Null(shown.Text);
        Assert.Equal(
            [new DetailField("Server key", keyId.ToString()), new DetailField("Previous valid until", "2026-11-30 10:00:00 UTC")],
            shown.Fields);
    }

    [Fact]
    public void A_device_id_with_spaces_and_equals_signs_reads_as_one_field_and_cannot_pose_as_others()
    {
        var sessionId = Guid.NewGuid();
        const string Forged = "x mtls=true admin=00000000-0000-0000-0000-000000000001";
        var stored = SecurityEvents.SessionCreated("alice", "n1", sessionId, Forged).Detail;

        var shown = AuditDisplay.Detail(stored);

        Assert.Equal([new DetailField("Session", sessionId.ToString()), new DetailField("Device", Forged)], shown.Fields);
    }

    [Fact]
    public void An_admin_named_by_its_id_reads_as_its_email_and_booleans_as_yes_or_no()
    {
        var adminId = Guid.NewGuid();
        var stored = SecurityEvents.AdminRoleChanged("operator", "n1", adminId, "Admin", canAccessSecureMode: true, disabled: false).Detail;
        Assert.Equal([adminId], AuditDisplay.AdminIds([stored, null, "admin=bob@example.com"]));

        var shown = AuditDisplay.Detail(stored, new Dictionary<Guid, string> { [adminId] = "bob@example.com" });

        Assert.Equal(
            [
                new DetailField("Admin", "bob@example.com", adminId.ToString()), new DetailField("Role", "Admin"),
                new DetailField("Access Secure Mode", "yes"), new DetailField("Disabled", "no"),
            ],
            shown.Fields);
        Assert.Equal(new DetailField("Admin", adminId.ToString()), AuditDisplay.Detail(stored).Fields[0]);
    }

    [Fact]
    public void Values_with_spaces_leading_words_and_times_inside_a_value_read_as_fields()
    {
        Assert.Equal([new DetailField("Name", "My shop (EU)")], AuditDisplay.Detail(SecurityEvents.NetworkCreated("operator", "n1", "My shop (EU)").Detail).Fields);
        Assert.Equal([new DetailField("Inactive visitors", "3"), new DetailField("Bots", "0")],
            AuditDisplay.Detail(SecurityEvents.UsersPruned("n1", 3, 0).Detail).Fields);
        var tokenId = Guid.NewGuid();
        Assert.Equal(
            [
                new DetailField("Admin token", tokenId.ToString()), new DetailField("Expires", "2027-11-30 10:00:00 UTC"),
                new DetailField("Previous token", "valid until 2026-11-30 10:00:00 UTC"),
            ],
            AuditDisplay.Detail(SecurityEvents.AdminTokenGenerated("admin:a@example.com", "n1", tokenId, At.AddYears(1), At).Detail).Fields);
        var session = Guid.NewGuid();
        Assert.Equal(
            [new DetailField("Session", session.ToString()), new DetailField("Device", "backend:abc"), new DetailField("Client certificate (mTLS)", "yes")],
            AuditDisplay.Detail(SecurityEvents.SessionCreated("alice", "n1", session, "backend:abc", "server-key:1", backendMtls: true).Detail).Fields);
        Assert.Equal([new DetailField("Client certificate (mTLS)", "no")], AuditDisplay.Detail(SecurityEvents.AuthTokenMinted("server-key:1", "n1", "alice", mtls: false).Detail).Fields);
    }

    [Theory]
    [InlineData("on; ended 3 session(s) opened without an auth token")]
    [InlineData("reason: spam, see ticket a=1")]
    [InlineData("single_use")]
    [InlineData("refused 12 more time(s) in the minute from 2026-11-30 10:00 UTC (the first 10 are rows of their own)")]
    public void Free_text_is_shown_as_it_is(string stored)
    {
        var shown = AuditDisplay.Detail(stored);

        Assert.Empty(shown.Fields);
        Assert.Equal(stored, shown.Text);
    }

    [Fact]
    public void No_detail_shows_nothing() => Assert.Equal(ShownDetail.None, AuditDisplay.Detail(null));

    [Fact]
    public void Every_kind_has_a_readable_label() =>
        Assert.All(AuditKinds.All, kind => Assert.DoesNotContain(kind, AuditDisplay.KindLabel(kind), StringComparison.Ordinal));

    [Fact]
    public void Actors_read_as_the_email_the_user_id_or_operator_with_their_kind()
    {
        Assert.Equal(new ShownActor("ann@example.com", "admin"), AuditDisplay.Actor("admin:ann@example.com"));
        var token = Guid.NewGuid();
        Assert.Equal(new ShownActor("ann@example.com", "admin token", $"admin:ann@example.com token:{token}"),
            AuditDisplay.Actor($"admin:ann@example.com token:{token}"));
        Assert.Equal(new ShownActor("alice", "user"), AuditDisplay.Actor("user:alice"));
        Assert.Equal(new ShownActor("operator", "command line"), AuditDisplay.Actor("operator"));
        Assert.Equal("backend", AuditDisplay.Actor($"server-key:{Guid.NewGuid()}").KindLabel);
        Assert.Equal(new ShownActor("anonymous", "no known credential"), AuditDisplay.Actor("anonymous"));
        Assert.Equal(new ShownActor("something new", null), AuditDisplay.Actor("something new"));
    }
}
