using System.Collections.Concurrent;
using Gatehouse.Server.Api;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Tokens;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.RateLimits;

/// <summary>
/// Refused credentials, counted per client address and per presented credential in one-minute windows, per node.
/// Past either limit a request is answered 429 before its credential is looked at, so a flood of guesses costs no
/// signature check and no database read, and writes no audit row of its own. Only refusals count: a client with a
/// good credential is never slowed by this. Credentials are counted by digest, never kept.
/// </summary>
public sealed class CredentialFailures(IOptions<GatehouseOptions> options, TimeProvider clock)
{
    /// <summary>Beyond this many counted keys, windows already over are dropped first; a spray of addresses cannot grow it without end.</summary>
    private const int MaxKeys = 200_000;

    private readonly ConcurrentDictionary<string, Window> _counts = new(StringComparer.Ordinal);

    private sealed class Window(long minute)
    {
        public long Minute { get; } = minute;
        public int Failures;
    }

    /// <summary>A 429 for a request from an address, or with a credential, that already failed too often this minute; else null.</summary>
    public ApiError? Refusal(HttpContext http, string kind, string? presented)
    {
        var limits = options.Value.RateLimits;
        if (!limits.Enabled || _counts.IsEmpty)
            return null;
        var minute = Minute();
        if (Over(AddressKey(http), minute, limits.FailedCredentialsPerAddressPerMinute)
            || (!string.IsNullOrEmpty(presented) && Over(CredentialKey(kind, presented), minute, limits.FailuresPerCredentialPerMinute)))
            return Errors.TooManyRequests(SecondsLeft());
        return null;
    }

    /// <summary>Counts one refused credential (or a request that presented none) against its address and itself.</summary>
    public void Failed(HttpContext http, string kind, string? presented)
    {
        if (!options.Value.RateLimits.Enabled)
            return;
        var minute = Minute();
        if (_counts.Count >= MaxKeys)
            Prune(minute);
        Count(AddressKey(http), minute);
        if (!string.IsNullOrEmpty(presented))
            Count(CredentialKey(kind, presented), minute);
    }

    private bool Over(string key, long minute, int limit) =>
        _counts.TryGetValue(key, out var window) && window.Minute == minute && Volatile.Read(ref window.Failures) >= limit;

    private void Count(string key, long minute)
    {
        var window = _counts.AddOrUpdate(key, _ => new Window(minute), (_, current) => current.Minute == minute ? current : new Window(minute));
        Interlocked.Increment(ref window.Failures);
    }

    private void Prune(long minute)
    {
        foreach (var (key, window) in _counts)
        {
            if (window.Minute != minute)
                _counts.TryRemove(key, out _);
        }
        // Still full within one minute: the oldest counts are lost rather than memory.
        if (_counts.Count >= MaxKeys)
            _counts.Clear();
    }

    private long Minute() => clock.GetUtcNow().ToUnixTimeSeconds() / 60;

    private int SecondsLeft() => (int)(60 - (clock.GetUtcNow().ToUnixTimeSeconds() % 60));

    private static string AddressKey(HttpContext http) => "address:" + (http.Connection.RemoteIpAddress?.ToString() ?? "unknown");

    private static string CredentialKey(string kind, string presented) =>
        // A presented value longer than any real credential is counted by its first part: hashing megabytes per guess would be the attack.
        kind + ":" + Secrets.Digest(presented.Length > 4096 ? presented[..4096] : presented);
}

/// <summary>The kinds of credential counted by <see cref="CredentialFailures"/>.</summary>
public static class CredentialKinds
{
    public const string Bearer = "bearer";
    public const string ServerKey = "server-key";
    public const string AdminToken = "admin-token";
    public const string ApiKey = "api-key";
}
