using System.Net.Http.Headers;
using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Client;

/// <summary>
/// A user's connection to Gatehouse from an app: login, the session's states, renewal before expiry and secure
/// logout, as the official social.plus SDKs do them.
/// </summary>
public sealed partial class GatehouseClient : IAsyncDisposable, IDisposable
{
    /// <summary>Renewal is offered once this share of the access token's life has passed.</summary>
    private const double RenewalPoint = 0.8;

    private static readonly string SdkVersion =
        typeof(GatehouseClient).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0";

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly string _apiKey;
    private readonly ITokenStore _store;
    private readonly TimeProvider _time;
    private readonly TimeSpan _checkInterval;
    private readonly Transport _transport;
    private readonly TimeSpan _timeout;
    private readonly ILogger _logger;

    /// <summary>Set while the client runs the app's session handler, which must not wait for the client's turn it holds.</summary>
    private static readonly AsyncLocal<GatehouseClient?> RunningHandlerOf = new();

    /// <summary>
    /// One change of the session at a time: logins, logouts, resumes and renewals wait for each other, so that a
    /// refresh token is never spent twice (Gatehouse ends a session whose refresh token comes back) and parallel
    /// logins leave the session the server kept.
    /// </summary>
    private readonly SemaphoreSlim _changing = new(1, 1);

    private readonly CancellationTokenSource _disposing = new();
    private readonly Lock _stateLock = new();
    private ITimer? _timer;
    private ISessionHandler? _handler;
    private GatehouseSession? _session;
    private SessionState _state = SessionState.NotLoggedIn;
    private int _disposed;

    /// <summary>Creates a client. The settings are checked here.</summary>
    /// <param name="options">The settings; read once, here.</param>
    /// <param name="http">
    /// Sends the calls, to control the handler (proxy, TLS trust); default a client of its own. Its
    /// <see cref="HttpClient.BaseAddress"/> is neither read nor changed, so several clients may share it.
    /// </param>
    /// <param name="logger">Where calls, retries, renewals and state changes are logged (never a token).</param>
    /// <exception cref="ArgumentException">The settings cannot work; the message says each problem.</exception>
    public GatehouseClient(GatehouseClientOptions options, HttpClient? http = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Problems() is [_, ..] problems)
            throw new ArgumentException(string.Join(" ", problems), nameof(options));
        _apiKey = options.ApiKey!;
        _store = options.TokenStore;
        _time = options.TimeProvider;
        _checkInterval = options.RenewalCheckInterval;
        _timeout = options.Timeout;
        _logger = logger ?? NullLogger.Instance;
        _ownsHttp = http is null;
        // The client's Timeout bounds each call; HttpClient's own 100 s would otherwise cut in first.
        _http = http ?? new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,
        };
        _transport = new Transport(_http, options.BaseAddress(), retry: null, options.Timeout, _time, _logger);
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
    /// asked to renew the access token when 80 % of its life has passed. Logins, logouts and renewals of one client
    /// run one after another; the last login's session is the one kept.
    /// </summary>
    /// <returns>The user as the server knows it.</returns>
    /// <exception cref="GatehouseUnauthorizedException">The API key or auth token was refused; the state goes back to what it was.</exception>
    /// <exception cref="GatehouseBannedException">The user is banned.</exception>
    /// <exception cref="GatehouseUnreachableException">No answer (including <see cref="GatehouseTimeoutException"/>).</exception>
    /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
    public async Task<GatehouseUser> LoginAsync(string userId, string? displayName = null, string? authToken = null,
        ISessionHandler? sessionHandler = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(userId);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var before = State;
            SetState(SessionState.Establishing, null);
            try
            {
                var (session, user) = await OpenSessionAsync(userId, displayName, authToken, cancellationToken).ConfigureAwait(false);
                var previousHandler = _handler;
                _handler = sessionHandler;
                try
                {
                    await EstablishAsync(session).ConfigureAwait(false);
                }
                catch
                {
                    _handler = previousHandler;
                    throw;
                }
                return user;
            }
            catch (Exception e) when (State == SessionState.Establishing)
            {
                // A session this client already had is still there: the failed login leaves it as it was.
                SetState(Session is null ? SessionState.NotLoggedIn : before, e as GatehouseException);
                if (WhenDisposed(e) is ObjectDisposedException disposed && disposed != e)
                    throw disposed;
                throw;
            }
        }
        finally
        {
            _changing.Release();
        }
    }

    /// <summary>
    /// Takes up the session kept in the token store, without a call to the server (the next call checks it).
    /// </summary>
    /// <returns>Whether a session was found.</returns>
    /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
    public async Task<bool> ResumeAsync(ISessionHandler? sessionHandler = null, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var session = await _store.LoadAsync(cancellationToken).ConfigureAwait(false);
            if (session is null || session.DeviceId != DeviceId)
                return false;
            _handler = sessionHandler;
            await EstablishAsync(session).ConfigureAwait(false);
        }
        finally
        {
            _changing.Release();
        }
        await CheckSessionAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// The logged-in user, read from the server. An expired access token is renewed first (see
    /// <see cref="CheckSessionAsync"/>); a refusal that ends the session moves the state to terminated.
    /// </summary>
    /// <exception cref="InvalidOperationException">No session.</exception>
    /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
    public async Task<GatehouseUser> GetCurrentUserAsync(CancellationToken cancellationToken = default)
    {
        var answer = await WithSessionAsync(session => _transport.SendAsync<UsersAnswer>("users.me",
            () => Bearer(HttpMethod.Get, "api/v3/users/me", session), cancellationToken), cancellationToken).ConfigureAwait(false);
        return answer.Users[0];
    }

    /// <summary>
    /// Secure logout: the server revokes the session's tokens, and only then is the local session forgotten. If the
    /// server cannot be reached the session stays, and the call throws. Without a session (never logged in, logged out,
    /// terminated) it does nothing; a session the server had already ended is simply forgotten.
    /// </summary>
    /// <exception cref="GatehouseUnreachableException">No answer; the session stays.</exception>
    /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
    public async Task LogoutAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var session = Session;
            if (session is null)
                return;
            try
            {
                if (IsExpired(session))
                {
                    // The access token cannot end the session; the refresh token still can, through a renewal. Without
                    // one, nothing that could open the session is left to revoke.
                    session = await RenewLockedAsync(session, askHandler: false, cancellationToken).ConfigureAwait(false);
                }
                if (session is not null)
                    await EndOnServerAsync(session, cancellationToken).ConfigureAwait(false);
            }
            catch (GatehouseException e) when (e is GatehouseUnauthorizedException or GatehouseBannedException)
            {
                // Refused for good: the server has already ended the session, which is what a logout asks.
            }
            await EndAsync(SessionState.NotLoggedIn, null).ConfigureAwait(false);
        }
        finally
        {
            _changing.Release();
        }
    }

    /// <summary>
    /// Checks the access token's age now (the client also does it every <see cref="GatehouseClientOptions.RenewalCheckInterval"/>):
    /// marks it expired when it is, and past 80 % of its life renews it: as the session handler answers when there is
    /// one, else with the refresh token. A renewal refused for good (400100, 400312) terminates the session; one that
    /// fails for a passing reason is tried again at the next check.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
    public async Task CheckSessionAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var session = Session;
            if (session is null || State is not (SessionState.Established or SessionState.TokenExpired))
                return;
            var now = _time.GetUtcNow();
            if (now >= session.ExpiresAt)
                SetState(SessionState.TokenExpired, null);
            if (now < session.IssuedAt + (session.ExpiresAt - session.IssuedAt) * RenewalPoint)
                return;
            try
            {
                await RenewLockedAsync(session, askHandler: true, cancellationToken).ConfigureAwait(false);
            }
            catch (GatehouseException e) when (e is GatehouseUnauthorizedException or GatehouseBannedException)
            {
                await EndAsync(SessionState.Terminated, e).ConfigureAwait(false);
            }
            catch (GatehouseException e)
            {
                LogRenewalPostponed(_logger, e.GetType().Name, e.Message);
            }
        }
        finally
        {
            _changing.Release();
        }
    }

    /// <summary>
    /// Stops the renewal checks and releases the connection (when the client made its own); the session stays in the
    /// token store. Calling it again does nothing; any other call afterwards throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (!BeginDisposal())
            return;
        // A login, logout or renewal already sent finishes first (within the call's timeout), so that the tokens it
        // brings are kept: a refresh token spent on the server but lost here would end the session at the next one.
        var turnTaken = await _changing.WaitAsync(_timeout).ConfigureAwait(false);
        if (turnTaken)
            _changing.Release();
        if (_ownsHttp)
            _http.Dispose();
    }

    /// <summary>
    /// Like <see cref="DisposeAsync"/>, for containers that dispose synchronously; a login, logout or renewal under
    /// way is not waited for.
    /// </summary>
    public void Dispose()
    {
        if (!BeginDisposal())
            return;
        if (_ownsHttp)
            _http.Dispose();
    }

    /// <summary>Marks the client disposed and stops its checks; false when it already was.</summary>
    private bool BeginDisposal()
    {
        ITimer? timer;
        lock (_stateLock)
        {
            if (_disposed == 1)
                return false;
            _disposed = 1;
            timer = _timer;
        }
        _disposing.Cancel();
        timer?.Dispose();
        return true;
    }

    /// <summary>What a call sees when the client was disposed under it: the client named, not its HttpClient.</summary>
    private Exception WhenDisposed(Exception e) =>
        Volatile.Read(ref _disposed) == 1 && e is not ObjectDisposedException { ObjectName: "Gatehouse.Client.GatehouseClient" }
            ? new ObjectDisposedException(typeof(GatehouseClient).FullName, e)
            : e;

    private async Task EnterAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
        if (RunningHandlerOf.Value == this)
        {
            throw new InvalidOperationException(
                "The session handler called the client that is asking it to renew; it must answer through the renewal alone.");
        }
        await _changing.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (Volatile.Read(ref _disposed) == 1)
        {
            _changing.Release();
            ObjectDisposedException.ThrowIf(true, this);
        }
    }

    private bool IsExpired(GatehouseSession session) => _time.GetUtcNow() >= session.ExpiresAt;

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
        var answer = await _transport.SendAsync<SessionAnswer>("login", () => WithApiKey(Transport.WithJson(HttpMethod.Post, "api/v5/sessions", body)),
            cancellationToken).ConfigureAwait(false);
        var user = answer.Users[0];
        if (user.IsGlobalBanned || user.IsDeleted)
            throw new GatehouseBannedException($"The user {user.UserId} is {(user.IsDeleted ? "deleted" : "banned")}.");
        return (new GatehouseSession(userId, DeviceId, answer.AccessToken, answer.RefreshToken, answer.IssuedAt, answer.ExpiresAt), user);
    }

    private async Task<GatehouseSession> RefreshAsync(GatehouseSession session, CancellationToken cancellationToken)
    {
        var answer = await _transport.SendAsync<SessionAnswer>("refresh",
            () => WithApiKey(Transport.WithJson(HttpMethod.Post, "api/v4/sessions/refresh", new { refreshToken = session.RefreshToken })),
            cancellationToken).ConfigureAwait(false);
        return session with { AccessToken = answer.AccessToken, RefreshToken = answer.RefreshToken, IssuedAt = answer.IssuedAt, ExpiresAt = answer.ExpiresAt };
    }

    private Task EndOnServerAsync(GatehouseSession session, CancellationToken cancellationToken) =>
        _transport.SendAsync("logout", () => Bearer(HttpMethod.Delete, "api/v4/sessions", session), cancellationToken);

    /// <summary>
    /// Renews the session and establishes the result, with the session change already entered. With
    /// <paramref name="askHandler"/> the session handler decides (null: it cannot now); without a handler, or without
    /// asking it, the refresh token renews (null: there is none). A refusal is thrown for the caller to decide.
    /// </summary>
    private async Task<GatehouseSession?> RenewLockedAsync(GatehouseSession session, bool askHandler, CancellationToken cancellationToken)
    {
        string? authToken = null;
        if (askHandler && _handler is { } handler)
        {
            var renewal = new AccessTokenRenewal(session);
            RunningHandlerOf.Value = this;
            try
            {
                await handler.SessionWillRenewAccessTokenAsync(renewal, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The app's handler failed (its backend is down, say): as if it were unable; it is asked again later.
                LogHandlerFailed(_logger, e.GetType().Name, e.Message);
                return null;
            }
            finally
            {
                RunningHandlerOf.Value = null;
            }
            if (!renewal.Renewing)
                return null;
            authToken = renewal.AuthToken;
        }
        else if (session.RefreshToken is null)
        {
            return null;
        }

        // Once sent, a renewal is not cancelled by the caller (or a disposal): a refresh token the server spent but
        // whose successor was dropped here would, on its next use, end the session as stolen. The call's Timeout
        // still bounds it.
        var renewed = authToken is null && session.RefreshToken is not null
            ? await RefreshAsync(session, CancellationToken.None).ConfigureAwait(false)
            : (await OpenSessionAsync(session.UserId, null, authToken, CancellationToken.None).ConfigureAwait(false)).Session;
        await EstablishAsync(renewed).ConfigureAwait(false);
        return renewed;
    }

    /// <summary>
    /// Sends with the session's bearer token, renewing it first when it has expired, and once more when the server
    /// refuses a token this client thought valid (its clock ahead of ours): a revoked session fails that renewal too.
    /// A refusal that ends the session moves the state to terminated.
    /// </summary>
    private async Task<T> WithSessionAsync<T>(Func<GatehouseSession, Task<T>> send, CancellationToken cancellationToken)
    {
        try
        {
            return await SendWithSessionAsync(send, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (WhenDisposed(e) is ObjectDisposedException disposed && disposed != e)
        {
            throw disposed;
        }
    }

    private async Task<T> SendWithSessionAsync<T>(Func<GatehouseSession, Task<T>> send, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
        var session = Session ?? throw new InvalidOperationException("No session: log in first.");
        if (IsExpired(session))
            session = await RecoverAsync(session, refusal: null, cancellationToken).ConfigureAwait(false);
        try
        {
            return await send(session).ConfigureAwait(false);
        }
        catch (GatehouseUnauthorizedException refused)
        {
            session = await RecoverAsync(session, refused, cancellationToken).ConfigureAwait(false);
        }
        catch (GatehouseBannedException banned)
        {
            await EndIfCurrentAsync(session, banned, cancellationToken).ConfigureAwait(false);
            throw;
        }

        try
        {
            return await send(session).ConfigureAwait(false);
        }
        catch (GatehouseException e) when (e is GatehouseUnauthorizedException or GatehouseBannedException)
        {
            await EndIfCurrentAsync(session, e, cancellationToken).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The session to send with after <paramref name="failed"/> expired or was refused: renewed here, or already by
    /// another call while this one waited.
    /// </summary>
    private async Task<GatehouseSession> RecoverAsync(GatehouseSession failed, GatehouseUnauthorizedException? refusal, CancellationToken cancellationToken)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var current = Session;
            if (current is null)
                throw (Exception?)refusal ?? new InvalidOperationException("No session: log in first.");
            if (!ReferenceEquals(current, failed) && !IsExpired(current))
                return current;
            if (refusal is null)
                SetState(SessionState.TokenExpired, null);

            GatehouseSession? renewed;
            try
            {
                renewed = await RenewLockedAsync(current, askHandler: true, cancellationToken).ConfigureAwait(false);
            }
            catch (GatehouseException e) when (e is GatehouseUnauthorizedException or GatehouseBannedException)
            {
                await EndAsync(SessionState.Terminated, e).ConfigureAwait(false);
                throw;
            }
            if (renewed is not null)
                return renewed;
            if (refusal is not null && current.RefreshToken is null && _handler is null)
            {
                // Nothing can ever renew it: the server's refusal ends it, as it did before renewals existed.
                await EndAsync(SessionState.Terminated, refusal).ConfigureAwait(false);
                throw refusal;
            }
            // The handler cannot renew now: the session waits, expired, for the next check to try again.
            SetState(SessionState.TokenExpired, refusal);
            throw refusal ?? new GatehouseUnauthorizedException(
                "The access token has expired and could not be renewed now; the session handler is asked again at the next check.", statusCode: null);
        }
        finally
        {
            _changing.Release();
        }
    }

    private async Task EndIfCurrentAsync(GatehouseSession session, GatehouseException cause, CancellationToken cancellationToken)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (ReferenceEquals(Session, session))
                await EndAsync(SessionState.Terminated, cause).ConfigureAwait(false);
        }
        finally
        {
            _changing.Release();
        }
    }

    private static HttpRequestMessage Bearer(HttpMethod method, string path, GatehouseSession session)
    {
        var request = Transport.Without(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", session.AccessToken);
        return request;
    }

    /// <summary>
    /// Keeps the session: in memory first, which is what the next renewal spends, then in the store. A store that
    /// fails is logged, not thrown: the session the server just made (and the refresh token it just spent) must not
    /// be dropped for it.
    /// </summary>
    private async Task EstablishAsync(GatehouseSession session)
    {
        lock (_stateLock)
        {
            _session = session;
            if (_disposed == 0)
                _timer ??= _time.CreateTimer(_ => _ = CheckInBackgroundAsync(), null, _checkInterval, _checkInterval);
        }
        SetState(IsExpired(session) ? SessionState.TokenExpired : SessionState.Established, null);
        try
        {
            await _store.SaveAsync(session, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogStoreFailed(_logger, "save", e.GetType().Name, e.Message);
        }
    }

    /// <summary>Ends the session here; the state changes whatever the store does.</summary>
    private async Task EndAsync(SessionState state, GatehouseException? cause)
    {
        lock (_stateLock)
            _session = null;
        SetState(state, cause);
        try
        {
            await _store.ClearAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogStoreFailed(_logger, "clear", e.GetType().Name, e.Message);
        }
    }

    private async Task CheckInBackgroundAsync()
    {
        try
        {
            await CheckSessionAsync(_disposing.Token).ConfigureAwait(false);
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
        if (previous == state)
            return;
        LogStateChanged(_logger, previous, state, cause?.Code ?? 0);
        try
        {
            SessionStateChanged?.Invoke(this, new SessionStateChangedEventArgs(previous, state, cause));
        }
        catch (Exception e)
        {
            // An app's subscriber that fails must not leave the client half-way between two states.
            LogSubscriberFailed(_logger, e.GetType().Name, e.Message);
        }
    }

    private HttpRequestMessage WithApiKey(HttpRequestMessage request)
    {
        request.Headers.Add("x-api-key", _apiKey);
        return request;
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Gatehouse session {Previous} -> {Current} (code {Code})")]
    private static partial void LogStateChanged(ILogger logger, SessionState previous, SessionState current, int code);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "The session handler failed with {ErrorType}: {Reason}; it is asked again at the next check")]
    private static partial void LogHandlerFailed(ILogger logger, string errorType, string reason);

    [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "Renewal postponed to the next check: {ErrorType}: {Reason}")]
    private static partial void LogRenewalPostponed(ILogger logger, string errorType, string reason);

    [LoggerMessage(EventId = 13, Level = LogLevel.Error, Message = "The token store failed to {Action} the session ({ErrorType}: {Reason}); the client goes on with it in memory")]
    private static partial void LogStoreFailed(ILogger logger, string action, string errorType, string reason);

    [LoggerMessage(EventId = 14, Level = LogLevel.Error, Message = "A SessionStateChanged subscriber failed ({ErrorType}: {Reason})")]
    private static partial void LogSubscriberFailed(ILogger logger, string errorType, string reason);
}
