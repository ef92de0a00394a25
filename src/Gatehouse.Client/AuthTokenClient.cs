namespace Gatehouse.Client;

/// <summary>
/// Mints auth tokens for the customer's backend: the backend signs its user in its own way, then asks Gatehouse
/// for a ten-minute token that lets that user's app open a session in secure mode.
/// </summary>
public sealed class AuthTokenClient
{
    private readonly Transport _transport;
    private readonly AuthTokenClientOptions _options;

    /// <summary>Creates a client over an <see cref="HttpClient"/> made with <see cref="ServerClientOptions.CreateHandler"/>
    /// (or registered with <see cref="GatehouseServiceCollectionExtensions.AddGatehouseAuthTokenClient"/>).</summary>
    /// <exception cref="ArgumentException">The endpoint or server key is missing.</exception>
    public AuthTokenClient(HttpClient http, AuthTokenClientOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _transport = options.CreateTransport(http, nameof(options.ServerKey), options.ServerKey, time);
        _options = options;
    }

    /// <summary>Mints an auth token for one user of the server key's network.</summary>
    /// <exception cref="GatehouseUnauthorizedException">The server key, or the client certificate under mTLS, was refused.</exception>
    /// <exception cref="GatehouseException">Any other refusal, or Gatehouse could not be reached after the retries.</exception>
    public async Task<AuthToken> MintAsync(string userId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(userId);
        if (_options.Version == AuthTokenEndpoint.V3)
        {
            var token = await _transport.SendAsync<string>(
                () => WithServerKey(new HttpRequestMessage(HttpMethod.Get, "api/v3/authentication/token?userId=" + Uri.EscapeDataString(userId))),
                cancellationToken).ConfigureAwait(false);
            return new AuthToken(token, null);
        }
        var answer = await _transport.SendAsync<AuthTokenAnswer>(
            () => WithServerKey(Transport.WithJson(HttpMethod.Post, "api/v4/authentication/token", new { userId })),
            cancellationToken).ConfigureAwait(false);
        return new AuthToken(answer.AuthToken, answer.ExpiresAt);
    }

    private HttpRequestMessage WithServerKey(HttpRequestMessage request)
    {
        request.Headers.Add("x-server-key", _options.ServerKey);
        return request;
    }
}
