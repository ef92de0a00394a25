using Gatehouse.Server;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Gatehouse.Bench.Micro;

/// <summary>
/// What one entry of the verified-token cache keeps alive, in bytes of managed heap after a full collection: the
/// figure <c>Gatehouse:Sessions:VerifiedTokenCacheEntries</c> is sized by (docs/operations.md). Measured for both ways
/// an access token enters the cache: signed here (every login and refresh) and verified from its text (a token this
/// node did not sign, or one the cache had let go). Whatever the entry holds is counted, the token's text included
/// if the cache keeps it.
/// </summary>
internal static class CacheFootprint
{
    public static async Task RunAsync(int entries)
    {
        var directory = Directory.CreateTempSubdirectory("gatehouse-footprint").FullName;
        try
        {
            var builder = Host.CreateApplicationBuilder();
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Gatehouse:DataDirectory"] = directory,
                ["Logging:LogLevel:Default"] = "Warning",
                ["Gatehouse:Sessions:VerifiedTokenCacheEntries"] = (entries * 2).ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
            builder.Services.AddGatehouseCore();
            using var host = builder.Build();
            await host.StartAsync();
            await StorageSetup.MigrateAsync(host.Services);
            var keys = host.Services.GetRequiredService<SigningKeys>();
            if (!keys.Loaded)
                await keys.LoadAsync();
            var accessTokens = host.Services.GetRequiredService<AccessTokens>();
            var jwt = host.Services.GetRequiredService<Jwt>();
            var now = DateTimeOffset.UtcNow;

            // Warm every path once, so code and static state are not counted.
            var warm = Issue(accessTokens, now, 0);
            await accessTokens.CheckAsync(warm);

            // Signed and let go, as a login hands its token to the app: what stays is what the cache keeps.
            var before = Heap();
            var textBytes = 0L;
            for (var i = 0; i < entries; i++)
                textBytes += TextBytes(Issue(accessTokens, now, i + 1));
            var signedHere = (Heap() - before) / entries;

            // Signed without being remembered, so each enters the cache when it is checked.
            var unseen = new string[entries];
            for (var i = 0; i < entries; i++)
                unseen[i] = jwt.Sign(new JwtKind(AccessTokens.Type, AccessTokens.Audience, AccessTokens.Algorithm), Claims(i + entries + 1), now, now.AddHours(1));
            var unseenBytes = unseen.Sum(TextBytes);
            var beforeRead = Heap();
            foreach (var token in unseen)
            {
                if ((await accessTokens.CheckAsync(token)).Token is null)
                    throw new InvalidOperationException("A token signed here was refused.");
            }
            unseen = null;
            var verifiedFromText = (Heap() - beforeRead + unseenBytes) / entries;

            Console.WriteLine($"an access token's text: {textBytes / entries} bytes");
            Console.WriteLine($"kept per token signed here: {signedHere} bytes");
            Console.WriteLine($"kept per token verified from its text: {verifiedFromText} bytes");
            await host.StopAsync();
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(directory, recursive: true);
        }
    }

    private static string Issue(AccessTokens accessTokens, DateTimeOffset now, int i)
    {
        var networkId = "0123456789abcdef01234567";
        var user = new User { Id = Guid.NewGuid().ToString("N"), NetworkId = networkId, UserId = $"user-{i:D8}" };
        var session = new Session { Id = Guid.CreateVersion7(), NetworkId = networkId, UserRef = user.Id, DeviceId = "device", ExpiresAt = now.AddHours(1) };
        return accessTokens.Issue(session, user, now);
    }

    private static Dictionary<string, object> Claims(int i) => new()
    {
        ["sub"] = $"user-{i:D8}",
        ["sid"] = Guid.CreateVersion7().ToString(),
        ["nid"] = "0123456789abcdef01234567",
        ["user_type"] = "user",
        ["user"] = new Dictionary<string, object> { ["userId"] = $"user-{i:D8}", ["publicUserId"] = $"user-{i:D8}", ["networkId"] = "0123456789abcdef01234567" },
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
