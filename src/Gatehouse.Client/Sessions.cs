namespace Gatehouse.Client;

/// <summary>The session states of the official SDKs.</summary>
public enum SessionState
{
    /// <summary>No session: before login, after logout, or after a failed login.</summary>
    NotLoggedIn,
    /// <summary>A login is under way.</summary>
    Establishing,
    /// <summary>The session is live and its access token valid.</summary>
    Established,
    /// <summary>The access token expired before it was renewed; a renewal brings the session back.</summary>
    TokenExpired,
    /// <summary>The server ended the session (revocation, device taken by another user, ban, refused renewal); log in again.</summary>
    Terminated,
}

/// <summary>A change of <see cref="GatehouseClient.State"/>.</summary>
public sealed class SessionStateChangedEventArgs(SessionState previous, SessionState current, GatehouseException? cause) : EventArgs
{
    /// <summary>The state before.</summary>
    public SessionState Previous { get; } = previous;
    /// <summary>The state now.</summary>
    public SessionState Current { get; } = current;
    /// <summary>The server's refusal that caused the change, if one did (for example a ban).</summary>
    public GatehouseException? Cause { get; } = cause;
}

/// <summary>
/// The app's answer when the access token nears its end (80 % of its life): renew, renew with a fresh auth token,
/// or say it cannot now and be asked again at the next check. Call one of the methods; the last call wins.
/// </summary>
public sealed class AccessTokenRenewal
{
    internal AccessTokenRenewal(GatehouseSession session) => Session = session;

    /// <summary>The session to renew.</summary>
    public GatehouseSession Session { get; }

    internal string? AuthToken { get; private set; }

    internal bool Renewing { get; private set; }

    /// <summary>Renews without the app's backend: with the refresh token when there is one (secure mode included),
    /// else by opening a new session, which only a network without secure mode accepts.</summary>
    public void Renew() => (Renewing, AuthToken) = (true, null);

    /// <summary>Renews by opening a new session with a fresh auth token from the app's backend.</summary>
    public void RenewWithAuthToken(string authToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(authToken);
        (Renewing, AuthToken) = (true, authToken);
    }

    /// <summary>No token can be had now (the backend is unreachable, say); the client asks again at the next check.</summary>
    public void UnableToRetrieveAuthToken() => (Renewing, AuthToken) = (false, null);
}

/// <summary>What the app supplies to keep a session alive, like the official SDKs' session handler.</summary>
public interface ISessionHandler
{
    /// <summary>Called when the access token has used 80 % of its life, and again at each check until renewed.</summary>
    Task SessionWillRenewAccessTokenAsync(AccessTokenRenewal renewal, CancellationToken cancellationToken);
}

/// <summary>Where a client keeps its session, so that an app can resume it after a restart.</summary>
public interface ITokenStore
{
    /// <summary>Keeps the session; called after every login and renewal.</summary>
    ValueTask SaveAsync(GatehouseSession session, CancellationToken cancellationToken);
    /// <summary>The kept session, if any.</summary>
    ValueTask<GatehouseSession?> LoadAsync(CancellationToken cancellationToken);
    /// <summary>Forgets the session; called on logout and termination.</summary>
    ValueTask ClearAsync(CancellationToken cancellationToken);
}

/// <summary>The default store: the session lives as long as the process.</summary>
public sealed class InMemoryTokenStore : ITokenStore
{
    private volatile GatehouseSession? _session;

    /// <inheritdoc/>
    public ValueTask SaveAsync(GatehouseSession session, CancellationToken cancellationToken)
    {
        _session = session;
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask<GatehouseSession?> LoadAsync(CancellationToken cancellationToken) => ValueTask.FromResult(_session);

    /// <inheritdoc/>
    public ValueTask ClearAsync(CancellationToken cancellationToken)
    {
        _session = null;
        return ValueTask.CompletedTask;
    }
}
