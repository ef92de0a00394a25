using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Gatehouse.Server.Refusals;

namespace Gatehouse.Server.Visitors;

/// <summary>
/// The signature a customer's backend gives a visitor's device in secure mode, as the hosted product defines it:
/// HMAC-SHA256 in hex over <c>deviceId=&lt;deviceId&gt;&amp;authSignatureExpiresAt=&lt;time as sent&gt;</c>, keyed with
/// the text of one of the network's visitor secrets. Pure: no clock, no database (VisitorSignatureTests).
/// </summary>
internal static partial class VisitorSignature
{
    public const int SignatureMaxLength = 128;
    public const int ExpiresAtMaxLength = 64;

    /// <summary>What the backend signs: the time exactly as it will be sent, never re-formatted.</summary>
    public static byte[] SignedText(string deviceId, string expiresAt) =>
        Encoding.UTF8.GetBytes($"deviceId={deviceId}&authSignatureExpiresAt={expiresAt}");

    public static string Compute(string secret, string deviceId, string expiresAt) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), SignedText(deviceId, expiresAt)));

    /// <summary>
    /// Null when <paramref name="signature"/> signs this device until a time still ahead, but no further than
    /// <paramref name="maxAhead"/>, under one of <paramref name="secrets"/>; otherwise why not. A signature is good for
    /// any number of logins until it expires (the SDK renews with the one it holds), and for no other device.
    /// </summary>
    public static Refusal? Check(string deviceId, string? signature, string? expiresAt, IReadOnlyList<string> secrets, DateTimeOffset now, TimeSpan maxAhead)
    {
        if (string.IsNullOrEmpty(signature) || string.IsNullOrEmpty(expiresAt))
            return Errors.VisitorSignatureRequired;
        if (expiresAt.Length > ExpiresAtMaxLength || !IsoTime().IsMatch(expiresAt)
            || !DateTimeOffset.TryParse(expiresAt, CultureInfo.InvariantCulture, DateTimeStyles.None, out var until))
        {
            return Errors.VisitorSignatureTime;
        }
        if (signature.Length != 64 || !IsHex(signature))
            return Errors.VisitorSignatureInvalid;
        if (until <= now)
            return Errors.VisitorSignatureExpired;
        if (until > now + maxAhead)
            return Errors.VisitorSignatureTooFarAhead(maxAhead);

        var presented = Convert.FromHexString(signature);
        var signed = SignedText(deviceId, expiresAt);
        var matched = false;
        // Every secret is tried, so the time taken says nothing about which one (if any) matched.
        foreach (var secret in secrets)
            matched |= CryptographicOperations.FixedTimeEquals(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed), presented);
        return matched ? null : Errors.VisitorSignatureInvalid;
    }

    private static bool IsHex(string text) => text.All(char.IsAsciiHexDigit);

    /// <summary>ISO 8601 with a zone (Z or an offset): a time without one would mean a different instant on each side.</summary>
    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})$", RegexOptions.CultureInvariant)]
    private static partial Regex IsoTime();
}
