using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Server.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Certificates;

/// <summary>
/// The authority that issues every client certificate of this deployment: an ECDSA P-256 key pair made on
/// first start, its certificate public (customers may pin it), its private key encrypted with Data Protection.
/// </summary>
internal sealed class CertificateAuthority(IDbContextFactory<GatehouseDb> dbs, IDataProtectionProvider dataProtection, TimeProvider clock)
{
    public const string NetworkUriPrefix = "urn:gatehouse:network:";
    private static readonly TimeSpan Lifetime = TimeSpan.FromDays(3650);
    private readonly IDataProtector _protector = dataProtection.CreateProtector("Gatehouse.CertificateAuthority.v1");
    private X509Certificate2? _certificate;
    private string? _protectedKey;

    public X509Certificate2 Certificate => _certificate ?? throw new InvalidOperationException("The certificate authority is not loaded yet.");

    public string CertificatePem => Certificate.ExportCertificatePem();

    /// <summary>The issued certificate followed by the authority's: the file a client loads or checks against.</summary>
    public string ChainPem(ClientCertificate issued) => issued.CertificatePem.TrimEnd() + "\n" + CertificatePem.TrimEnd() + "\n";

    public async Task LoadAsync(CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var row = await db.CertificateAuthorityKeys.AsNoTracking().FirstOrDefaultAsync(ct);
        if (row is null)
        {
            row = Create();
            db.CertificateAuthorityKeys.Add(row);
            await db.SaveChangesAsync(ct);
        }
        _certificate = X509Certificate2.CreateFromPem(row.CertificatePem);
        _protectedKey = row.ProtectedPrivateKey;
    }

    /// <summary>Signs a client certificate; the key is decrypted for this one signature and dropped.</summary>
    public X509Certificate2 Issue(CertificateRequest request, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using var key = ECDsa.Create();
        key.ImportPkcs8PrivateKey(Convert.FromBase64String(_protector.Unprotect(_protectedKey!)), out _);
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        return request.Create(Certificate.SubjectName, X509SignatureGenerator.CreateForECDsa(key), notBefore, notAfter, serial);
    }

    private CertificateAuthorityKey Create()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=Gatehouse Client CA, O=Gatehouse", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = clock.GetUtcNow();
        using var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now + Lifetime);
        return new CertificateAuthorityKey
        {
            CertificatePem = certificate.ExportCertificatePem(),
            ProtectedPrivateKey = _protector.Protect(Convert.ToBase64String(key.ExportPkcs8PrivateKey())),
            CreatedAt = now,
        };
    }
}
