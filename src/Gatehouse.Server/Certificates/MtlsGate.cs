using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Certificates;

/// <summary>
/// Enforces mTLS on the server-to-server endpoints of a network that has it on. TLS itself accepts any client
/// certificate; this gate decides, per request and on the server's clock: presented over TLS, chains to this
/// deployment's authority, within its validity, for client authentication, and one of this network's active
/// certificates. Each refusal says which condition failed. Which certificate the request presented is the HTTP
/// edge's to say (<see cref="Http.PresentedCertificates"/>). What does not change for a certificate (its chain,
/// usage and network) and its row are kept between requests (<see cref="KnownClientCertificates"/>).
/// </summary>
internal sealed class MtlsGate(IDbContextFactory<GatehouseDb> dbs, CertificateAuthority authority, KnownClientCertificates known, TimeProvider clock)
{
    private static readonly CompiledQuery<string, ClientCertificate?> ByFingerprint =
        new((db, fingerprint, ct) => db.ClientCertificates.AsNoTracking().FirstOrDefault(c => c.Fingerprint == fingerprint));

    public const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";

    /// <summary>
    /// For a caller whose network requires mTLS (read with its credential, in the same query): the certificate the
    /// request presented, and whether it came over TLS at all.
    /// </summary>
    public async Task<Refusal?> CheckAsync(X509Certificate2? certificate, bool overTls, string networkId, CancellationToken ct)
    {
        if (!overTls)
            return Errors.MtlsNotTls;
        if (certificate is null)
            return Errors.MtlsNoCertificate;

        var now = clock.GetUtcNow();
        if (now.UtcDateTime < certificate.NotBefore.ToUniversalTime() || now.UtcDateTime >= certificate.NotAfter.ToUniversalTime())
            return Errors.MtlsExpired;
        var fingerprint = ClientCertificates.Fingerprint(certificate);
        if (known.Verdict(fingerprint, networkId, authority.Certificate, (Gate: this, certificate, networkId, now),
                static judging => judging.Gate.Judge(judging.certificate, judging.networkId, judging.now)) is { } refused)
        {
            return refused;
        }

        var row = await known.RowAsync(fingerprint, (Gate: this, fingerprint, ct), static read => read.Gate.ReadAsync(read.fingerprint, read.ct));
        if (row is null || row.NetworkId != networkId)
            return row is null ? Errors.MtlsUnknown : Errors.MtlsOtherNetwork;
        if (row.RevokedAt is not null)
            return Errors.MtlsRevoked;
        return null;
    }

    private async Task<ClientCertificate?> ReadAsync(string fingerprint, CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        return await ByFingerprint.RunAsync(db, fingerprint, ct);
    }

    /// <summary>What the certificate says about itself against the authority: the same answer for as long as both exist.</summary>
    private Refusal? Judge(X509Certificate2 certificate, string networkId, DateTimeOffset now)
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
}
