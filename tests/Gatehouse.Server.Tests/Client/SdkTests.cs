using Gatehouse.Client;

namespace Gatehouse.Server.Tests.Client;

/// <summary>The .NET SDK against a real Gatehouse on 127.0.0.1, its clock moved where renewal needs it.</summary>
[Trait(Category.Name, Category.Slow)]
public sealed class SdkTests(GatehouseServer server) : IClassFixture<GatehouseServer>, IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _clients = [];

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
            await client.DisposeAsync();
    }

    [Fact]
    public async Task Unsecure_login_goes_through_the_official_states_and_reads_the_user()
    {
        var network = await server.CreateNetworkAsync();
        var client = Client(network);
        var states = Record(client);

        var user = await client.LoginAsync("alice", displayName: "Alice");

        Assert.Equal([SessionState.Establishing, SessionState.Established], states);
        Assert.Equal(("alice", "Alice"), (user.UserId, user.DisplayName));
        Assert.Equal("alice", (await client.GetCurrentUserAsync()).UserId);
        Assert.StartsWith("dotnetSdk#", client.Session!.DeviceId, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Secure_login_needs_an_auth_token_minted_by_the_backend_client()
    {
        var (network, serverKey) = await SecureNetworkAsync();
        var backend = AuthTokens(serverKey);
        var client = Client(network);
        var states = Record(client);

        var refused = await Assert.ThrowsAsync<GatehouseUnauthorizedException>(() => client.LoginAsync("bob"));
        Assert.Equal(ErrorCodes.Unauthorized, refused.Code);
        Assert.Equal(SessionState.NotLoggedIn, client.State);

        var token = await backend.MintAsync("bob");
        Assert.Equal(server.Clock.GetUtcNow().AddMinutes(10), token.ExpiresAt!.Value, TimeSpan.FromSeconds(1));
        await client.LoginAsync("bob", authToken: token.Token);
        Assert.Equal([SessionState.Establishing, SessionState.NotLoggedIn, SessionState.Establishing, SessionState.Established], states);

        var someoneElses = await backend.MintAsync("carol");
        var wrongUser = Client(network);
        await Assert.ThrowsAsync<GatehouseUnauthorizedException>(() => wrongUser.LoginAsync("bob", authToken: someoneElses.Token));
    }

    [Fact]
    public async Task Renewal_is_offered_at_80_percent_and_renews_with_the_refresh_token()
    {
        var (network, serverKey) = await SecureNetworkAsync();
        var handler = new Handler(renewal => renewal.Renew());
        var client = Client(network);
        await client.LoginAsync("dana", authToken: (await AuthTokens(serverKey).MintAsync("dana")).Token, sessionHandler: handler);
        var first = client.Session!;

        server.Clock.Advance(TimeSpan.FromDays(23));
        await client.CheckSessionAsync();
        Assert.Equal(0, handler.Calls);

        // The client's own check (every RenewalCheckInterval) finds the token past 80 % of its 30 days.
        server.Clock.Advance(TimeSpan.FromDays(1.5));
        await WaitForAsync(() => client.Session?.AccessToken != first.AccessToken);

        Assert.Equal(1, handler.Calls);
        Assert.NotEqual(first.RefreshToken, client.Session!.RefreshToken);
        Assert.Equal(server.Clock.GetUtcNow(), client.Session.IssuedAt, TimeSpan.FromSeconds(1));
        Assert.Equal(SessionState.Established, client.State);
        Assert.Equal("dana", (await client.GetCurrentUserAsync()).UserId);
        using var spent = await server.RefreshAsync(network, first.RefreshToken!);
        Assert.Equal(HttpStatusCode.Unauthorized, spent.StatusCode);
    }

    [Fact]
    public async Task A_handler_that_cannot_renew_is_asked_again_then_renews_with_a_fresh_auth_token()
    {
        var (network, serverKey) = await SecureNetworkAsync();
        var backend = AuthTokens(serverKey);
        var answers = new Queue<Func<AccessTokenRenewal, Task>>([
            renewal => { renewal.UnableToRetrieveAuthToken(); return Task.CompletedTask; },
            async renewal => renewal.RenewWithAuthToken((await backend.MintAsync("erin")).Token),
        ]);
        var handler = new Handler(renewal => answers.Dequeue()(renewal));
        // Checked by hand only, so that each check below meets the answer meant for it.
        var client = Client(network, checkInterval: TimeSpan.FromDays(40));
        await client.LoginAsync("erin", authToken: (await backend.MintAsync("erin")).Token, sessionHandler: handler);
        var first = client.Session!;

        server.Clock.Advance(TimeSpan.FromDays(31));
        await client.CheckSessionAsync();
        Assert.Equal(SessionState.TokenExpired, client.State);
        Assert.Equal(first, client.Session);

        await client.CheckSessionAsync();
        Assert.Equal(2, handler.Calls);
        Assert.Equal(SessionState.Established, client.State);
        Assert.NotEqual(first.AccessToken, client.Session!.AccessToken);
        Assert.Equal(server.Clock.GetUtcNow().AddDays(30), client.Session.ExpiresAt, TimeSpan.FromSeconds(1));
        Assert.Equal("erin", (await client.GetCurrentUserAsync()).UserId);
    }

    [Fact]
    public async Task A_handler_that_throws_counts_as_unable_and_is_asked_again()
    {
        var network = await server.CreateNetworkAsync();
        var failures = 1;
        var handler = new Handler(renewal =>
        {
            if (failures-- > 0)
                throw new HttpRequestException("the app's backend is down");
            renewal.Renew();
        });
        var client = Client(network, checkInterval: TimeSpan.FromDays(40));
        await client.LoginAsync("owen", sessionHandler: handler);
        var first = client.Session!;
        server.Clock.Advance(TimeSpan.FromDays(25));

        await client.CheckSessionAsync();
        Assert.Equal(first, client.Session);
        Assert.Equal(SessionState.Established, client.State);

        await client.CheckSessionAsync();
        Assert.Equal(2, handler.Calls);
        Assert.NotEqual(first.AccessToken, client.Session!.AccessToken);
    }

    [Fact]
    public async Task Revocation_by_the_admin_api_terminates_the_session_on_the_next_call_and_on_a_failed_renewal()
    {
        var network = await server.CreateNetworkAsync();
        var admin = await AdminAsync(network);
        var onCall = Client(network);
        var store = new InMemoryTokenStore();
        var renewing = Client(network, store);
        await onCall.LoginAsync("frank");
        await renewing.LoginAsync("gina", sessionHandler: new Handler(renewal => renewal.Renew()));
        var terminated = Record(onCall);

        await admin.RevokeSessionsAsync("frank");
        await admin.RevokeSessionsAsync("gina");

        var refused = await Assert.ThrowsAsync<GatehouseUnauthorizedException>(() => onCall.GetCurrentUserAsync());
        Assert.Equal((ErrorCodes.Unauthorized, HttpStatusCode.Unauthorized), (refused.Code, refused.StatusCode));
        Assert.Equal(SessionState.Terminated, onCall.State);
        Assert.Equal(SessionState.Terminated, terminated[^1]);
        Assert.Null(onCall.Session);

        server.Clock.Advance(TimeSpan.FromDays(25));
        await renewing.CheckSessionAsync();
        Assert.Equal(SessionState.Terminated, renewing.State);
        Assert.Null(await store.LoadAsync(default));
    }

    [Fact]
    public async Task A_ban_terminates_the_session_and_refuses_login_until_unbanned()
    {
        var network = await server.CreateNetworkAsync();
        var admin = await AdminAsync(network);
        var client = Client(network);
        await client.LoginAsync("hank");
        SessionStateChangedEventArgs? last = null;
        client.SessionStateChanged += (_, change) => last = change;

        await admin.BanAsync("hank");

        await Assert.ThrowsAsync<GatehouseBannedException>(() => client.GetCurrentUserAsync());
        Assert.Equal(SessionState.Terminated, client.State);
        Assert.Equal(ErrorCodes.GloballyBanned, last!.Cause!.Code);
        Assert.True((await admin.GetUserAsync("hank")).IsGlobalBanned);
        await Assert.ThrowsAsync<GatehouseBannedException>(() => client.LoginAsync("hank"));

        await admin.UnbanAsync("hank");
        await client.LoginAsync("hank");
        Assert.Equal(SessionState.Established, client.State);
    }

    [Fact]
    public async Task Secure_logout_revokes_on_the_server_and_keeps_the_session_when_the_server_cannot_be_reached()
    {
        var network = await server.CreateNetworkAsync();
        var store = new InMemoryTokenStore();
        var client = Client(network, store);
        await client.LoginAsync("ivan");
        var session = client.Session!;

        // The same stored session, from a client whose server is gone.
        var unreachable = Client(network, store, new Uri("http://127.0.0.1:9/"), client.DeviceId);
        Assert.True(await unreachable.ResumeAsync());
        await Assert.ThrowsAsync<GatehouseUnreachableException>(() => unreachable.LogoutAsync());
        Assert.Equal(SessionState.Established, unreachable.State);
        Assert.Equal(session, await store.LoadAsync(default));

        await client.LogoutAsync();
        Assert.Equal(SessionState.NotLoggedIn, client.State);
        Assert.Null(await store.LoadAsync(default));
        using var afterLogout = await server.GetWithBearerAsync("/api/v3/users/me", session.AccessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, afterLogout.StatusCode);
    }

    [Fact]
    public async Task A_stored_session_is_resumed_by_a_new_client_on_the_same_device()
    {
        var network = await server.CreateNetworkAsync();
        var store = new InMemoryTokenStore();
        var first = Client(network, store);
        await first.LoginAsync("judy");

        var afterRestart = Client(network, store, deviceId: first.DeviceId);
        Assert.True(await afterRestart.ResumeAsync());
        Assert.Equal(SessionState.Established, afterRestart.State);
        Assert.Equal("judy", (await afterRestart.GetCurrentUserAsync()).UserId);
        Assert.False(await Client(network, store).ResumeAsync());
    }

    [Fact]
    public async Task The_backend_client_mints_over_mtls_with_a_certificate_made_by_the_sdk()
    {
        var (network, serverKey) = await SecureNetworkAsync();
        var request = Gatehouse.Client.ClientCertificates.CreateRequest("backend", "Customer");
        var certificatePem = await server.IssueClientCertificateAsync(network, "backend", request.RequestPem);
        using var certificate = Gatehouse.Client.ClientCertificates.FromPem(certificatePem, request.PrivateKeyPem);

        var services = new ServiceCollection();
        services.AddGatehouseAuthTokenClient(options => Configure(options, serverKey, certificate));
        await using var provider = services.BuildServiceProvider();
        var overMtls = provider.GetRequiredService<AuthTokenClient>();
        var token = await overMtls.MintAsync("kate");
        await Client(network).LoginAsync("kate", authToken: token.Token);

        var v3Options = Configure(new AuthTokenClientOptions(), serverKey, certificate, AuthTokenEndpoint.V3);
        using var v3Http = new HttpClient(v3Options.CreateHandler());
        Assert.Null((await new AuthTokenClient(v3Http, v3Options).MintAsync("kate")).ExpiresAt);

        var withoutCertificate = Configure(new AuthTokenClientOptions(), serverKey, null);
        using var http = new HttpClient(withoutCertificate.CreateHandler());
        var refused = await Assert.ThrowsAsync<GatehouseUnauthorizedException>(() => new AuthTokenClient(http, withoutCertificate).MintAsync("kate"));
        Assert.Contains("client certificate", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_admin_client_searches_users_reads_the_audit_and_revokes_its_own_token()
    {
        var network = await server.CreateNetworkAsync();
        var admin = await AdminAsync(network);
        await Client(network).LoginAsync("lena", displayName: "Lena");

        var page = await admin.SearchUsersAsync("len");
        Assert.Equal(["lena"], page.Users.Select(u => u.UserId));
        Assert.Equal(1, page.Total);
        await Assert.ThrowsAsync<GatehouseNotFoundException>(() => admin.GetUserAsync("nobody"));
        await Assert.ThrowsAsync<GatehouseValidationException>(() => admin.SearchUsersAsync(limit: 1000));
        await server.FlushAuditAsync();
        var audit = await admin.GetAuditAsync(new AuditQuery { UserId = "lena" });
        Assert.Contains(audit.Events, e => e.Kind == "session.created");

        await admin.RevokeOwnTokenAsync();
        await Assert.ThrowsAsync<GatehouseUnauthorizedException>(() => admin.SearchUsersAsync());
    }

    // ---- helpers ----

    private GatehouseClient Client(TestNetwork network, ITokenStore? store = null, Uri? endpoint = null, string? deviceId = null,
        TimeSpan? checkInterval = null)
    {
        var client = new GatehouseClient(new GatehouseClientOptions
        {
            ApiKey = network.ApiKey,
            Endpoint = endpoint ?? server.BaseAddress,
            DeviceId = deviceId,
            TokenStore = store ?? new InMemoryTokenStore(),
            TimeProvider = server.Clock,
            // A day, so that moving the fake clock by weeks fires a handful of checks, not thousands.
            RenewalCheckInterval = checkInterval ?? TimeSpan.FromDays(1),
        });
        _clients.Add(client);
        return client;
    }

    private AuthTokenClient AuthTokens(string serverKey) =>
        new(new HttpClient(), new AuthTokenClientOptions { Endpoint = server.BaseAddress, ServerKey = serverKey });

    private async Task<AdminClient> AdminAsync(TestNetwork network)
    {
        var (token, _) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);
        return new AdminClient(new HttpClient(), new AdminClientOptions { Endpoint = server.BaseAddress, AdminToken = token });
    }

    private AuthTokenClientOptions Configure(AuthTokenClientOptions options, string serverKey, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate,
        AuthTokenEndpoint version = AuthTokenEndpoint.V4)
    {
        options.Endpoint = server.HttpsAddress;
        options.ServerKey = serverKey;
        options.ClientCertificate = certificate;
        options.Version = version;
        options.ServerCertificateValidation = (_, presented, _, _) => server.IsThisServersCertificate(presented);
        return options;
    }

    private async Task<(TestNetwork Network, string ServerKey)> SecureNetworkAsync()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        return (network, await server.GenerateServerKeyAsync(network));
    }

    private static List<SessionState> Record(GatehouseClient client)
    {
        var states = new List<SessionState>();
        client.SessionStateChanged += (_, change) => { lock (states) states.Add(change.Current); };
        return states;
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition() && DateTime.UtcNow < deadline)
            await Task.Delay(10);
        Assert.True(condition(), "the condition did not hold within 20 s");
    }

    private sealed class Handler(Func<AccessTokenRenewal, Task> answer) : ISessionHandler
    {
        private int _calls;

        public Handler(Action<AccessTokenRenewal> answer) : this(renewal => { answer(renewal); return Task.CompletedTask; }) { }

        public int Calls => _calls;

        public Task SessionWillRenewAccessTokenAsync(AccessTokenRenewal renewal, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            return answer(renewal);
        }
    }
}
