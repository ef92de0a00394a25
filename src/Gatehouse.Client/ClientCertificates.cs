using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Gatehouse.Client;

/// <summary>A new private key and the certificate signing request to paste into the console's Security tab.</summary>
/// <param name="PrivateKeyPem">The private key (PKCS#8 PEM). It never leaves the backend; store it like the server key.</param>
/// <param name="RequestPem">The certificate signing request (PEM).</param>
public sealed record CertificateSigningRequest(string PrivateKeyPem, string RequestPem)
{
    /// <summary>Keeps the private key out of logs.</summary>
    public override string ToString() => "CertificateSigningRequest { PrivateKeyPem = (hidden) }";
}

/// <summary>Makes and loads the client certificates that mTLS asks of a backend.</summary>
public static class ClientCertificates
{
    /// <summary>A new P-256 key and a signing request naming the backend (<c>CN=<paramref name="name"/></c>).</summary>
    public static CertificateSigningRequest CreateRequest(string name, string? organization = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = new X500DistinguishedNameBuilder();
        subject.AddCommonName(name);
        if (!string.IsNullOrWhiteSpace(organization))
            subject.AddOrganizationName(organization);
        var request = new CertificateRequest(subject.Build(), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        return new CertificateSigningRequest(key.ExportPkcs8PrivateKeyPem(), request.CreateSigningRequestPem());
    }

    /// <summary>
    /// Loads the certificate the console issued (PEM) with its private key (PEM) as a certificate TLS can present.
    /// </summary>
    /// <exception cref="CryptographicException">The files are not a certificate and its matching key.</exception>
    public static X509Certificate2 Load(string certificatePemPath, string privateKeyPemPath) =>
        FromPem(File.ReadAllText(certificatePemPath), File.ReadAllText(privateKeyPemPath));

    /// <summary>Like <see cref="Load(string, string)"/>, from PEM text.</summary>
    public static X509Certificate2 FromPem(string certificatePem, string privateKeyPem)
    {
        using var ephemeral = X509Certificate2.CreateFromPem(certificatePem, privateKeyPem);
        // Windows' TLS stack cannot present a key that exists only in memory; a PKCS#12 round trip gives it one.
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
    }
}
