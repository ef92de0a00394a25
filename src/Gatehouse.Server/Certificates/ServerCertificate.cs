using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Server.Configuration;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Certificates;

/// <summary>
/// The HTTPS endpoint's certificate: the configured PEM pair in production; otherwise a self-signed one for
/// localhost, made on first start and kept in the data directory so clients can pin it.
/// </summary>
internal sealed class ServerCertificate(IOptions<GatehouseOptions> options, TimeProvider clock)
{
    private readonly Lock _gate = new();
    private X509Certificate2? _certificate;

    public X509Certificate2 Certificate
    {
        get
        {
            lock (_gate)
                return _certificate ??= Load();
        }
    }

    private X509Certificate2 Load()
    {
        var https = options.Value.Https;
        if (!string.IsNullOrEmpty(https.CertificatePath))
            return X509Certificate2.CreateFromPemFile(https.CertificatePath, https.KeyPath);

        var folder = Directory.CreateDirectory(Path.Combine(Path.GetFullPath(options.Value.DataDirectory), "tls"));
        var certificatePath = Path.Combine(folder.FullName, "server.crt.pem");
        var keyPath = Path.Combine(folder.FullName, "server.key.pem");
        var names = https.SelfSignedNames;
        if (File.Exists(certificatePath) && File.Exists(keyPath))
        {
            var kept = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
            if (Covers(kept, names))
                return kept;
            kept.Dispose();
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var hostName = names.FirstOrDefault(n => !IPAddress.TryParse(n, out _)) ?? "localhost";
        var request = new CertificateRequest($"CN={hostName}, O=Gatehouse (self-signed)", key, HashAlgorithmName.SHA256);
        var alternativeNames = new SubjectAlternativeNameBuilder();
        foreach (var name in names)
        {
            if (IPAddress.TryParse(name, out var address))
                alternativeNames.AddIpAddress(address);
            else
                alternativeNames.AddDnsName(name);
        }
        request.CertificateExtensions.Add(alternativeNames.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        var now = clock.GetUtcNow();
        using var created = request.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(5));
        File.WriteAllText(certificatePath, created.ExportCertificatePem());
        using (var keyFile = new StreamWriter(Storage.PrivateFiles.Create(keyPath)))
            keyFile.Write(key.ExportPkcs8PrivateKeyPem());
        return X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
    }

    /// <summary>Whether the certificate names every configured host and address.</summary>
    private static bool Covers(X509Certificate2 certificate, IEnumerable<string> names)
    {
        var extension = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        if (extension is null)
            return false;
        var dns = extension.EnumerateDnsNames().ToHashSet(StringComparer.OrdinalIgnoreCase);
        var addresses = extension.EnumerateIPAddresses().ToHashSet();
        return names.All(n => IPAddress.TryParse(n, out var address) ? addresses.Contains(address) : dns.Contains(n));
    }
}
