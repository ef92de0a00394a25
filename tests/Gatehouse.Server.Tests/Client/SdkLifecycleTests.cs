using System.Diagnostics;
using System.Net.Sockets;
using Gatehouse.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Tests.Client;

/// <summary>
/// What a production app meets beyond the happy flows: disposal, an expired token, parallel logins and logouts, a
/// shared HttpClient, timeouts, TLS failures, logging and tracing, and registration from configuration; against a
/// real Gatehouse on 127.0.0.1 whose clock the tests move.
/// </summary>
[Trait(Category.Name, Category.Slow)]
public sealed class SdkLifecycleTests(GatehouseServer server) : IClassFixture<GatehouseServer>, IAsyncDisposable
{
    private readonly List<GatehouseClient> _clients = [];

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
            await client.DisposeAsync();
    }

    [Fact]
    public async Task Disposal_twice_is_harmless_and_any_call_afterwards_names_the_client()
    {
        var network = await server.CreateNetworkAsync();
        var client = Client(network);
        await client.LoginAsync("ada");

        await client.DisposeAsync();
        await client.DisposeAsync();

        foreach (var call in new Func<Task>[]
        {
            () => client.LoginAsync("ada"), () => client.GetCurrentUserAsync(), () => client.LogoutAsync(), () => client.CheckSessionAsync(),
            () => client.ResumeAsync(),
        })
        {
            var disposed = await Assert.ThrowsAsync<ObjectDisposedException>(call);
            Assert.Equal(typeof(GatehouseClient).FullName, disposed.ObjectName);
        }
        // The session outlives the client in its store, for the next client to resume.
        Assert.NotNull(client.Session);
    }

    [Fact]
    public async Task A_call_with_an_expired_token_renews_through_the_handler_and_goes_through()
    {
        var (network, serverKey) = await SecureNetworkAsync();
        var handler = new Handler(renewal => renewal.Renew());
        var client = Client(network);
        await client.LoginAsync("bea", authToken: await MintAsync(serverKey, "bea"), sessionHandler: handler);
        var first = client.Session!;
        var states = Record(client);

        // Past the access token's 30 days, inside the refresh token's 60, with no check in between.
        server.Clock.Advance(TimeSpan.FromDays(31));
        var user = await client.GetCurrentUserAsync();

        Assert.Equal("bea", user.UserId);
        Assert.Equal(1, handler.Calls);
        Assert.Equal([SessionState.TokenExpired, SessionState.Established], states);
        Assert.NotEqual(first.AccessToken, client.Session!.AccessToken);
        Assert.Equal(server.Clock.GetUtcNow().AddDays(30), client.Session.ExpiresAt, TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task Without_a_handler_the_refresh_token_renews_an_expired_session()
    {
        var network = await server.CreateNetworkAsync();
        var store = new InMemoryTokenStore();
        var client = Client(network, store);
        await client.LoginAsync("cleo");
        var first = client.Session!;

        server.Clock.Advance(TimeSpan.FromDays(31));

        Assert.Equal("cleo", (await client.GetCurrentUserAsync()).UserId);
        Assert.Equal(SessionState.Established, client.State);
        Assert.NotEqual(first.RefreshToken, client.Session!.RefreshToken);
        Assert.Equal(client.Session, await store.LoadAsync(default));
    }

    [Fact]
    public async Task A_handler_unable_to_renew_leaves_the_session_expired_not_ended_and_a_later_check_renews_it()
    {
        var (network, serverKey) = await SecureNetworkAsync();
        var able = false;
        var handler = new Handler(renewal =>
        {
            if (able)
                renewal.Renew();
            else
                renewal.UnableToRetrieveAuthToken();
        });
        var store = new InMemoryTokenStore();
        var client = Client(network, store);
        await client.LoginAsync("dina", authToken: await MintAsync(serverKey, "dina"), sessionHandler: handler);
        var first = client.Session!;

        server.Clock.Advance(TimeSpan.FromDays(31));
        var refused = await Assert.ThrowsAsync<GatehouseUnauthorizedException>(() => client.GetCurrentUserAsync());

        Assert.Contains("could not be renewed now", refused.Message, StringComparison.Ordinal);
        Assert.Equal(SessionState.TokenExpired, client.State);
        Assert.Equal(first, client.Session);
        Assert.Equal(first, await store.LoadAsync(default));

        able = true;
        await client.CheckSessionAsync();
        Assert.Equal(SessionState.Established, client.State);
        Assert.Equal("dina", (await client.GetCurrentUserAsync()).UserId);
    }

    [Fact]
    public async Task Calls_in_parallel_on_an_expired_session_renew_it_once()
    {
        var network = await server.CreateNetworkAsync();
        var handler = new Handler(renewal => renewal.Renew());
        var client = Client(network);
        await client.LoginAsync("edda", sessionHandler: handler);

        server.Clock.Advance(TimeSpan.FromDays(31));
        var users = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => client.GetCurrentUserAsync()));

        // A second refresh with the spent token would have ended the session (reuse is treated as theft).
        Assert.All(users, user => Assert.Equal("edda", user.UserId));
        Assert.Equal(1, handler.Calls);
        Assert.Equal(SessionState.Established, client.State);
        Assert.Equal("edda", (await client.GetCurrentUserAsync()).UserId);
    }

    [Fact]
    public async Task Parallel_logins_on_one_client_leave_the_session_the_server_kept()
    {
        var network = await server.CreateNetworkAsync();
        var client = Client(network);

        // One device holds one user at a time: each login signs the one before out, so only the last one lives.
        await Task.WhenAll(Enumerable.Range(0, 8).Select(i => client.LoginAsync($"fay-{i}")));

        Assert.Equal(SessionState.Established, client.State);
        using var me = await server.GetWithBearerAsync("/api/v3/users/me", client.Session!.AccessToken);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        Assert.Equal(client.Session.UserId, (await client.GetCurrentUserAsync()).UserId);
    }

    [Fact]
    public async Task A_store_that_fails_loses_nothing_the_server_issued()
    {
        var network = await server.CreateNetworkAsync();
        var logs = new ListLogger();
        var client = Client(network, new FailingStore(), logger: logs.Logger);
        await client.LoginAsync("fritz");

        // Two renewals in a row: the second spends the refresh token the first brought, kept in memory only.
        for (var i = 0; i < 2; i++)
        {
            server.Clock.Advance(TimeSpan.FromDays(31));
            Assert.Equal("fritz", (await client.GetCurrentUserAsync()).UserId);
        }
        Assert.Equal(SessionState.Established, client.State);
        Assert.Contains(logs.Lines, line => line.StartsWith("Error: The token store failed to save the session", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_handler_that_calls_the_client_is_told_so_instead_of_hanging()
    {
        var network = await server.CreateNetworkAsync();
        GatehouseClient? client = null;
        Exception? seen = null;
        var handler = new Handler(renewal =>
        {
            seen = Record(() => client!.LogoutAsync());
            renewal.Renew();
        });
        client = Client(network);
        await client.LoginAsync("gert", sessionHandler: handler);
        server.Clock.Advance(TimeSpan.FromDays(31));

        Assert.Equal("gert", (await client.GetCurrentUserAsync().WaitAsync(TimeSpan.FromSeconds(20))).UserId);
        var refused = Assert.IsType<InvalidOperationException>(seen);
        Assert.Contains("must answer through the renewal", refused.Message, StringComparison.Ordinal);

        static Exception? Record(Func<Task> call)
        {
            try
            {
                call().Wait(TimeSpan.FromSeconds(20));
                return null;
            }
            catch (AggregateException e)
            {
                return e.InnerException;
            }
        }
    }

    [Fact]
    public async Task A_cancelled_call_is_cancelled_not_timed_out()
    {
        var network = await server.CreateNetworkAsync();
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var accepting = silent.AcceptTcpClientAsync();
        var client = Client(network, endpoint: new Uri($"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}/"));
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        var cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.LoginAsync("hedy", cancellationToken: cancel.Token));

        Assert.Equal(cancel.Token, cancelled.CancellationToken);
        Assert.Equal(SessionState.NotLoggedIn, client.State);
        (await accepting).Dispose();
    }

    [Fact]
    public async Task Logout_without_a_session_twice_or_after_termination_does_nothing()
    {
        var network = await server.CreateNetworkAsync();
        var admin = await AdminAsync(network);
        var client = Client(network);
        await client.LogoutAsync();
        Assert.Equal(SessionState.NotLoggedIn, client.State);

        await client.LoginAsync("gus");
        await Task.WhenAll(client.LogoutAsync(), client.LogoutAsync());
        await client.LogoutAsync();
        Assert.Equal(SessionState.NotLoggedIn, client.State);

        await client.LoginAsync("gus");
        await admin.BanAsync("gus");
        await Assert.ThrowsAsync<GatehouseBannedException>(() => client.GetCurrentUserAsync());
        Assert.Equal(SessionState.Terminated, client.State);
        await client.LogoutAsync();
        Assert.Equal(SessionState.Terminated, client.State);
    }

    [Fact]
    public async Task A_session_the_server_already_ended_is_forgotten_on_logout_without_an_error()
    {
        var network = await server.CreateNetworkAsync();
        var admin = await AdminAsync(network);
        var store = new InMemoryTokenStore();
        var client = Client(network, store);
        await client.LoginAsync("hal");
        await admin.RevokeSessionsAsync("hal");

        await client.LogoutAsync();

        Assert.Equal(SessionState.NotLoggedIn, client.State);
        Assert.Null(await store.LoadAsync(default));
    }

    [Fact]
    public async Task Clients_sharing_an_HttpClient_each_reach_their_own_endpoint_and_leave_its_base_address_alone()
    {
        var network = await server.CreateNetworkAsync();
        var closedPort = ClosedPort();
        using var shared = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{closedPort}/elsewhere/") };
        var here = Client(network, http: shared);
        var nowhere = Client(network, endpoint: new Uri($"http://127.0.0.1:{closedPort}/"), http: shared);

        await here.LoginAsync("ida");
        var unreachable = await Assert.ThrowsAsync<GatehouseUnreachableException>(() => nowhere.LoginAsync("ida"));

        Assert.Contains($"127.0.0.1:{closedPort}", unreachable.Message, StringComparison.Ordinal);
        Assert.Equal("ida", (await here.GetCurrentUserAsync()).UserId);
        Assert.Equal(new Uri($"http://127.0.0.1:{closedPort}/elsewhere/"), shared.BaseAddress);
    }

    [Fact]
    public async Task A_silent_server_fails_the_login_at_the_timeout_with_its_own_error()
    {
        var network = await server.CreateNetworkAsync();
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var accepting = silent.AcceptTcpClientAsync();
        var client = Client(network, endpoint: new Uri($"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}/"),
            timeout: TimeSpan.FromMilliseconds(500));
        var watch = Stopwatch.StartNew();

        var timedOut = await Assert.ThrowsAsync<GatehouseTimeoutException>(() => client.LoginAsync("jo"));

        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(10));
        Assert.Contains("did not answer within 0.5 s", timedOut.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<GatehouseUnreachableException>(timedOut);
        Assert.Equal(SessionState.NotLoggedIn, client.State);
        (await accepting).Dispose();
    }

    [Fact]
    public async Task A_tls_failure_says_what_failed_not_see_inner_exception()
    {
        var network = await server.CreateNetworkAsync();
        // The test server's certificate is its own, trusted by nothing on this machine.
        var client = Client(network, endpoint: server.HttpsAddress);

        var refused = await Assert.ThrowsAsync<GatehouseUnreachableException>(() => client.LoginAsync("kai"));

        Assert.DoesNotContain("inner exception", refused.Message, StringComparison.Ordinal);
        Assert.Contains("certificate", refused.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Calls_are_logged_and_traced_without_their_tokens()
    {
        var network = await server.CreateNetworkAsync();
        var logs = new ListLogger();
        var activities = new List<Activity>();
        using var test = new ActivitySource("Gatehouse.Server.Tests.Sdk");
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == GatehouseTelemetry.ActivitySourceName || source == test,
            Sample = (ref _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity => { lock (activities) activities.Add(activity); },
        };
        ActivitySource.AddActivityListener(listener);
        var client = Client(network, logger: logs.Logger);

        string? refreshToken;
        ActivityTraceId trace;
        using (var parent = test.StartActivity("this test")!)
        {
            trace = parent.TraceId;
            await client.LoginAsync("lou");
            refreshToken = client.Session!.RefreshToken;
            await client.GetCurrentUserAsync();
            await client.LogoutAsync();
        }

        // Other test classes call Gatehouse at the same time: only this test's trace is read.
        Activity[] calls;
        lock (activities)
            calls = activities.Where(a => a.TraceId == trace && a.Source.Name == GatehouseTelemetry.ActivitySourceName).ToArray();
        Assert.Equal(["gatehouse login", "gatehouse users.me", "gatehouse logout"], calls.Select(a => a.DisplayName));
        Assert.All(calls, call => Assert.Equal(1, call.GetTagItem("gatehouse.attempts")));
        Assert.Contains(logs.Lines, line => line.Contains("Gatehouse login answered 200", StringComparison.Ordinal));
        Assert.Contains(logs.Lines, line => line.Contains("Gatehouse session Establishing -> Established", StringComparison.Ordinal));
        string[] secrets = [network.ApiKey, refreshToken!, "eyJ"];
        var written = logs.Lines.Concat(calls.SelectMany(a => a.TagObjects.Select(t => $"{t.Key}={t.Value}")).Concat(calls.Select(a => a.StatusDescription ?? "")));
        Assert.DoesNotContain(written, line => secrets.Any(secret => line.Contains(secret, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Clients_registered_from_configuration_work_and_take_up_a_changed_server_key()
    {
        var (network, serverKey) = await SecureNetworkAsync();
        var admin = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);
        var configuration = new ConfigurationManager();
        configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Gatehouse:App:ApiKey"] = network.ApiKey,
            ["Gatehouse:App:Endpoint"] = server.BaseAddress.ToString(),
            ["Gatehouse:App:Timeout"] = "00:00:10",
            ["Gatehouse:Backend:Endpoint"] = server.BaseAddress.ToString().TrimEnd('/'),
            ["Gatehouse:Backend:ServerKey"] = "gsk_not-this-one",
            ["Gatehouse:Admin:Endpoint"] = server.BaseAddress.ToString(),
            ["Gatehouse:Admin:AdminToken"] = admin.Token,
        });
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddGatehouseClient(configuration.GetSection("Gatehouse:App"));
        builder.Services.AddGatehouseAuthTokenClient(configuration.GetSection("Gatehouse:Backend"));
        builder.Services.AddGatehouseAdminClient(configuration.GetSection("Gatehouse:Admin"));
        builder.Services.AddSingleton<TimeProvider>(server.Clock);
        using var host = builder.Build();
        await host.StartAsync();

        await Assert.ThrowsAsync<GatehouseUnauthorizedException>(() => host.Services.GetRequiredService<AuthTokenClient>().MintAsync("max"));
        // As a configuration file edited while the backend runs: the provider reloads and the options see it.
        configuration["Gatehouse:Backend:ServerKey"] = serverKey;
        ((IConfigurationRoot)configuration).Reload();
        var token = await host.Services.GetRequiredService<AuthTokenClient>().MintAsync("max");
        var app = host.Services.GetRequiredService<GatehouseClient>();
        await app.LoginAsync("max", authToken: token.Token);
        Assert.Equal("max", (await host.Services.GetRequiredService<AdminClient>().GetUserAsync("max")).UserId);
        Assert.Same(app, host.Services.GetRequiredService<GatehouseClient>());
        await host.StopAsync();
    }

    [Fact]
    public async Task A_host_with_a_missing_endpoint_or_key_does_not_start_and_says_which()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["App:ApiKey"] = "sg_key",
            ["Backend:Endpoint"] = "https://gatehouse.example/",
        });
        builder.Services.AddGatehouseClient(builder.Configuration.GetSection("App"));
        builder.Services.AddGatehouseAuthTokenClient(builder.Configuration.GetSection("Backend"));
        using var host = builder.Build();

        var refused = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync());

        var failures = (refused as AggregateException)?.InnerExceptions.OfType<OptionsValidationException>().SelectMany(e => e.Failures)
            ?? ((OptionsValidationException)refused).Failures;
        Assert.Contains(failures, f => f.StartsWith("Endpoint is required", StringComparison.Ordinal) && f.Contains("set Region", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("ServerKey is required", StringComparison.Ordinal));
    }

    // ---- helpers ----

    private GatehouseClient Client(TestNetwork network, ITokenStore? store = null, Uri? endpoint = null, HttpClient? http = null,
        TimeSpan? timeout = null, Microsoft.Extensions.Logging.ILogger? logger = null)
    {
        var client = new GatehouseClient(new GatehouseClientOptions
        {
            ApiKey = network.ApiKey,
            Endpoint = endpoint ?? server.BaseAddress,
            TokenStore = store ?? new InMemoryTokenStore(),
            TimeProvider = server.Clock,
            // Checked by hand only: each test decides when the clock has moved.
            RenewalCheckInterval = TimeSpan.FromDays(40),
            Timeout = timeout ?? TimeSpan.FromSeconds(30),
        }, http, logger);
        _clients.Add(client);
        return client;
    }

    private async Task<string> MintAsync(string serverKey, string userId)
    {
        using var http = new HttpClient();
        return (await new AuthTokenClient(http, new AuthTokenClientOptions { Endpoint = server.BaseAddress, ServerKey = serverKey }).MintAsync(userId)).Token;
    }

    private async Task<AdminClient> AdminAsync(TestNetwork network)
    {
        var (token, _) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);
        return new AdminClient(new HttpClient(), new AdminClientOptions { Endpoint = server.BaseAddress, AdminToken = token });
    }

    private async Task<(TestNetwork Network, string ServerKey)> SecureNetworkAsync()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        return (network, await server.GenerateServerKeyAsync(network));
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static List<SessionState> Record(GatehouseClient client)
    {
        var states = new List<SessionState>();
        client.SessionStateChanged += (_, change) => { lock (states) states.Add(change.Current); };
        return states;
    }

    private sealed class Handler(Action<AccessTokenRenewal> answer) : ISessionHandler
    {
        private int _calls;

        public int Calls => _calls;

        public Task SessionWillRenewAccessTokenAsync(AccessTokenRenewal renewal, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            answer(renewal);
            return Task.CompletedTask;
        }
    }

    /// <summary>A store whose disk is full: it keeps nothing and says so.</summary>
    private sealed class FailingStore : ITokenStore
    {
        public ValueTask SaveAsync(GatehouseSession session, CancellationToken cancellationToken) => throw new IOException("No space left on device");

        public ValueTask<GatehouseSession?> LoadAsync(CancellationToken cancellationToken) => ValueTask.FromResult<GatehouseSession?>(null);

        public ValueTask ClearAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }

    /// <summary>The suite's <see cref="LogRecorder"/>, its lines as "Level: message".</summary>
    private sealed class ListLogger
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<LogLine> _lines = new();

        public ListLogger() => Logger = new LogRecorder(_lines).CreateLogger("Gatehouse.Client");

        public Microsoft.Extensions.Logging.ILogger Logger { get; }

        public IReadOnlyList<string> Lines => [.. _lines.Select(line => $"{line.Level}: {line.Message}")];
    }
}
