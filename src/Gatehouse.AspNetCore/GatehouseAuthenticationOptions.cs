namespace Gatehouse.AspNetCore;

/// <summary>How an API trusts Gatehouse access tokens (docs/resource-servers.md).</summary>
public sealed class GatehouseAuthenticationOptions
{
    /// <summary>
    /// Gatehouse's issuer: its <c>Gatehouse:PublicUrl</c> (such as <c>https://auth.example.com</c>). The discovery
    /// document, the keys, the issuer and the audience are read from there.
    /// </summary>
    public Uri? Authority { get; set; }

    /// <summary>
    /// The network's server key, to ask Gatehouse whether a token may still be used (introspection). Without it only
    /// the signature and lifetime are checked, and a revoked session is refused only when its token expires.
    /// </summary>
    public string? ServerKey { get; set; }

    /// <summary>
    /// How long an introspection answer is reused for the same token: the longest a logged-out, revoked or banned session
    /// can still call the API. Zero asks Gatehouse on every request.
    /// </summary>
    public TimeSpan RevocationCheckWindow { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The shortest time between two reads of the keys when a token names an unknown one (a key rotation).</summary>
    public TimeSpan KeyRefreshInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Refuse a discovery document served over plain HTTP (true unless for local development).</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>
    /// The handler for every call to Gatehouse (discovery, keys, introspection): to present the network's client
    /// certificate when mTLS is on, or to trust a self-signed Gatehouse certificate.
    /// </summary>
    public HttpMessageHandler? BackchannelHandler { get; set; }
}

/// <summary>The claims of a Gatehouse access token, as the authenticated user carries them.</summary>
public static class GatehouseClaims
{
    /// <summary>The user's id in its network (<c>sub</c>).</summary>
    public const string UserId = "sub";

    /// <summary>The network the user signed in to (<c>nid</c>).</summary>
    public const string NetworkId = "nid";

    /// <summary>The session the token belongs to (<c>sid</c>).</summary>
    public const string SessionId = "sid";

    /// <summary><c>signed-in</c>, <c>visitor</c> or <c>bot</c>: visitors and bots only read.</summary>
    public const string UserType = "user_type";
}
