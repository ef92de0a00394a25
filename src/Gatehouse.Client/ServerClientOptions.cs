using System.Net.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
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

    /// <summary>The longest a call may take, its retries and their waits included (default 30 s).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>What is wrong with these settings, each said so that it can be fixed; empty when they are usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Endpoints.Check(Endpoint, nameof(Endpoint)).Problem is { } endpoint)
            problems.Add(endpoint);
        if (string.IsNullOrWhiteSpace(Credential))
            problems.Add($"{CredentialName} is required: {CredentialHint}");
        if (Retry is null || Retry.MaxRetries < 0 || Retry.BaseDelay < TimeSpan.Zero || Retry.MaxDelay < TimeSpan.Zero)
            problems.Add("Retry counts and delays cannot be negative.");
        if (Timeout <= TimeSpan.Zero || Timeout > MaxTimeout)
            problems.Add($"Timeout must be more than zero and at most {MaxTimeout.TotalMinutes:0} minutes.");
        return problems;
    }

    /// <summary>The longest timeout a cancellation timer takes without turning it into "never".</summary>
    internal static readonly TimeSpan MaxTimeout = TimeSpan.FromMinutes(30);

    private protected abstract string CredentialName { get; }

    private protected abstract string? Credential { get; }

    private protected abstract string CredentialHint { get; }

    /// <summary>Checks the settings and makes the transport both backend clients send through.</summary>
    internal Transport CreateTransport(HttpClient http, TimeProvider? time, ILogger? logger)
    {
        ArgumentNullException.ThrowIfNull(http);
        if (Problems() is [_, ..] problems)
            throw new ArgumentException(string.Join(" ", problems));
        // A copy: settings changed after construction must not reach a client that checked the old ones.
        var retry = new RetryOptions { MaxRetries = Retry.MaxRetries, BaseDelay = Retry.BaseDelay, MaxDelay = Retry.MaxDelay };
        return new Transport(http, Endpoints.Check(Endpoint, nameof(Endpoint)).Endpoint!, retry, Timeout, time ?? TimeProvider.System,
            logger ?? NullLogger.Instance);
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

    private protected override string CredentialName => nameof(ServerKey);

    private protected override string? Credential => ServerKey;

    private protected override string CredentialHint => "the network's server key (gsk_…), from the console or `server-key generate`.";

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

    private protected override string CredentialName => nameof(AdminToken);

    private protected override string? Credential => AdminToken;

    private protected override string CredentialHint => "an admin token (gat_…), from the console's Admin Users page or `admin-token generate`.";
}
