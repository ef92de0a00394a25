using Gatehouse.Server.Refusals;
using Gatehouse.Server.Visitors;

namespace Gatehouse.Server.Tests.Rules;

/// <summary>The visitor signature rule on its own: no server, no database, no clock.</summary>
[Trait(Category.Name, Category.Fast)]
public sealed class VisitorSignatureTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan MaxAhead = TimeSpan.FromHours(24);
    private const string Secret = "gvs_current";
    private const string Until = "2026-12-01T13:00:00.000Z";

    private static Refusal? Check(string deviceId, string? signature, string? until, params string[] secrets) =>
        VisitorSignature.Check(deviceId, signature, until, secrets, Now, MaxAhead);

    [Fact]
    public void The_hosted_products_signature_is_HMAC_SHA256_in_hex_over_the_device_and_the_time_as_sent()
    {
        // Computed independently, as a backend in any language would: openssl dgst -sha256 -hmac <secret>.
        Assert.Equal(OpenSslHmac("deviceId=d-1&authSignatureExpiresAt=" + Until, Secret), VisitorSignature.Compute(Secret, "d-1", Until));
    }

    [Fact]
    public void A_signature_by_either_valid_secret_for_this_device_passes_in_either_case_of_hex()
    {
        var signature = VisitorSignature.Compute(Secret, "d-1", Until);

        Assert.Null(Check("d-1", signature, Until, "gvs_previous", Secret));
        Assert.Null(Check("d-1", signature.ToUpperInvariant(), Until, Secret));
    }

    [Fact]
    public void Another_device_another_time_another_secret_or_a_tampered_signature_is_invalid()
    {
        var signature = VisitorSignature.Compute(Secret, "d-1", Until);
        var tampered = (signature[0] == 'a' ? "b" : "a") + signature[1..];

        Assert.Same(Errors.VisitorSignatureInvalid, Check("d-2", signature, Until, Secret));
        Assert.Same(Errors.VisitorSignatureInvalid, Check("d-1", signature, "2026-12-01T13:00:01.000Z", Secret));
        Assert.Same(Errors.VisitorSignatureInvalid, Check("d-1", signature, Until, "gvs_other"));
        Assert.Same(Errors.VisitorSignatureInvalid, Check("d-1", tampered, Until, Secret));
        Assert.Same(Errors.VisitorSignatureInvalid, Check("d-1", signature[..63], Until, Secret));
        Assert.Same(Errors.VisitorSignatureInvalid, Check("d-1", new string('z', 64), Until, Secret));
    }

    [Fact]
    public void An_expired_signature_or_one_too_far_ahead_is_refused_even_when_genuine()
    {
        const string past = "2026-12-01T11:59:59Z";
        const string tooFar = "2026-12-02T12:00:01Z";

        Assert.Same(Errors.VisitorSignatureExpired, Check("d-1", VisitorSignature.Compute(Secret, "d-1", past), past, Secret));
        Assert.Equal("visitor_signature_too_long", Check("d-1", VisitorSignature.Compute(Secret, "d-1", tooFar), tooFar, Secret)!.Reason);
        Assert.Equal(400100, Check("d-1", VisitorSignature.Compute(Secret, "d-1", past), past, Secret)!.Code);
    }

    [Theory]
    [InlineData(null, Until)]
    [InlineData("00", null)]
    [InlineData("", "")]
    public void A_missing_signature_or_time_is_asked_for(string? signature, string? until) =>
        Assert.Same(Errors.VisitorSignatureRequired, Check("d-1", signature, until, Secret));

    [Theory]
    [InlineData("2026-12-01 13:00:00Z")]
    [InlineData("2026-12-01T13:00:00")]
    [InlineData("12/01/2026 13:00")]
    [InlineData("2026-13-01T13:00:00Z")]
    public void A_time_without_a_zone_or_not_in_ISO_8601_is_a_bad_request(string until) =>
        Assert.Same(Errors.VisitorSignatureTime, Check("d-1", VisitorSignature.Compute(Secret, "d-1", until), until, Secret));

    [Fact]
    public void A_visitors_user_id_is_stable_per_device_kind_and_network_and_does_not_show_the_device_id()
    {
        var first = VisitorIdentity.UserIdFor("net-1", Users.UserKind.Visitor, "device-secret-123");

        Assert.Equal(first, VisitorIdentity.UserIdFor("net-1", Users.UserKind.Visitor, "device-secret-123"));
        Assert.NotEqual(first, VisitorIdentity.UserIdFor("net-1", Users.UserKind.Visitor, "device-secret-124"));
        Assert.StartsWith("bot-", VisitorIdentity.UserIdFor("net-1", Users.UserKind.Bot, "device-secret-123"), StringComparison.Ordinal);
        Assert.StartsWith("visitor-", first, StringComparison.Ordinal);
        Assert.DoesNotContain("device", first, StringComparison.Ordinal);
        Assert.NotEqual(first, VisitorIdentity.UserIdFor("net-2", Users.UserKind.Visitor, "device-secret-123"));
    }

    private static string OpenSslHmac(string text, string key)
    {
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("openssl", ["dgst", "-sha256", "-hmac", key])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        })!;
        process.StandardInput.Write(text);
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return output.Trim().Split(' ')[^1];
    }
}
