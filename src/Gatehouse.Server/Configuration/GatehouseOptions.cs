using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Configuration;

/// <summary>The whole configuration tree, bound from the "Gatehouse" section (env: Gatehouse__Name).</summary>
internal sealed class GatehouseOptions
{
    public const string Section = "Gatehouse";

    /// <summary>Where the SQLite file and the Data Protection key ring live.</summary>
    public string DataDirectory { get; set; } = "./data";

    /// <summary>The one region this deployment serves: eu, sg or us.</summary>
    public string Region { get; set; } = "sg";

    /// <summary>Where each region's API lives, named in the error a key of another region gets.</summary>
    public Dictionary<string, string> RegionHosts { get; set; } = new(StringComparer.Ordinal)
    {
        ["eu"] = "https://apix.eu.amity.co/",
        ["sg"] = "https://apix.sg.amity.co/",
        ["us"] = "https://apix.us.amity.co/",
    };

    public DatabaseOptions Database { get; set; } = new();

    /// <summary>How long a replaced server key keeps working (0 to 24 hours).</summary>
    public TimeSpan ServerKeyGracePeriod { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Server keys kept in memory for the mint path, by digest (about 1 KB each; 0 turns the cache off). Any
    /// committed change to a key or a network makes them stale, on other nodes too (docs/deployment.md, "Node caches").
    /// </summary>
    public int ServerKeyCacheEntries { get; set; } = 10_000;

    /// <summary>How long a replaced admin token keeps working (0 to 24 hours).</summary>
    public TimeSpan AdminTokenGracePeriod { get; set; } = TimeSpan.FromHours(24);

    public SessionOptions Sessions { get; set; } = new();

    public InputLimits Limits { get; set; } = new();

    public ConsoleOptions Console { get; set; } = new();

    public MtlsOptions Mtls { get; set; } = new();

    public HttpsOptions Https { get; set; } = new();

    public RateLimitOptions RateLimits { get; set; } = new();

    public AuditOptions Audit { get; set; } = new();

    public ForwardedHeadersSettings ForwardedHeaders { get; set; } = new();

    public BootstrapOptions Bootstrap { get; set; } = new();

    public KeyEncryptionOptions KeyEncryption { get; set; } = new();

    public RetentionOptions Retention { get; set; } = new();

    public VisitorOptions Visitors { get; set; } = new();

    /// <summary>
    /// The deployment's public base URL (say <c>https://auth.example.com</c>): the <c>iss</c> of every token and the base
    /// of the discovery document's URLs. Unset: the first HTTP(S) address the server listens on (SQLite), or
    /// <see cref="Issuer"/> (PostgreSQL, whose nodes must all name the same issuer).
    /// </summary>
    public string? PublicUrl { get; set; }

    /// <summary>The fixed issuer of releases before 0.2.0: tokens carrying it are still accepted until they expire.</summary>
    public string Issuer { get; set; } = "gatehouse";
}

/// <summary>Load balancers whose X-Forwarded-For names the client (docs/deployment.md); nobody else's is read.</summary>
internal sealed class ForwardedHeadersSettings
{
    /// <summary>The proxies' own addresses (IP addresses). Empty: X-Forwarded-For is ignored and the peer is the client.</summary>
    public List<string> TrustedProxies { get; set; } = [];
}

internal sealed class AuditOptions
{
    /// <summary>Events waiting for the background writer; past it an event is dropped, logged as an error and counted (gatehouse.audit.dropped).</summary>
    public int QueueCapacity { get; set; } = 100_000;
}

/// <summary>What the retention service deletes, and how often it looks (docs/operations.md).</summary>
internal sealed class RetentionOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>Audit events older than this are deleted.</summary>
    public TimeSpan AuditEvents { get; set; } = TimeSpan.FromDays(400);

    /// <summary>
    /// Sessions ended (logged out, revoked, past their absolute lifetime or their last refresh token) longer ago than
    /// this are deleted with their refresh tokens. Until then a reused refresh token of theirs is still recognised.
    /// </summary>
    public TimeSpan EndedSessions { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Spent or expired refresh tokens of live sessions, past their own expiry by this much, are deleted.</summary>
    public TimeSpan SpentRefreshTokens { get; set; } = TimeSpan.FromDays(7);

    public TimeSpan Interval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Visitors and bots with no session that lasted into this period are deleted with their sessions (the hosted
    /// product deletes inactive visitors after 30 to 60 days).
    /// </summary>
    public TimeSpan InactiveVisitors { get; set; } = TimeSpan.FromDays(60);
}

/// <summary>Visitors and bots (docs/api.md, "Visitors and bots").</summary>
internal sealed class VisitorOptions
{
    /// <summary>
    /// How far ahead a visitor's <c>authSignatureExpiresAt</c> may lie: a backend that signs for longer hands out
    /// a signature that outlives any change of mind (1 minute to 7 days).
    /// </summary>
    public TimeSpan SignatureMaxAhead { get; set; } = TimeSpan.FromHours(24);
}

internal sealed class DatabaseOptions
{
    /// <summary>Sqlite (default, one node) or PostgreSQL (one or more nodes).</summary>
    public string Provider { get; set; } = "Sqlite";

    /// <summary>Sqlite: empty means a file named gatehouse.db in the data directory. PostgreSQL: required (Npgsql form).</summary>
    public string? ConnectionString { get; set; }
}

internal sealed class SessionOptions
{
    /// <summary>The social.plus contract fixes 30 days; shorter is allowed for stricter deployments.</summary>
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How long a refresh token may be redeemed after it was issued.</summary>
    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(60);

    /// <summary>How long a session may last from its login, however often it is refreshed: then the user logs in again.</summary>
    public TimeSpan AbsoluteLifetime { get; set; } = TimeSpan.FromDays(90);

    /// <summary>Live sessions one user may hold on one device; the oldest end first.</summary>
    public int MaxPerUserAndDevice { get; set; } = 5;

    /// <summary>
    /// Tokens whose signature was verified, kept so the same token is not verified again (about 0.5 KB each;
    /// 0 turns the cache off). The session's liveness is read on every request regardless. As many as
    /// <see cref="LiveSessionCacheEntries"/>: a session kept in memory is not read again, nor should its token be
    /// verified again (docs/benchmarks.md, change 70).
    /// </summary>
    public int VerifiedTokenCacheEntries { get; set; } = 50_000;

    /// <summary>
    /// Sessions kept in memory for the bearer check (about 1 KB each; 0 turns the cache off). Any
    /// committed change to a session or user makes them stale, on other nodes too (docs/deployment.md, "Node caches").
    /// </summary>
    public int LiveSessionCacheEntries { get; set; } = 50_000;

    /// <summary>
    /// The most session changes (logins, refreshes, logouts) written in one transaction (group commit); 1 commits
    /// each on its own. Each is still answered only after its transaction is durable.
    /// </summary>
    public int MaxChangesPerCommit { get; set; } = 256;
}

internal sealed class ConsoleOptions
{
    /// <summary>Wrong passwords in a row before an account locks.</summary>
    public int MaxFailedSignIns { get; set; } = 5;

    public TimeSpan LockoutDuration { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>A console sign-in lasts this long without use.</summary>
    public TimeSpan SessionIdleTimeout { get; set; } = TimeSpan.FromHours(8);
}

internal sealed class MtlsOptions
{
    /// <summary>How long an issued client certificate is valid.</summary>
    public TimeSpan CertificateValidity { get; set; } = TimeSpan.FromDays(365);

    /// <summary>Behind a TLS-terminating proxy: the header it puts the client certificate in. Off when empty.</summary>
    public string? ForwardedCertificateHeader { get; set; }

    /// <summary>The proxies whose forwarded certificate header is believed; from any other address it is ignored.</summary>
    public List<string> TrustedProxies { get; set; } = [];
}

/// <summary>Fixed one-minute windows, counted per node (a deployment of N nodes allows N times as much).</summary>
internal sealed class RateLimitOptions
{
    public bool Enabled { get; set; } = true;
    public int SessionsPerApiKeyPerMinute { get; set; } = 60_000;
    public int SessionsPerAddressPerMinute { get; set; } = 600;
    public int RefreshesPerSessionPerMinute { get; set; } = 30;
    public int AuthTokensPerServerKeyPerMinute { get; set; } = 60_000;
    public int AdminCallsPerTokenPerMinute { get; set; } = 600;

    /// <summary>Token introspections per server key: a resource server checks each token at most once per its cache window.</summary>
    public int IntrospectionsPerServerKeyPerMinute { get; set; } = 60_000;
    public int ConsoleSignInsPerAddressPerMinute { get; set; } = 30;

    /// <summary>Refused credentials (bearer, server key, admin token, API key) from one client address; past it, 429 before any check.</summary>
    public int FailedCredentialsPerAddressPerMinute { get; set; } = 120;

    /// <summary>Refusals of one presented credential (the same wrong key or token again); past it, 429 before any check.</summary>
    public int FailuresPerCredentialPerMinute { get; set; } = 30;
}

internal sealed class HttpsOptions
{
    /// <summary>PEM certificate (chain) for the HTTPS endpoint; empty: a self-signed one made on first start.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM private key of that certificate.</summary>
    public string? KeyPath { get; set; }

    /// <summary>
    /// Host names and IP addresses the self-signed certificate covers (without CertificatePath). A kept certificate
    /// that does not cover them all is replaced at start, so clients pinning it must pin the new one.
    /// </summary>
    public List<string> SelfSignedNames { get; set; } = ["localhost", "127.0.0.1", "::1"];
}

/// <summary>
/// The key-encryption key (docs/security.md, "Keys at rest"): give one of the two. With neither, SQLite makes the
/// file <c>key-encryption.key</c> in the data folder on first start; PostgreSQL refuses to start.
/// </summary>
internal sealed class KeyEncryptionOptions
{
    /// <summary>The key itself, base64 of 32 bytes (from a secret store, as Gatehouse__KeyEncryption__Key).</summary>
    public string? Key { get; set; }

    /// <summary>A file holding the key. On SQLite it is made (0600) on first start when missing; on PostgreSQL it must exist.</summary>
    public string? KeyFile { get; set; }
}

/// <summary>Where the first start's secrets go.</summary>
internal sealed class BootstrapOptions
{
    /// <summary>
    /// For unattended installs: the API key and one-time password of the first start are written to this file
    /// (created 0600) instead of the terminal, which then only says where they are.
    /// </summary>
    public string? SecretsFile { get; set; }
}

internal sealed class InputLimits
{
    public int MaxBodyBytes { get; set; } = 16 * 1024;
    public int UserIdMaxLength { get; set; } = 128;
    public int DeviceIdMaxLength { get; set; } = 128;
    public int DisplayNameMaxLength { get; set; } = 100;
}

/// <summary>Refuses to start on a bad value, naming the setting and the value it wants.</summary>
internal sealed class GatehouseOptionsValidator : IValidateOptions<GatehouseOptions>
{
    /// <summary>Why the provider's own parser refuses the connection string (never its text: it may hold a password).</summary>
    private static string? UnreadableConnectionString(DatabaseOptions database)
    {
        try
        {
            _ = database.Provider == "PostgreSQL"
                ? new Npgsql.NpgsqlConnectionStringBuilder(database.ConnectionString).ConnectionString
                : new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(database.ConnectionString).ConnectionString;
            return null;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException or KeyNotFoundException)
        {
            return e.Message;
        }
    }

    public static readonly IReadOnlyList<string> KnownRegions = ["eu", "sg", "us"];

    public ValidateOptionsResult Validate(string? name, GatehouseOptions options)
    {
        var failures = new List<string>();
        const string p = GatehouseOptions.Section;

        if (string.IsNullOrWhiteSpace(options.DataDirectory))
            failures.Add($"{p}:DataDirectory must name a folder.");
        if (!KnownRegions.Contains(options.Region))
            failures.Add($"{p}:Region is '{options.Region}'; it must be one of {string.Join(", ", KnownRegions)}.");
        foreach (var region in KnownRegions)
        {
            if (!options.RegionHosts.TryGetValue(region, out var host) || !Uri.TryCreate(host, UriKind.Absolute, out _))
                failures.Add($"{p}:RegionHosts:{region} must be an absolute URL.");
        }
        if (options.Database.Provider is not ("Sqlite" or "PostgreSQL"))
            failures.Add($"{p}:Database:Provider is '{options.Database.Provider}'; it must be Sqlite or PostgreSQL.");
        if (options.Database.Provider is "PostgreSQL" && string.IsNullOrWhiteSpace(options.Database.ConnectionString))
            failures.Add($"{p}:Database:ConnectionString is required with PostgreSQL (for example Host=db;Database=gatehouse;Username=gatehouse;Password=…).");
        else if (!string.IsNullOrWhiteSpace(options.Database.ConnectionString) && UnreadableConnectionString(options.Database) is { } unreadable)
            failures.Add($"{p}:Database:ConnectionString cannot be read: {unreadable}");
        if (options.ServerKeyCacheEntries is < 0 or > 1_000_000)
            failures.Add($"{p}:ServerKeyCacheEntries is {options.ServerKeyCacheEntries}; it must be between 0 (off) and 1000000.");
        if (options.ServerKeyGracePeriod < TimeSpan.Zero || options.ServerKeyGracePeriod > TimeSpan.FromHours(24))
            failures.Add($"{p}:ServerKeyGracePeriod is {options.ServerKeyGracePeriod}; it must be between 00:00:00 and 24:00:00.");
        if (options.AdminTokenGracePeriod < TimeSpan.Zero || options.AdminTokenGracePeriod > TimeSpan.FromHours(24))
            failures.Add($"{p}:AdminTokenGracePeriod is {options.AdminTokenGracePeriod}; it must be between 00:00:00 and 24:00:00.");
        if (options.Sessions.AccessTokenLifetime <= TimeSpan.Zero || options.Sessions.AccessTokenLifetime > TimeSpan.FromDays(30))
            failures.Add($"{p}:Sessions:AccessTokenLifetime is {options.Sessions.AccessTokenLifetime}; it must be more than zero and at most 30 days.");
        if (options.Sessions.RefreshTokenLifetime < options.Sessions.AccessTokenLifetime || options.Sessions.RefreshTokenLifetime > TimeSpan.FromDays(365))
            failures.Add($"{p}:Sessions:RefreshTokenLifetime is {options.Sessions.RefreshTokenLifetime}; it must be at least the access token lifetime and at most 365 days.");
        if (options.Sessions.AbsoluteLifetime < options.Sessions.AccessTokenLifetime || options.Sessions.AbsoluteLifetime > TimeSpan.FromDays(3650))
            failures.Add($"{p}:Sessions:AbsoluteLifetime is {options.Sessions.AbsoluteLifetime}; it must be at least the access token lifetime and at most 3650 days.");
        if (options.Sessions.MaxPerUserAndDevice is < 1 or > 100)
            failures.Add($"{p}:Sessions:MaxPerUserAndDevice is {options.Sessions.MaxPerUserAndDevice}; it must be between 1 and 100.");
        if (options.Sessions.VerifiedTokenCacheEntries is < 0 or > 1_000_000)
            failures.Add($"{p}:Sessions:VerifiedTokenCacheEntries is {options.Sessions.VerifiedTokenCacheEntries}; it must be between 0 (off) and 1000000.");
        if (options.Sessions.LiveSessionCacheEntries is < 0 or > 1_000_000)
            failures.Add($"{p}:Sessions:LiveSessionCacheEntries is {options.Sessions.LiveSessionCacheEntries}; it must be between 0 (off) and 1000000.");
        if (options.Sessions.MaxChangesPerCommit is < 1 or > 10_000)
            failures.Add($"{p}:Sessions:MaxChangesPerCommit is {options.Sessions.MaxChangesPerCommit}; it must be between 1 and 10000.");
        if (options.Limits.MaxBodyBytes is < 1024 or > 1024 * 1024)
            failures.Add($"{p}:Limits:MaxBodyBytes is {options.Limits.MaxBodyBytes}; it must be between 1024 and 1048576.");
        CheckLength(failures, "UserIdMaxLength", options.Limits.UserIdMaxLength);
        CheckLength(failures, "DeviceIdMaxLength", options.Limits.DeviceIdMaxLength);
        CheckLength(failures, "DisplayNameMaxLength", options.Limits.DisplayNameMaxLength);
        if (options.Console.MaxFailedSignIns is < 1 or > 100)
            failures.Add($"{p}:Console:MaxFailedSignIns is {options.Console.MaxFailedSignIns}; it must be between 1 and 100.");
        if (options.Console.LockoutDuration < TimeSpan.FromMinutes(1) || options.Console.LockoutDuration > TimeSpan.FromDays(1))
            failures.Add($"{p}:Console:LockoutDuration is {options.Console.LockoutDuration}; it must be between 00:01:00 and 1.00:00:00.");
        if (options.Console.SessionIdleTimeout < TimeSpan.FromMinutes(5) || options.Console.SessionIdleTimeout > TimeSpan.FromDays(7))
            failures.Add($"{p}:Console:SessionIdleTimeout is {options.Console.SessionIdleTimeout}; it must be between 00:05:00 and 7.00:00:00.");
        if (options.Mtls.CertificateValidity < TimeSpan.FromDays(1) || options.Mtls.CertificateValidity > TimeSpan.FromDays(825))
            failures.Add($"{p}:Mtls:CertificateValidity is {options.Mtls.CertificateValidity}; it must be between 1 and 825 days.");
        foreach (var proxy in options.Mtls.TrustedProxies.Where(proxy => !System.Net.IPAddress.TryParse(proxy, out _)))
            failures.Add($"{p}:Mtls:TrustedProxies has '{proxy}', which is not an IP address.");
        if (!string.IsNullOrEmpty(options.Mtls.ForwardedCertificateHeader) && options.Mtls.TrustedProxies.Count == 0)
            failures.Add($"{p}:Mtls:ForwardedCertificateHeader is set but {p}:Mtls:TrustedProxies is empty; name the proxies allowed to forward certificates.");
        if (string.IsNullOrEmpty(options.Https.CertificatePath) != string.IsNullOrEmpty(options.Https.KeyPath))
            failures.Add($"{p}:Https:CertificatePath and {p}:Https:KeyPath must be given together.");
        else if (!string.IsNullOrEmpty(options.Https.CertificatePath) && (!File.Exists(options.Https.CertificatePath) || !File.Exists(options.Https.KeyPath)))
            failures.Add($"{p}:Https:CertificatePath or KeyPath names a file that does not exist.");
        foreach (var (setting, value) in new[]
        {
            ("SessionsPerApiKeyPerMinute", options.RateLimits.SessionsPerApiKeyPerMinute),
            ("SessionsPerAddressPerMinute", options.RateLimits.SessionsPerAddressPerMinute),
            ("RefreshesPerSessionPerMinute", options.RateLimits.RefreshesPerSessionPerMinute),
            ("AuthTokensPerServerKeyPerMinute", options.RateLimits.AuthTokensPerServerKeyPerMinute),
            ("AdminCallsPerTokenPerMinute", options.RateLimits.AdminCallsPerTokenPerMinute),
            ("IntrospectionsPerServerKeyPerMinute", options.RateLimits.IntrospectionsPerServerKeyPerMinute),
            ("ConsoleSignInsPerAddressPerMinute", options.RateLimits.ConsoleSignInsPerAddressPerMinute),
            ("FailedCredentialsPerAddressPerMinute", options.RateLimits.FailedCredentialsPerAddressPerMinute),
            ("FailuresPerCredentialPerMinute", options.RateLimits.FailuresPerCredentialPerMinute),
        })
        {
            if (value is < 1 or > 10_000_000)
                failures.Add($"{p}:RateLimits:{setting} is {value}; it must be between 1 and 10000000 (or set {p}:RateLimits:Enabled to false).");
        }
        foreach (var proxy in options.ForwardedHeaders.TrustedProxies.Where(proxy => !System.Net.IPAddress.TryParse(proxy, out _)))
            failures.Add($"{p}:ForwardedHeaders:TrustedProxies has '{proxy}', which is not an IP address.");
        foreach (var host in options.Https.SelfSignedNames.Where(n => Uri.CheckHostName(n) is UriHostNameType.Unknown or UriHostNameType.Basic))
            failures.Add($"{p}:Https:SelfSignedNames has '{host}', which is neither a host name nor an IP address.");
        if (options.Https.SelfSignedNames.Count == 0)
            failures.Add($"{p}:Https:SelfSignedNames is empty; name at least one host the self-signed certificate is for.");
        if (options.Audit.QueueCapacity is < 16 or > 10_000_000)
            failures.Add($"{p}:Audit:QueueCapacity is {options.Audit.QueueCapacity}; it must be between 16 and 10000000.");
        foreach (var (setting, value, least) in new[]
        {
            ("AuditEvents", options.Retention.AuditEvents, TimeSpan.FromDays(1)),
            ("EndedSessions", options.Retention.EndedSessions, TimeSpan.FromHours(1)),
            ("SpentRefreshTokens", options.Retention.SpentRefreshTokens, TimeSpan.Zero),
            ("Interval", options.Retention.Interval, TimeSpan.FromMinutes(1)),
            ("InactiveVisitors", options.Retention.InactiveVisitors, TimeSpan.FromDays(1)),
        })
        {
            if (value < least || value > TimeSpan.FromDays(36_500))
                failures.Add($"{p}:Retention:{setting} is {value}; it must be at least {least} and at most 36500 days.");
        }
        if (options.Visitors.SignatureMaxAhead < TimeSpan.FromMinutes(1) || options.Visitors.SignatureMaxAhead > TimeSpan.FromDays(7))
            failures.Add($"{p}:Visitors:SignatureMaxAhead is {options.Visitors.SignatureMaxAhead}; it must be between 1 minute and 7 days.");
        CheckKeyEncryption(failures, options);
        if (string.IsNullOrWhiteSpace(options.Issuer))
            failures.Add($"{p}:Issuer must not be empty.");
        if (options.PublicUrl is { } publicUrl
            && !(Uri.TryCreate(publicUrl, UriKind.Absolute, out var parsed) && parsed.Scheme is "http" or "https"
                 && string.IsNullOrEmpty(parsed.Query) && string.IsNullOrEmpty(parsed.Fragment) && string.IsNullOrEmpty(parsed.UserInfo)))
        {
            failures.Add($"{p}:PublicUrl is '{publicUrl}'; it must be an absolute http or https URL without query, fragment or user name " +
                "(the address clients and resource servers reach this deployment at, such as https://auth.example.com).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckKeyEncryption(List<string> failures, GatehouseOptions options)
    {
        const string p = GatehouseOptions.Section + ":KeyEncryption";
        const string make = "make one with `Gatehouse.Server key-encryption-key new`";
        var settings = options.KeyEncryption;
        var hasKey = !string.IsNullOrWhiteSpace(settings.Key);
        var hasFile = !string.IsNullOrWhiteSpace(settings.KeyFile);
        if (hasKey && hasFile)
            failures.Add($"{p}:Key and {p}:KeyFile are both set; give the key-encryption key one way only.");
        else if (hasKey && KeysAtRest.KeyEncryptionKey.Parse(settings.Key!) is null)
            failures.Add($"{p}:Key is not base64 of {KeysAtRest.KeyEncryptionKey.Length} bytes; {make}.");
        else if (!hasKey && !hasFile && options.Database.Provider == "PostgreSQL")
            failures.Add($"{p}:Key or {p}:KeyFile is required with PostgreSQL: every node must be given the same key-encryption key, which is never stored in the database; {make}.");
        else if (hasFile && !File.Exists(settings.KeyFile) && options.Database.Provider == "PostgreSQL")
            failures.Add($"{p}:KeyFile names '{settings.KeyFile}', which does not exist; with PostgreSQL every node must be given the same key file ({make}).");
        else if (hasFile && Directory.Exists(settings.KeyFile))
            failures.Add($"{p}:KeyFile '{settings.KeyFile}' is a folder; name a file.");
        else if (hasFile && File.Exists(settings.KeyFile) && UnreadableKeyFile(settings.KeyFile!) is { } unreadable)
            failures.Add($"{p}:KeyFile '{settings.KeyFile}' {unreadable}");
    }

    private static string? UnreadableKeyFile(string path)
    {
        try
        {
            return KeysAtRest.KeyEncryptionKey.Parse(File.ReadAllText(path)) is null
                ? $"does not hold base64 of {KeysAtRest.KeyEncryptionKey.Length} bytes; make one with `Gatehouse.Server key-encryption-key new`."
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot be read by this account: {e.Message}";
        }
    }

    private static void CheckLength(List<string> failures, string setting, int value)
    {
        if (value is < 1 or > 1024)
            failures.Add($"{GatehouseOptions.Section}:Limits:{setting} is {value}; it must be between 1 and 1024.");
    }
}
