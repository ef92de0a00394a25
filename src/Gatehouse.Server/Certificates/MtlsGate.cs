using System.Formats.Asn1;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Server.Api;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Certificates;

/// <summary>
/// Enforces mTLS on the server-to-server endpoints of a network that has it on. TLS itself accepts any client
/// certificate; this gate decides, per request and on the server's clock: presented over TLS, chains to this
/// deployment's authority, within its validity, for client authentication, and one of this network's active
/// certificates. Each refusal says which condition failed. What does not change for a certificate (its chain,
/// usage and network) and its row are kept between requests (<see cref="KnownClientCertificates"/>).
/// </summary>
public sealed class MtlsGate(GatehouseDb db, CertificateAuthority authority, KnownClientCertificates known, TimeProvider clock,
    IOptions<GatehouseOptions> options)
{
    private static readonly CompiledQuery<string, ClientCertificate?> ByFingerprint =
        new((db, fingerprint, ct) => db.ClientCertificates.AsNoTracking().FirstOrDefault(c => c.Fingerprint == fingerprint));

    public const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";

    /// <summary>
    /// For a caller whose network requires mTLS (read with its credential, in the same query); callers resolve the
    /// gate only then, because it holds the request's database context.
    /// </summary>
    public async Task<ApiError?> CheckAsync(HttpContext http, string networkId)
    {
        var (certificate, overTls, ours) = await PresentedAsync(http);
        try
        {
            if (!overTls)
                return Errors.MtlsNotTls;
            if (certificate is null)
                return Errors.MtlsNoCertificate;

            var now = clock.GetUtcNow();
            if (now.UtcDateTime < certificate.NotBefore.ToUniversalTime() || now.UtcDateTime >= certificate.NotAfter.ToUniversalTime())
                return Errors.MtlsExpired;
            var fingerprint = ClientCertificates.Fingerprint(certificate);
            if (known.Verdict(fingerprint, networkId, authority.Certificate, () => Judge(certificate, networkId, now)) is { } refused)
                return refused;

            var row = await known.RowAsync(fingerprint, () => ByFingerprint.RunAsync(db, fingerprint, http.RequestAborted));
            if (row is null || row.NetworkId != networkId)
                return row is null ? Errors.MtlsUnknown : Errors.MtlsOtherNetwork;
            if (row.RevokedAt is not null)
                return Errors.MtlsRevoked;
            return null;
        }
        finally
        {
            if (ours)
                certificate?.Dispose();
        }
    }

    /// <summary>What the certificate says about itself against the authority: the same answer for as long as both exist.</summary>
    private ApiError? Judge(X509Certificate2 certificate, string networkId, DateTimeOffset now)
    {
        if (!ChainsToAuthority(certificate, now))
            return Errors.MtlsUntrusted;
        if (!certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Any(e => e.EnhancedKeyUsages[ClientAuthentication] is not null))
            return Errors.MtlsNotClientAuthentication;
        if (!BoundTo(certificate, networkId))
            return Errors.MtlsOtherNetwork;
        return null;
    }

    private bool ChainsToAuthority(X509Certificate2 certificate, DateTimeOffset now)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority.Certificate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = now.UtcDateTime;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        return chain.Build(certificate)
            && chain.ChainElements.Count == 2
            && chain.ChainElements[1].Certificate.RawDataMemory.Span.SequenceEqual(authority.Certificate.RawDataMemory.Span);
    }

    /// <summary>The network written into the certificate's subject alternative name (a URI) at issue.</summary>
    private static bool BoundTo(X509Certificate2 certificate, string networkId)
    {
        var expected = CertificateAuthority.NetworkUriPrefix + networkId;
        var uriTag = new Asn1Tag(TagClass.ContextSpecific, 6);
        foreach (var san in certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>())
        {
            try
            {
                var names = new AsnReader(san.RawData, AsnEncodingRules.DER).ReadSequence();
                while (names.HasData)
                {
                    if (names.PeekTag().HasSameClassAndValue(uriTag))
                    {
                        if (names.ReadCharacterString(UniversalTagNumber.IA5String, uriTag) == expected)
                            return true;
                    }
                    else
                    {
                        names.ReadEncodedValue();
                    }
                }
            }
            catch (AsnContentException)
            {
                return false;
            }
        }
        return false;
    }

    /// <summary>
    /// The certificate of the TLS connection, or, only when the option is on and the caller is a configured
    /// proxy, the one the proxy forwarded in its header (the proxy terminated TLS).
    /// </summary>
    private async Task<(X509Certificate2? Certificate, bool OverTls, bool Ours)> PresentedAsync(HttpContext http)
    {
        var mtls = options.Value.Mtls;
        if (mtls.ForwardedCertificateHeader is { Length: > 0 } header
            && ClientAddresses.Peer(http) is { } remote
            && mtls.TrustedProxies.Any(p => IPAddress.TryParse(p, out var proxy) && proxy.Equals(remote.IsIPv4MappedToIPv6 ? remote.MapToIPv4() : remote)))
        {
            return (ParseForwarded(http.Request.Headers[header].ToString()), true, true);
        }
        if (!http.Request.IsHttps)
            return (null, false, false);
        // The connection's own: only read here, never disposed (the connection does that).
        return (await http.Connection.GetClientCertificateAsync(http.RequestAborted), true, false);
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
