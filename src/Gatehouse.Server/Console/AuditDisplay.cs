using System.Collections.Frozen;
using System.Globalization;
using System.Text.RegularExpressions;
using Gatehouse.Server.Audit;

namespace Gatehouse.Server.Console;

/// <summary>One named field of an event's detail, as the audit page shows it.</summary>
/// <param name="Title">What the shown value stands for when it replaced one (an admin's id behind its email).</param>
internal sealed record DetailField(string Label, string Value, string? Title = null);

/// <summary>An event's detail as shown: named fields, or the stored text as it is when it is not a list of fields.</summary>
internal sealed record ShownDetail(IReadOnlyList<DetailField> Fields, string? Text)
{
    public static readonly ShownDetail None = new([], null);
}

/// <summary>An event's actor as shown: who (an email, a userId, "operator") and what kind of actor it is.</summary>
/// <param name="Title">The actor as stored, when what is shown is shorter.</param>
internal sealed record ShownActor(string Name, string? KindLabel, string? Title = null);

/// <summary>
/// How the audit page shows what the log stores. Display only: the stored rows, the CSV export and the admin API keep
/// the stored text. A detail is a list of <c>key=value</c> fields separated by spaces (a value may hold spaces: it runs
/// to the next <c>key=</c>), or free text ("on; ended 3 session(s) …", "reason: …"), shown as it is.
/// </summary>
internal static partial class AuditDisplay
{
    /// <summary>Labels that the key, its underscores turned into spaces, would not give.</summary>
    private static readonly FrozenDictionary<string, string> Labels = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["access_secure_mode"] = "Access Secure Mode",
        ["super_admin"] = "Super admin",
        ["mtls"] = "Client certificate (mTLS)",
        ["key"] = "Server key",
        ["secret"] = "Visitor secret",
        ["token"] = "Admin token",
        ["previous"] = "Previous token",
        ["mention"] = "Mentioned channels",
        ["preview"] = "Message preview",
        ["preview_deleted"] = "Preview of deleted messages",
        ["marker"] = "Read markers",
        ["enabled"] = "Chat enabled",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private static readonly FrozenDictionary<string, string> KindLabels = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [AuditKinds.NetworkCreated] = "Network created",
        [AuditKinds.ApiKeyRegenerated] = "API key regenerated",
        [AuditKinds.SecureModeChanged] = "Secure mode changed",
        [AuditKinds.AuthTokenUseChanged] = "Auth token use changed",
        [AuditKinds.VisitorModeChanged] = "Visitors allowed or refused",
        [AuditKinds.BotModeChanged] = "Bots allowed or refused",
        [AuditKinds.VisitorSecretGenerated] = "Visitor secret generated",
        [AuditKinds.UsersPruned] = "Inactive users pruned",
        [AuditKinds.ServerKeyGenerated] = "Server key generated",
        [AuditKinds.ServerKeyRefused] = "Server key refused",
        [AuditKinds.AuthTokenMinted] = "Auth token minted",
        [AuditKinds.AuthTokenRefused] = "Auth token refused",
        [AuditKinds.SessionCreated] = "Session opened",
        [AuditKinds.SessionRefused] = "Session refused",
        [AuditKinds.SessionRefreshed] = "Session refreshed",
        [AuditKinds.SessionRevoked] = "Session ended",
        [AuditKinds.RefreshReuse] = "Refresh token reused",
        [AuditKinds.AccessRefused] = "Access refused",
        [AuditKinds.RateLimited] = "Over a rate limit",
        [AuditKinds.TokensIntrospected] = "Tokens introspected (a minute's count)",
        [AuditKinds.AdminCreated] = "Admin created",
        [AuditKinds.AdminSignedIn] = "Admin signed in",
        [AuditKinds.AdminSignInRefused] = "Admin sign-in refused",
        [AuditKinds.AdminSignedOut] = "Admin signed out",
        [AuditKinds.AdminPasswordChanged] = "Admin password changed",
        [AuditKinds.AdminPasswordReset] = "Admin password reset",
        [AuditKinds.AdminUnlocked] = "Admin unlocked",
        [AuditKinds.AdminRoleChanged] = "Admin rights changed",
        [AuditKinds.AdminRequested] = "Admin requested",
        [AuditKinds.AdminRequestDeclined] = "Admin request declined",
        [AuditKinds.ChatSettingsChanged] = "Chat settings changed",
        [AuditKinds.SigningKeyRotated] = "Signing key rotated",
        [AuditKinds.SigningKeyRetired] = "Signing key retired",
        [AuditKinds.AdminTokenGenerated] = "Admin token generated",
        [AuditKinds.AdminTokenRevoked] = "Admin token revoked",
        [AuditKinds.AdminTokenRefused] = "Admin token refused",
        [AuditKinds.CertificateCreated] = "Client certificate created",
        [AuditKinds.CertificateRevoked] = "Client certificate deleted",
        [AuditKinds.MtlsChanged] = "mTLS switched",
        [AuditKinds.MtlsRefused] = "Refused by mTLS",
        [AuditKinds.UserBanned] = "User banned",
        [AuditKinds.UserUnbanned] = "User unbanned",
        [AuditKinds.UserSessionsRevoked] = "All sessions of a user ended",
        [AuditKinds.AdminDisabled] = "Admin account disabled",
        [AuditKinds.AdminEnabled] = "Admin account enabled",
        [AuditKinds.TwoFactorEnabled] = "Two-factor sign-in turned on",
        [AuditKinds.TwoFactorDisabled] = "Two-factor sign-in turned off",
        [AuditKinds.RecoveryCodesGenerated] = "Recovery codes generated",
        [AuditKinds.RecoveryCodeUsed] = "Recovery code used",
        [AuditKinds.TwoFactorRequirementChanged] = "Two-factor requirement changed",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>A kind's readable name ("Server key generated"); an unknown kind, its code.</summary>
    public static string KindLabel(string kind) => KindLabels.GetValueOrDefault(kind, kind);

    public static string OutcomeLabel(string outcome) => outcome switch
    {
        Outcomes.Success => "Success",
        Outcomes.Refused => "Refused",
        _ => outcome,
    };

    /// <summary>
    /// The stored detail as named fields: "key=value key2=value2" gives Key: value, Key 2: value2; times to the second
    /// in UTC, True and False as yes and no, an admin's id (<c>admin=&lt;guid&gt;</c>) as its email when known. Words
    /// before the first key belong to its name ("inactive visitors=3"). Anything else is shown as it is.
    /// </summary>
    public static ShownDetail Detail(string? stored, IReadOnlyDictionary<Guid, string>? adminEmails = null)
    {
        if (string.IsNullOrWhiteSpace(stored))
            return ShownDetail.None;
        var keys = KeyRegex().Matches(stored);
        if (keys.Count == 0)
            return new ShownDetail([], stored);
        var lead = stored[..keys[0].Index];
        if (lead.Length > 0 && !LeadRegex().IsMatch(lead))
            return new ShownDetail([], stored);

        var fields = new List<DetailField>(keys.Count);
        for (var i = 0; i < keys.Count; i++)
        {
            var key = keys[i].Groups["key"].Value;
            var start = keys[i].Index + keys[i].Length;
            // The next key starts after the space that ends this value.
            var end = i + 1 < keys.Count ? keys[i + 1].Index - 1 : stored.Length;
            var value = stored[start..end];
            if (i == 0 && lead.Length > 0)
                key = lead.Trim().Replace(' ', '_') + "_" + key;
            fields.Add(Field(key, value, adminEmails));
        }
        return new ShownDetail(fields, null);
    }

    private static DetailField Field(string key, string value, IReadOnlyDictionary<Guid, string>? adminEmails)
    {
        var label = Labels.GetValueOrDefault(key) ?? Sentence(key);
        if (key == "admin" && Guid.TryParse(value, out var adminId))
        {
            return adminEmails is not null && adminEmails.TryGetValue(adminId, out var email)
                ? new DetailField(label, email, value)
                : new DetailField(label, value);
        }
        // Device ids are the app's own text, stored percent-encoded (SecurityEvents.SessionCreated).
        return new DetailField(label, key == "device" ? Uri.UnescapeDataString(value) : Value(value));
    }

    /// <summary>A stored value as read: a time to the second in UTC, a boolean as yes or no.</summary>
    public static string Value(string value)
    {
        if (bool.TryParse(value, out var flag))
            return flag ? "yes" : "no";
        if (value.StartsWith("valid_until_", StringComparison.Ordinal))
            return "valid until " + Value(value["valid_until_".Length..]);
        return IsoTimeRegex().Replace(value, m =>
            DateTimeOffset.TryParse(m.Value, CultureInfo.InvariantCulture, DateTimeStyles.None, out var at) ? Time(at) : m.Value);
    }

    /// <summary>The console's way of showing a time: to the second, with its zone, always UTC.</summary>
    public static string Time(DateTimeOffset at) => at.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC";

    /// <summary>
    /// The actor as read. Stored forms: <c>admin:&lt;email&gt;</c> (the console), <c>admin:&lt;email&gt; token:&lt;id&gt;</c>
    /// (the admin API), <c>user:&lt;userId&gt;</c>, <c>server-key:&lt;id&gt;</c> (a backend), <c>operator</c> (the command
    /// line), <c>bootstrap</c>, <c>retention</c>, <c>aggregate</c> (a summary of refusals), <c>api-key</c>,
    /// <c>bearer</c> and <c>anonymous</c> (a credential that named nobody).
    /// </summary>
    public static ShownActor Actor(string stored)
    {
        if (stored.StartsWith("admin:", StringComparison.Ordinal))
        {
            var rest = stored["admin:".Length..];
            var token = rest.IndexOf(" token:", StringComparison.Ordinal);
            return token < 0 ? new ShownActor(rest, "admin") : new ShownActor(rest[..token], "admin token", stored);
        }
        if (stored.StartsWith("user:", StringComparison.Ordinal))
            return new ShownActor(stored["user:".Length..], "user");
        if (stored.StartsWith("server-key:", StringComparison.Ordinal))
        {
            var id = stored["server-key:".Length..];
            return new ShownActor("server key " + (id.Length > 8 ? id[..8] + "…" : id), "backend", stored);
        }
        return stored switch
        {
            "operator" => new ShownActor("operator", "command line"),
            "bootstrap" => new ShownActor("bootstrap", "first start"),
            "retention" => new ShownActor("retention", "server"),
            "aggregate" => new ShownActor("aggregate", "refusals summed up"),
            "api-key" => new ShownActor("API key", "app"),
            "bearer" => new ShownActor("bearer token", "user's session"),
            "anonymous" => new ShownActor("anonymous", "no known credential"),
            _ => new ShownActor(stored, null),
        };
    }

    /// <summary>The admin ids the details of these events name (<c>admin=&lt;guid&gt;</c>), to be looked up at once.</summary>
    public static IReadOnlySet<Guid> AdminIds(IEnumerable<string?> details)
    {
        var ids = new HashSet<Guid>();
        foreach (var detail in details)
        {
            if (detail is null)
                continue;
            foreach (Match m in AdminIdRegex().Matches(detail))
            {
                if (Guid.TryParse(m.Groups["id"].Value, out var id))
                    ids.Add(id);
            }
        }
        return ids;
    }

    private static string Sentence(string key)
    {
        var words = key.Replace('_', ' ');
        return words.Length == 0 ? words : char.ToUpperInvariant(words[0]) + words[1..];
    }

    /// <summary>A key: lower-case letters and underscores, then '=', at the start or after a space.</summary>
    [GeneratedRegex(@"(?<=^| )(?<key>[a-z][a-z_]*)=")]
    private static partial Regex KeyRegex();

    /// <summary>Words that start a key's name ("inactive" in "inactive visitors=3").</summary>
    [GeneratedRegex(@"^[a-z]+( [a-z]+)* $")]
    private static partial Regex LeadRegex();

    [GeneratedRegex(@"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")]
    private static partial Regex IsoTimeRegex();

    [GeneratedRegex(@"(?<=^| )admin=(?<id>[0-9a-fA-F-]{36})(?= |$)")]
    private static partial Regex AdminIdRegex();
}
