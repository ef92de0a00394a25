using Gatehouse.Server.AuthTokens;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Bench.Micro;

/// <summary>
/// What one entry of the verified-token cache keeps alive, in bytes of managed heap after a full collection: the
/// figure <c>Gatehouse:Sessions:VerifiedTokenCacheEntries</c> is sized by (docs/operations.md). Measured for both ways
/// an access token enters the cache, signed here (every login and refresh) and verified from its text (a token this
/// node did not sign, or one the cache had let go), and for an auth token, which is not kept. Whatever the entry holds is counted, the token's text included
/// if the cache keeps it.
/// </summary>
internal static class CacheFootprint
{
    public static async Task RunAsync(int entries)
    {
        // Room for every token measured and the warm-up's, so no compaction lets any go meanwhile.
        await using var server = await MicroServer.StartAsync(new Dictionary<string, string?>
        {
            ["Gatehouse:Sessions:VerifiedTokenCacheEntries"] = (entries * 4).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var services = server.Services;
        var accessTokens = services.GetRequiredService<AccessTokens>();
        var jwt = services.GetRequiredService<Jwt>();
        var authTokens = services.GetRequiredService<AuthTokens>();
        var now = DateTimeOffset.UtcNow;

        // Warm every path once, so code and static state are not counted.
        await accessTokens.CheckAsync(Issue(accessTokens, now, 0));
        await accessTokens.CheckAsync(jwt.Sign(AccessTokens.Kind, Claims(0), now, now.AddHours(1)));
        await jwt.CheckAsync(authTokens.Mint(NetworkId, "user-00000000", Guid.NewGuid()).Token, AuthTokens.Kind);

        // Signed and let go, as a login hands its token to the app: what stays is what the cache keeps.
        var before = Heap();
        var textBytes = 0L;
        for (var i = 0; i < entries; i++)
            textBytes += TextBytes(Issue(accessTokens, now, i + 1));
        var signedHere = (Heap() - before) / entries;

        // Signed without being remembered, as by another node, so each enters the cache when it is checked.
        var (verifiedFromText, _) = await KeptWhenCheckedAsync(entries, i => jwt.Sign(AccessTokens.Kind, Claims(entries + i), now, now.AddHours(1)),
            token => jwt.CheckAsync(token, AccessTokens.Kind));
        // Auth tokens are not remembered (change 70): this shows they leave nothing behind.
        var (authTokenKept, authTokenBytes) = await KeptWhenCheckedAsync(entries, i => authTokens.Mint(NetworkId, $"user-{i:D8}", Guid.NewGuid()).Token,
            token => jwt.CheckAsync(token, AuthTokens.Kind));

        Console.WriteLine($"an access token's text: {textBytes / entries} bytes; an auth token's: {authTokenBytes} bytes");
        Console.WriteLine($"kept per access token signed here: {signedHere} bytes");
        Console.WriteLine($"kept per access token verified from its text: {verifiedFromText} bytes");
        Console.WriteLine($"kept per auth token checked (auth tokens are not remembered): {authTokenKept} bytes");
    }

    private const string NetworkId = "0123456789abcdef01234567";

    /// <summary>
    /// What checking <paramref name="count"/> tokens adds to the heap once they are let go (whatever the cache keeps of
    /// each), and a token's text.
    /// </summary>
    private static async Task<(long Kept, long Text)> KeptWhenCheckedAsync(int count, Func<int, string> make, Func<string, Task<JwtCheck>> check)
    {
        var before = Heap();
        var texts = await MakeAndCheckAsync(count, make, check);
        return ((Heap() - before) / count, texts / count);
    }

    /// <summary>
    /// The tokens live only in this method's frame, gone when it returns: measured from inside, unoptimized code
    /// (a run too short for the JIT to tier up) kept them alive and counted their text as the cache's.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static async Task<long> MakeAndCheckAsync(int count, Func<int, string> make, Func<string, Task<JwtCheck>> check)
    {
        var texts = 0L;
        for (var i = 0; i < count; i++)
        {
            var token = make(i + 1);
            texts += TextBytes(token);
            if ((await check(token)).Token is null)
                throw new InvalidOperationException("A token signed here was refused.");
        }
        return texts;
    }

    private static string Issue(AccessTokens accessTokens, DateTimeOffset now, int i)
    {
        var user = new User { Id = Guid.NewGuid().ToString("N"), NetworkId = NetworkId, UserId = $"user-{i:D8}" };
        var session = new Session { Id = Guid.CreateVersion7(), NetworkId = NetworkId, UserRef = user.Id, DeviceId = "device", ExpiresAt = now.AddHours(1) };
        return accessTokens.Issue(session, user, now);
    }

    private static Dictionary<string, object> Claims(int i) => new()
    {
        ["sub"] = $"user-{i:D8}",
        ["sid"] = Guid.CreateVersion7().ToString(),
        ["nid"] = NetworkId,
        ["user_type"] = "user",
        ["user"] = new Dictionary<string, object> { ["userId"] = $"user-{i:D8}", ["publicUserId"] = $"user-{i:D8}", ["networkId"] = NetworkId },
    };

    /// <summary>A string's size on a 64-bit runtime: header, length, characters and terminator, in 8-byte steps.</summary>
    private static long TextBytes(string text) => (22 + (2L * text.Length) + 7) / 8 * 8;

    private static long Heap()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
