using System.Net.Http.Headers;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Gatehouse.Client;

/// <summary>Settings of <see cref="GatehouseClient"/>.</summary>
public sealed class GatehouseClientOptions
{
    /// <summary>The network's API key (public; it ships in apps).</summary>
    public string? ApiKey { get; set; }

    /// <summary>The region whose host to call (default Singapore), unless <see cref="Endpoint"/> is set.</summary>
    public GatehouseRegion Region { get; set; } = GatehouseRegion.Sg;

    /// <summary>A custom endpoint, such as a self-hosted Gatehouse; overrides <see cref="Region"/>.</summary>
    public Uri? Endpoint { get; set; }

    /// <summary>
    /// This device's identifier. Keep it across restarts: when another user logs in with the same device identifier,
    /// the previous user's sessions on it end. Default: a new <c>dotnetSdk#&lt;uuid&gt;</c> for each client.
    /// </summary>
    public string? DeviceId { get; set; }

    /// <summary>Where the session is kept (default in memory).</summary>
    public ITokenStore TokenStore { get; set; } = new InMemoryTokenStore();

    /// <summary>How often the access token's age is checked for renewal (default 10 minutes, as the official SDKs; at most 49 days).</summary>
    public TimeSpan RenewalCheckInterval { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>The clock (default the system's); tests move a fake one.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}

/// <summary>
/// A user's connection to Gatehouse from an app: login, the session's states, renewal before expiry and secure
/// logout, as the official social.plus SDKs do them.
/// </summary>
public sealed class GatehouseClient : IAsyncDisposable
{
    /// <summary>Renewal is offered once this share of the access token's life has passed.</summary>
    private const double RenewalPoint = 0.8;

    /// <summary>The longest period a timer takes (2^32 − 2 ms).</summary>
    private static readonly TimeSpan MaxCheckInterval = TimeSpan.FromDays(49);

    private static readonly string SdkVersion =
        typeof(GatehouseClient).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0";

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly GatehouseClientOptions _options;
    private readonly Transport _transport;
    private readonly SemaphoreSlim _checking = new(1, 1);
    private readonly CancellationTokenSource _disposed = new();
    private readonly Lock _stateLock = new();
    private ITimer? _timer;
    private ISessionHandler? _handler;
    private GatehouseSession? _session;
    private SessionState _state = SessionState.NotLoggedIn;

    /// <summary>Creates a client. Pass an <see cref="HttpClient"/> to control its handler (proxy, TLS trust); its
    /// base address is set to the endpoint if empty.</summary>
    /// <exception cref="ArgumentException">The API key is missing.</exception>
    public GatehouseClient(GatehouseClientOptions options, HttpClient? http = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ApiKey))
            throw new ArgumentException("ApiKey is required: the network's API key from the console.", nameof(options));
        if (options.RenewalCheckInterval <= TimeSpan.Zero || options.RenewalCheckInterval > MaxCheckInterval)
            throw new ArgumentException("RenewalCheckInterval must be more than zero and at most 49 days.", nameof(options));
        _options = options;
        _ownsHttp = http is null;
        _http = http ?? new HttpClient();
        _http.BaseAddress ??= options.Endpoint ?? GatehouseEndpoints.ForRegion(options.Region);
        _transport = new Transport(_http, retry: null, options.TimeProvider);
        DeviceId = options.DeviceId ?? "dotnetSdk#" + Guid.NewGuid();
    }

    /// <summary>The device identifier sent with every login.</summary>
    public string DeviceId { get; }

    /// <summary>The session's state.</summary>
    public SessionState State
    {
        get { lock (_stateLock) return _state; }
    }

    /// <summary>The live session, if any.</summary>
    public GatehouseSession? Session
    {
        get { lock (_stateLock) return _session; }
    }

    /// <summary>Raised on every change of <see cref="State"/>.</summary>
    public event EventHandler<SessionStateChangedEventArgs>? SessionStateChanged;

    /// <summary>
    /// Opens a session for a user. In secure mode pass an auth token minted by the app's backend. The handler is
    /// asked to renew the access token when 80 % of its life has passed.
    /// </summary>
    /// <returns>The user as the server knows it.</returns>
    /// <exception cref="GatehouseUnauthorizedException">The API key or auth token was refused; the state goes back to not logged in.</exception>
    /// <exception cref="GatehouseBannedException">The user is banned.</exception>
    public async Task<GatehouseUser> LoginAsync(string userId, string? displayName = null, string? authToken = null,
        ISessionHandler? sessionHandler = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(userId);
        SetState(SessionState.Establishing, null);
        try
        {
            var (session, user) = await OpenSessionAsync(userId, displayName, authToken, cancellationToken).ConfigureAwait(false);
            _handler = sessionHandler;
            await EstablishAsync(session, cancellationToken).ConfigureAwait(false);
            return user;
        }
        catch (Exception e) when (e is GatehouseException or OperationCanceledException)
        {
            SetState(SessionState.NotLoggedIn, e as GatehouseException);
            throw;
        }
    }

    /// <summary>
    /// Takes up the session kept in the token store, without a call to the server (the next call checks it).
    /// </summary>
    /// <returns>Whether a session was found.</returns>
    public async Task<bool> ResumeAsync(ISessionHandler? sessionHandler = null, CancellationToken cancellationToken = default)
    {
        var session = await _options.TokenStore.LoadAsync(cancellationToken).ConfigureAwait(false);
        if (session is null || session.DeviceId != DeviceId)
            return false;
        _handler = sessionHandler;
        await EstablishAsync(session, cancellationToken).ConfigureAwait(false);
        await CheckSessionAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>The logged-in user, read from the server; a refusal that ends the session moves the state to terminated.</summary>
    /// <exception cref="InvalidOperationException">No session.</exception>
    public async Task<GatehouseUser> GetCurrentUserAsync(CancellationToken cancellationToken = default)
    {
        var answer = await WithSessionAsync(HttpMethod.Get, "api/v3/users/me",
            request => _transport.SendAsync<UsersAnswer>(request, cancellationToken), cancellationToken).ConfigureAwait(false);
        return answer.Users[0];
    }

    /// <summary>
    /// Secure logout: the server revokes the session's tokens, and only then is the local session forgotten. If the
    /// server cannot be reached the session stays, and the call throws.
    /// </summary>
    public async Task LogoutAsync(CancellationToken cancellationToken = default)
    {
        using (await WithSessionAsync(HttpMethod.Delete, "api/v4/sessions",
            request => _transport.SendForResponseAsync(request, cancellationToken), cancellationToken).ConfigureAwait(false))
        {
        }
        await EndAsync(SessionState.NotLoggedIn, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Checks the access token's age now (the client also does it every <see cref="GatehouseClientOptions.RenewalCheckInterval"/>):
    /// marks it expired when it is, and past 80 % of its life asks the session handler and renews as it answers.
    /// </summary>
    public async Task CheckSessionAsync(CancellationToken cancellationToken = default)
    {
        await _checking.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var session = Session;
            if (session is null || State is not (SessionState.Established or SessionState.TokenExpired))
                return;
            var now = _options.TimeProvider.GetUtcNow();
            if (now >= session.ExpiresAt)
                SetState(SessionState.TokenExpired, null);
            if (now < session.IssuedAt + (session.ExpiresAt - session.IssuedAt) * RenewalPoint || _handler is null)
                return;

            var renewal = new AccessTokenRenewal(session);
            try
            {
                await _handler.SessionWillRenewAccessTokenAsync(renewal, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The app's handler failed (its backend is down, say): as if it were unable; it is asked again later.
                return;
            }
            if (!renewal.Renewing)
                return;
            try
            {
                var renewed = renewal.AuthToken is null && session.RefreshToken is not null
                    ? await RefreshAsync(session, cancellationToken).ConfigureAwait(false)
                    : (await OpenSessionAsync(session.UserId, null, renewal.AuthToken, cancellationToken).ConfigureAwait(false)).Session;
                await EstablishAsync(renewed, cancellationToken).ConfigureAwait(false);
            }
            catch (GatehouseException e) when (e is GatehouseUnauthorizedException or GatehouseBannedException)
            {
                await EndAsync(SessionState.Terminated, e, cancellationToken).ConfigureAwait(false);
            }
            catch (GatehouseException)
            {
                // Unreachable or refused for a passing reason: the session stays and the handler is asked again.
            }
        }
        finally
        {
            _checking.Release();
        }
    }

    /// <summary>Stops the renewal checks; the session stays in the token store.</summary>
    public async ValueTask DisposeAsync()
    {
        await _disposed.CancelAsync().ConfigureAwait(false);
        if (_timer is not null)
            await _timer.DisposeAsync().ConfigureAwait(false);
        if (_ownsHttp)
            _http.Dispose();
        _checking.Dispose();
        _disposed.Dispose();
    }

    private async Task<(GatehouseSession Session, GatehouseUser User)> OpenSessionAsync(string userId, string? displayName, string? authToken,
        CancellationToken cancellationToken)
    {
        var body = new
        {
            userId,
            deviceId = DeviceId,
            displayName,
            authToken,
            deviceInfo = new { kind = "dotnet", model = RuntimeInformation.OSDescription, sdkVersion = SdkVersion },
        };
        var answer = await _transport.SendAsync<SessionAnswer>(() => WithApiKey(Transport.WithJson(HttpMethod.Post, "api/v5/sessions", body)),
            cancellationToken).ConfigureAwait(false);
        var user = answer.Users[0];
        if (user.IsGlobalBanned || user.IsDeleted)
            throw new GatehouseBannedException($"The user {user.UserId} is {(user.IsDeleted ? "deleted" : "banned")}.");
        return (new GatehouseSession(userId, DeviceId, answer.AccessToken, answer.RefreshToken, answer.IssuedAt, answer.ExpiresAt), user);
    }

    private async Task<GatehouseSession> RefreshAsync(GatehouseSession session, CancellationToken cancellationToken)
    {
        var answer = await _transport.SendAsync<SessionAnswer>(
            () => WithApiKey(Transport.WithJson(HttpMethod.Post, "api/v4/sessions/refresh", new { refreshToken = session.RefreshToken })),
            cancellationToken).ConfigureAwait(false);
        return session with { AccessToken = answer.AccessToken, RefreshToken = answer.RefreshToken, IssuedAt = answer.IssuedAt, ExpiresAt = answer.ExpiresAt };
    }

    /// <summary>Sends with the session's bearer token; a refusal that ends the session moves the state to terminated.</summary>
    private async Task<T> WithSessionAsync<T>(HttpMethod method, string path, Func<Func<HttpRequestMessage>, Task<T>> send,
        CancellationToken cancellationToken)
    {
        var session = Session ?? throw new InvalidOperationException("No session: log in first.");
        HttpRequestMessage Request()
        {
            var request = new HttpRequestMessage(method, path);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", session.AccessToken);
            return request;
        }
        try
        {
            return await send(Request).ConfigureAwait(false);
        }
        catch (GatehouseException e) when (e is GatehouseUnauthorizedException or GatehouseBannedException)
        {
            await EndAsync(SessionState.Terminated, e, cancellationToken).ConfigureAwait(false);
            throw;
        }
    }

    private async Task EstablishAsync(GatehouseSession session, CancellationToken cancellationToken)
    {
        await _options.TokenStore.SaveAsync(session, cancellationToken).ConfigureAwait(false);
        lock (_stateLock)
            _session = session;
        _timer ??= _options.TimeProvider.CreateTimer(_ => _ = CheckInBackgroundAsync(), null, _options.RenewalCheckInterval, _options.RenewalCheckInterval);
        SetState(session.ExpiresAt <= _options.TimeProvider.GetUtcNow() ? SessionState.TokenExpired : SessionState.Established, null);
    }

    private async Task EndAsync(SessionState state, GatehouseException? cause, CancellationToken cancellationToken)
    {
        lock (_stateLock)
            _session = null;
        await _options.TokenStore.ClearAsync(cancellationToken).ConfigureAwait(false);
        SetState(state, cause);
    }

    private async Task CheckInBackgroundAsync()
    {
        try
        {
            await CheckSessionAsync(_disposed.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or GatehouseException)
        {
            // A background check has no caller to tell; the state says what happened and the next check tries again.
        }
    }

    private void SetState(SessionState state, GatehouseException? cause)
    {
        SessionState previous;
        lock (_stateLock)
        {
            previous = _state;
            _state = state;
        }
        if (previous != state)
            SessionStateChanged?.Invoke(this, new SessionStateChangedEventArgs(previous, state, cause));
    }

    private HttpRequestMessage WithApiKey(HttpRequestMessage request)
    {
        request.Headers.Add("x-api-key", _options.ApiKey);
        return request;
    }
}
