using System.Security.Cryptography;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>
/// Floods of wrong credentials: limited per client address and per presented credential before any check, and
/// audited in aggregate, so neither the CPU, the disk nor the audit queue is theirs to take.
/// </summary>
public abstract class CredentialFloodTests<TServer> : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    private const int PerAddress = FloodLimits.PerAddress;
    private const int PerCredential = FloodLimits.PerCredential;
    private readonly TServer _server;

    protected CredentialFloodTests(TServer server)
    {
        _server = server;
        // Every test starts in a minute of its own: the limits count per minute, and the class shares one server.
        _server.Clock.Advance(TimeSpan.FromMinutes(1));
    }

    [SkippableFact]
    public async Task A_flood_of_forged_bearer_tokens_is_cut_off_per_address_and_audited_in_one_summary_row()
    {
        var network = await _server.CreateNetworkAsync(secureMode: true);
        var serverKey = await _server.GenerateServerKeyAsync(network);
        await _server.FlushAuditAsync();
        var before = await LastAuditIdAsync();

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 100; i++)
        {
            using var response = await _server.GetWithBearerAsync("/api/v3/users/me", Convert.ToHexString(RandomNumberGenerator.GetBytes(24)));
            statuses.Add(response.StatusCode);
            if (i == 99)
                Assert.InRange(int.Parse(response.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture), 1, 60);
        }
        using var otherKindFromThatAddress = await _server.MintV3Async(serverKey, "alice");
        await _server.FlushAuditAsync();

        Assert.Equal(PerAddress, statuses.Count(s => s == HttpStatusCode.Unauthorized));
        Assert.Equal(100 - PerAddress, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
        Assert.Equal(HttpStatusCode.TooManyRequests, otherKindFromThatAddress.StatusCode);
        await using var scope = _server.Services.CreateAsyncScope();
        var rows = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().AuditEvents
            .Where(e => e.Id > before && e.Kind == AuditKinds.AccessRefused).ToListAsync();
        Assert.Equal(AuditLog.RefusalsWrittenPerMinute, rows.Count(r => r.Actor == "bearer"));
        var summary = Assert.Single(rows, r => r.Actor == "aggregate");
        Assert.StartsWith($"refused {PerAddress - AuditLog.RefusalsWrittenPerMinute} more time(s)", summary.Detail, StringComparison.Ordinal);
        Assert.Equal("127.0.0.1", summary.ClientAddress);

        _server.Clock.Advance(TimeSpan.FromMinutes(1));
        using var nextMinute = await _server.MintV3Async(serverKey, "alice");
        Assert.Equal(HttpStatusCode.OK, nextMinute.StatusCode);
    }

    [SkippableFact]
    public async Task The_same_wrong_key_or_token_again_and_again_is_cut_off_while_good_ones_still_work()
    {
        var network = await _server.CreateNetworkAsync(secureMode: true);
        var serverKey = await _server.GenerateServerKeyAsync(network);
        var (adminToken, _) = await _server.GenerateAdminTokenAsync(await _server.CreateAdminAsync(network), network);
        var session = await _server.LoginAsync(network, "alice", "device-a", await _server.MintAsync(serverKey, "alice"));

        var guessedAdminToken = new List<HttpStatusCode>();
        var guessedServerKey = new List<HttpStatusCode>();
        var guessedApiKey = new List<HttpStatusCode>();
        for (var i = 0; i < PerCredential + 2; i++)
        {
            using (var admin = await _server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", "gat_guess"))
                guessedAdminToken.Add(admin.StatusCode);
            using (var mint = await _server.MintV3Async("gsk_guess", "alice"))
                guessedServerKey.Add(mint.StatusCode);
            using (var login = await _server.CreateSessionAsync(new TestNetwork(network.Id, "sg_guess"), "alice", "device-a"))
                guessedApiKey.Add(login.StatusCode);
        }
        using var goodAdmin = await _server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", adminToken!);
        using var goodMint = await _server.MintV3Async(serverKey, "alice");
        using var goodBearer = await _server.GetWithBearerAsync("/api/v3/users/me", session["accessToken"]!.GetValue<string>());

        foreach (var statuses in new[] { guessedAdminToken, guessedServerKey, guessedApiKey })
        {
            Assert.All(statuses.Take(PerCredential), s => Assert.Equal(HttpStatusCode.Unauthorized, s));
            Assert.All(statuses.Skip(PerCredential), s => Assert.Equal(HttpStatusCode.TooManyRequests, s));
        }
        Assert.Equal(HttpStatusCode.OK, goodAdmin.StatusCode);
        Assert.Equal(HttpStatusCode.OK, goodMint.StatusCode);
        Assert.Equal(HttpStatusCode.OK, goodBearer.StatusCode);
    }

    private async Task<long> LastAuditIdAsync()
    {
        await using var scope = _server.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<GatehouseDb>().AuditEvents.MaxAsync(e => (long?)e.Id) ?? 0;
    }
}

/// <summary>Small limits on refused credentials, so a test reaches them in a few dozen requests.</summary>
public static class FloodLimits
{
    public const int PerAddress = 40;
    public const int PerCredential = 10;

    public static void Apply(GatehouseServer server)
    {
        server.Settings["Gatehouse:RateLimits:FailedCredentialsPerAddressPerMinute"] = PerAddress.ToString(System.Globalization.CultureInfo.InvariantCulture);
        server.Settings["Gatehouse:RateLimits:FailuresPerCredentialPerMinute"] = PerCredential.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}

public sealed class FloodSqliteServer : GatehouseServer
{
    public FloodSqliteServer() => FloodLimits.Apply(this);
}

public sealed class FloodPostgresServer : PostgresServer
{
    public FloodPostgresServer() => FloodLimits.Apply(this);
}

[Trait(Category.Name, Category.Slow)]
public sealed class CredentialFloodTestsOnSqlite(FloodSqliteServer server) : CredentialFloodTests<FloodSqliteServer>(server);

[Trait(Category.Name, Category.Slow)]
[Trait(Category.Name, Category.Postgres)]
public sealed class CredentialFloodTestsOnPostgres(FloodPostgresServer server) : CredentialFloodTests<FloodPostgresServer>(server);

/// <summary>A full audit queue drops events, but never silently: an error in the log and the gatehouse.audit.dropped counter.</summary>
[Trait(Category.Name, Category.Fast)]
public sealed class AuditQueueTests : IAsyncLifetime
{
    private readonly List<string> _errors = [];
    private readonly GatehouseServer _server;

    public AuditQueueTests()
    {
        _server = new GatehouseServer { Configure = builder => builder.Logging.AddProvider(new ErrorSink(_errors)) };
        _server.Settings["Gatehouse:Audit:QueueCapacity"] = "16";
    }

    public Task InitializeAsync() => _server.InitializeAsync();

    public Task DisposeAsync() => _server.DisposeAsync();

    [Fact]
    public async Task Events_past_a_full_queue_are_counted_and_logged_as_errors()
    {
        using var dropped = new InstrumentRecording<long>(_server.Services, "gatehouse.audit.dropped");
        var audit = _server.Services.GetRequiredService<AuditLog>();

        // Far faster than any database commits: the queue of sixteen fills within microseconds.
        for (var i = 0; i < 5_000; i++)
            audit.Record(new SecurityEvent(AuditKinds.SessionRefreshed, Outcomes.Success, "test", Detail: $"event {i}"));
        // An observed counter: one reading (Values) gives each kind's total.
        Assert.True(dropped.Values.Sum() > 0, $"nothing was counted as dropped; errors logged: {_errors.Count}");
        lock (_errors)
            Assert.Contains(_errors, e => e.StartsWith("Audit queue full: dropped a session.refreshed event", StringComparison.Ordinal));
    }

    private sealed class ErrorSink(List<string> errors) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(errors);

        public void Dispose()
        {
        }

        private sealed class Logger(List<string> errors) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (logLevel < LogLevel.Error)
                    return;
                lock (errors)
                    errors.Add(formatter(state, exception));
            }
        }
    }
}
