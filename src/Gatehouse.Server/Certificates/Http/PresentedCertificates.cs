using System.Net;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Server.Api;
using Gatehouse.Server.Configuration;

namespace Gatehouse.Server.Certificates.Http;

/// <summary>The client certificate a request presented, as <see cref="MtlsGate"/> judges it.</summary>
internal sealed class PresentedCertificate(X509Certificate2? certificate, bool overTls, bool owned) : IDisposable
{
    public X509Certificate2? Certificate { get; } = certificate;
    public bool OverTls { get; } = overTls;

    /// <summary>A forwarded certificate was parsed here and is ours to dispose; the connection's own is not.</summary>
    public void Dispose()
    {
        if (owned)
            Certificate?.Dispose();
    }
}

internal static class PresentedCertificates
{
    /// <summary>
    /// Whether the request can carry a certificate at all (over TLS, or from a proxy that may forward one): a plain
    /// HTTP call with mTLS off is then answered without reading any (docs/benchmarks.md, change 55).
    /// </summary>
    public static bool CanPresent(HttpContext http, MtlsOptions mtls) =>
        http.Request.IsHttps || mtls.ForwardedCertificateHeader is { Length: > 0 };

    /// <summary>
    /// The certificate of the TLS connection, or, only when the option is on and the caller is a configured
    /// proxy, the one the proxy forwarded in its header (the proxy terminated TLS).
    /// </summary>
    public static async Task<PresentedCertificate> OfAsync(HttpContext http, MtlsOptions mtls)
    {
        if (mtls.ForwardedCertificateHeader is { Length: > 0 } header
            && ClientAddresses.Peer(http) is { } remote
            && mtls.TrustedProxies.Any(p => IPAddress.TryParse(p, out var proxy) && proxy.Equals(remote.IsIPv4MappedToIPv6 ? remote.MapToIPv4() : remote)))
        {
            return new PresentedCertificate(ParseForwarded(http.Request.Headers[header].ToString()), overTls: true, owned: true);
        }
        if (!http.Request.IsHttps)
            return new PresentedCertificate(null, overTls: false, owned: false);
        // The connection's own: only read here, never disposed (the connection does that).
        return new PresentedCertificate(await http.Connection.GetClientCertificateAsync(http.RequestAborted), overTls: true, owned: false);
    }

    /// <summary>A URL-encoded PEM (nginx's $ssl_client_escaped_cert) or a base64 DER certificate.</summary>
    private static X509Certificate2? ParseForwarded(string value)
    {
        if (string.IsNullOrWhiteSpace(value) || value.Length > 16 * 1024)
            return null;
        try
        {
            var text = Uri.UnescapeDataString(value);
            return text.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal)
                ? X509Certificate2.CreateFromPem(text)
                : X509CertificateLoader.LoadCertificate(Convert.FromBase64String(text));
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or FormatException or ArgumentException)
        {
            return null;
        }
    }
}
