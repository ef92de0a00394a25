using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Gatehouse.Client;

/// <summary>What the backend clients (<see cref="AuthTokenClient"/>, <see cref="AdminClient"/>) share.</summary>
public abstract class ServerClientOptions
{
    /// <summary>Gatehouse's address; with mTLS on, its HTTPS address (for example <c>https://gatehouse.example:5443/</c>).</summary>
    public Uri? Endpoint { get; set; }

    /// <summary>
    /// The network's client certificate with its private key, for networks with mTLS on; load it with
    /// <see cref="ClientCertificates.Load(string, string)"/>.
    /// </summary>
    public X509Certificate2? ClientCertificate { get; set; }

    /// <summary>
    /// Decides whether Gatehouse's TLS certificate is trusted when the operating system's store does not (a deployment
    /// with its own certificate); null keeps the system's decision.
    /// </summary>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; set; }

    /// <summary>Retries on transient failures (network errors, timeouts, 500/502/503/504); never on a 4xx.</summary>
    public RetryOptions Retry { get; set; } = new();

    /// <summary>Checks the settings and readies <paramref name="http"/>: what both backend clients do first.</summary>
    internal Transport CreateTransport(HttpClient http, string credentialName, string? credential, TimeProvider? time)
    {
        ArgumentNullException.ThrowIfNull(http);
        Validate(credentialName, credential);
        http.BaseAddress ??= Endpoint;
        return new Transport(http, Retry, time ?? TimeProvider.System);
    }

    private void Validate(string credentialName, string? credential)
    {
        if (Endpoint is null || !Endpoint.IsAbsoluteUri)
            throw new ArgumentException("Endpoint must be Gatehouse's absolute address, for example https://gatehouse.example:5443/.");
        if (string.IsNullOrWhiteSpace(credential))
            throw new ArgumentException($"{credentialName} is required.");
        if (Retry.MaxRetries < 0 || Retry.BaseDelay < TimeSpan.Zero || Retry.MaxDelay < TimeSpan.Zero)
            throw new ArgumentException("Retry counts and delays cannot be negative.");
    }

    /// <summary>The handler a backend client needs: the client certificate presented in the TLS handshake, connections reused.</summary>
    public SocketsHttpHandler CreateHandler()
    {
        var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        if (ClientCertificate is not null)
            handler.SslOptions.ClientCertificates = [ClientCertificate];
        if (ServerCertificateValidation is not null)
            handler.SslOptions.RemoteCertificateValidationCallback = ServerCertificateValidation;
        return handler;
    }
}

/// <summary>Which auth-token endpoint to call.</summary>
public enum AuthTokenEndpoint
{
    /// <summary><c>GET /api/v3/authentication/token</c>: answers the token alone.</summary>
    V3,
    /// <summary><c>POST /api/v4/authentication/token</c>: answers the token and its expiry.</summary>
    V4,
}

/// <summary>Settings of <see cref="AuthTokenClient"/>.</summary>
public sealed class AuthTokenClientOptions : ServerClientOptions
{
    /// <summary>The network's server key (<c>gsk_…</c>). Keep it in a secret store, never in an app.</summary>
    public string? ServerKey { get; set; }

    /// <summary>The endpoint version (default v4).</summary>
    public AuthTokenEndpoint Version { get; set; } = AuthTokenEndpoint.V4;

    /// <summary>
    /// The network's visitor secret (<c>gvs_…</c>), for <see cref="AuthTokenClient.SignVisitor"/> in secure mode; generated in
    /// the console (Settings · Integrations) or with <c>visitor-secret generate</c>. Keep it beside the server key.
    /// </summary>
    public string? VisitorSecret { get; set; }
}

/// <summary>Settings of <see cref="AdminClient"/>.</summary>
public sealed class AdminClientOptions : ServerClientOptions
{
    /// <summary>An admin token (<c>gat_…</c>) generated in the console's Admin Users page.</summary>
    public string? AdminToken { get; set; }
}
