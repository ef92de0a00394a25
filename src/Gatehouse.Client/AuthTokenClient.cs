using Microsoft.Extensions.Logging;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.Client;

/// <summary>
/// Mints auth tokens for the customer's backend: the backend signs its user in its own way, then asks Gatehouse
/// for a ten-minute token that lets that user's app open a session in secure mode.
/// </summary>
public sealed class AuthTokenClient
{
    private readonly Transport _transport;
    private readonly string _serverKey;
    private readonly AuthTokenEndpoint _version;
    private readonly string? _visitorSecret;

    /// <summary>Creates a client over an <see cref="HttpClient"/> made with <see cref="ServerClientOptions.CreateHandler"/>
    /// (or registered with <see cref="GatehouseServiceCollectionExtensions.AddGatehouseAuthTokenClient(Microsoft.Extensions.DependencyInjection.IServiceCollection, Microsoft.Extensions.Configuration.IConfiguration)"/>).</summary>
    /// <exception cref="ArgumentException">The endpoint or server key is missing.</exception>
    /// <param name="http">Sends the calls; its <see cref="HttpClient.BaseAddress"/> is neither read nor changed.</param>
    /// <param name="options">The settings; checked here.</param>
    /// <param name="time">The clock retries wait on (default the system's).</param>
    /// <param name="logger">Where calls, retries and failures are logged (never a credential or token).</param>
    public AuthTokenClient(HttpClient http, AuthTokenClientOptions options, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _transport = options.CreateTransport(http, time, logger);
        _serverKey = options.ServerKey!;
        _version = options.Version;
        _visitorSecret = options.VisitorSecret;
    }

    /// <summary>Mints an auth token for one user of the server key's network.</summary>
    /// <exception cref="GatehouseUnauthorizedException">The server key, or the client certificate under mTLS, was refused.</exception>
    /// <exception cref="GatehouseException">Any other refusal, or Gatehouse could not be reached after the retries.</exception>
    public async Task<AuthToken> MintAsync(string userId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(userId);
        if (_version == AuthTokenEndpoint.V3)
        {
            var token = await _transport.SendAsync<string>("auth_token.mint",
                () => WithServerKey(Transport.Without(HttpMethod.Get, "api/v3/authentication/token?userId=" + Uri.EscapeDataString(userId))),
                cancellationToken).ConfigureAwait(false);
            return new AuthToken(token, null);
        }
        var answer = await _transport.SendAsync<AuthTokenAnswer>("auth_token.mint",
            () => WithServerKey(Transport.WithJson(HttpMethod.Post, "api/v4/authentication/token", new { userId })),
            cancellationToken).ConfigureAwait(false);
        return new AuthToken(answer.AuthToken, answer.ExpiresAt);
    }

    /// <summary>
    /// Opens a session for one of the backend's users and answers its access token, for an app that logs in with the
    /// token alone (<c>loginWithAccessToken</c>); to renew, the app asks the backend, which opens another. No refresh
    /// token is made.
    /// </summary>
    /// <param name="userId">The user, as the app knows it.</param>
    /// <param name="displayName">The user's display name, set or changed with the session; null leaves it.</param>
    /// <param name="deviceId">The app's device, if the backend knows it; without one the user's backend sessions share one device.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="GatehouseUnauthorizedException">The server key, or the client certificate under mTLS, was refused.</exception>
    /// <exception cref="GatehouseException">Any other refusal (488999 for a visitor's userId, 400312 for a banned user).</exception>
    public async Task<BackendSession> OpenSessionAsync(string userId, string? displayName = null, string? deviceId = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(userId);
        var answer = await _transport.SendAsync<BackendSessionAnswer>("server_session.open",
            () => WithServerKey(Transport.WithJson(HttpMethod.Post, "api/v5/server/sessions", new { userId, displayName, deviceId })),
            cancellationToken).ConfigureAwait(false);
        return new BackendSession(userId, answer.UserType, answer.AccessToken, answer.IssuedAt, answer.ExpiresAt);
    }

    /// <summary>
    /// Signs a visitor's device for <c>loginAsVisitor</c> in secure mode, with <see cref="AuthTokenClientOptions.VisitorSecret"/>:
    /// HMAC-SHA256 in hex of <c>deviceId=&lt;deviceId&gt;&amp;authSignatureExpiresAt=&lt;expiry&gt;</c>. Computed here; nothing is sent.
    /// </summary>
    /// <param name="deviceId">The device id the app's SDK sends (the 7.x SDKs keep one per installation).</param>
    /// <param name="expiresAt">Until when the signature opens sessions; Gatehouse refuses one more than 24 hours ahead (by default).</param>
    /// <exception cref="InvalidOperationException">No visitor secret was configured.</exception>
    public VisitorSignature SignVisitor(string deviceId, DateTimeOffset expiresAt)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(deviceId);
        if (string.IsNullOrWhiteSpace(_visitorSecret))
            throw new InvalidOperationException("VisitorSecret is required to sign visitors: set AuthTokenClientOptions.VisitorSecret.");
        // As JavaScript's toISOString writes it, the form apps and the hosted docs use.
        var until = expiresAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(_visitorSecret),
            Encoding.UTF8.GetBytes($"deviceId={deviceId}&authSignatureExpiresAt={until}"));
        return new VisitorSignature(Convert.ToHexStringLower(mac), until);
    }

    private HttpRequestMessage WithServerKey(HttpRequestMessage request)
    {
        request.Headers.Add("x-server-key", _serverKey);
        return request;
    }
}
