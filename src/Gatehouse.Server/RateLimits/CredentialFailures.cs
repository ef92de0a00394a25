using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Tokens;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.RateLimits;

/// <summary>
/// Refused credentials, counted per client address and per presented credential in one-minute windows, per node.
/// Past either limit a request is answered 429 before its credential is looked at, so a flood of guesses costs no
/// signature check and no database read, and writes no audit row of its own. Only refusals count: a client with a
/// good credential is never slowed by this. Credentials are counted by digest, never kept.
/// </summary>
internal sealed class CredentialFailures(IOptions<GatehouseOptions> options, TimeProvider clock)
{
    /// <summary>Keys counted in one minute at most; a spray of addresses past it starts the minute's counts afresh rather than grow.</summary>
    private const int MaxKeys = 200_000;

    /// <summary>This minute's refusals by key. Emptied when the minute turns, so a quiet minute costs the checks nothing.</summary>
    private readonly ConcurrentDictionary<string, StrongBox<int>> _counts = new(StringComparer.Ordinal);
    private long _minute;

    /// <summary>A 429 for a request from an address, or with a credential, that already failed too often this minute; else null.</summary>
    public Refusal? Refusal(IPAddress? client, string kind, string? presented)
    {
        var limits = options.Value.RateLimits;
        if (!limits.Enabled || CurrentCounts().IsEmpty)
            return null;
        if (Over(AddressKey(client), limits.FailedCredentialsPerAddressPerMinute)
            || (!string.IsNullOrEmpty(presented) && Over(CredentialKey(kind, presented), limits.FailuresPerCredentialPerMinute)))
        {
            return Errors.TooManyRequests(SecondsLeft());
        }

        return null;
    }

    /// <summary>Counts one refused credential (or a request that presented none) against its address and itself.</summary>
    public void Failed(IPAddress? client, string kind, string? presented)
    {
        if (!options.Value.RateLimits.Enabled)
            return;
        var counts = CurrentCounts();
        if (counts.Count >= MaxKeys)
            counts.Clear();
        Count(counts, AddressKey(client));
        if (!string.IsNullOrEmpty(presented))
            Count(counts, CredentialKey(kind, presented));
    }

    private ConcurrentDictionary<string, StrongBox<int>> CurrentCounts()
    {
        var minute = clock.GetUtcNow().ToUnixTimeSeconds() / 60;
        // Read first: every request passes here, and a write each time would bounce the field between cores.
        if (Volatile.Read(ref _minute) != minute && Interlocked.Exchange(ref _minute, minute) != minute)
            _counts.Clear();
        return _counts;
    }

    private bool Over(string key, int limit) => _counts.TryGetValue(key, out var failures) && Volatile.Read(ref failures.Value) >= limit;

    private static void Count(ConcurrentDictionary<string, StrongBox<int>> counts, string key) =>
        Interlocked.Increment(ref counts.GetOrAdd(key, _ => new StrongBox<int>()).Value);

    private int SecondsLeft() => (int)(60 - (clock.GetUtcNow().ToUnixTimeSeconds() % 60));

    private static string AddressKey(IPAddress? client) => "address:" + (client?.ToString() ?? "unknown");

    private static string CredentialKey(string kind, string presented) =>
        // A presented value longer than any real credential is counted by its first part: hashing megabytes per guess would be the attack.
        kind + ":" + Secrets.Digest(presented.Length > 4096 ? presented[..4096] : presented);
}

/// <summary>The kinds of credential counted by <see cref="CredentialFailures"/>.</summary>
internal static class CredentialKinds
{
    public const string Bearer = "bearer";
    public const string ServerKey = "server-key";
    public const string AdminToken = "admin-token";
    public const string ApiKey = "api-key";
}
