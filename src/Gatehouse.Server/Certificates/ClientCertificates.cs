using System.Security.Cryptography.X509Certificates;
using System.Security.Cryptography;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Certificates;

/// <summary>
/// Settings → Security: client certificates issued from the customer's CSRs, and the network's mTLS switch.
/// At most two active certificates, so a rotation uploads the new one before deleting the old.
/// </summary>
internal sealed class ClientCertificates(GatehouseDb db, CertificateAuthority authority, AuditLog audit, TimeProvider clock, IOptions<GatehouseOptions> options)
{
    public const int MaxActive = 2;
    public const int MaxNameLength = 30;
    private const int MaxCsrLength = 16 * 1024;
    private static readonly HashSet<string> AllowedCurves = ["1.2.840.10045.3.1.7", "1.3.132.0.34", "nistP256", "nistP384", "ECDSA_P256", "ECDSA_P384", "secp256r1", "secp384r1"];

    public Task<List<ClientCertificate>> ListAsync(string networkId, CancellationToken ct = default) =>
        db.ClientCertificates.AsNoTracking().Where(c => c.NetworkId == networkId).OrderByDescending(c => c.CreatedAt).ToListAsync(ct);

    public Task<int> ActiveCountAsync(string networkId, CancellationToken ct = default)
    {
        var now = clock.GetUtcNow();
        return db.ClientCertificates.CountAsync(c => c.NetworkId == networkId && c.RevokedAt == null && c.NotAfter > now, ct);
    }

    public async Task<(ClientCertificate? Certificate, Refusal? Error)> CreateAsync(Network network, string? name, string? csrPem, string actor,
        CancellationToken ct = default)
    {
        name = name?.Trim();
        var error = !network.SecureMode ? Errors.CertificateNeedsSecureMode
            : string.IsNullOrEmpty(name) ? Errors.CertificateNameRequired
            : name.Length > MaxNameLength ? Errors.CertificateNameTooLong(MaxNameLength)
            : name.Any(char.IsControl) ? Errors.CertificateNameHasControlCharacters
            : string.IsNullOrWhiteSpace(csrPem) ? Errors.CsrRequired
            : csrPem.Length > MaxCsrLength ? Errors.CsrTooLarge
            : null;
        if (error is not null)
            return Refuse(network, actor, error);

        CertificateRequest request;
        try
        {
            // The default load options verify the CSR's signature: whoever sent it holds the private key.
            request = CertificateRequest.LoadSigningRequestPem(csrPem!, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.Default, RSASignaturePadding.Pkcs1);
        }
        catch (CryptographicException)
        {
            return Refuse(network, actor, Errors.CsrInvalid);
        }
        if (WeakKey(request.PublicKey) is { } weak)
            return Refuse(network, actor, weak);

        var now = clock.GetUtcNow();
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await db.LockNetworkAsync(network.Id, ct);
        var active = await db.ClientCertificates.Where(c => c.NetworkId == network.Id && c.RevokedAt == null && c.NotAfter > now).ToListAsync(ct);
        if (active.Count >= MaxActive)
            return Refuse(network, actor, Errors.CertificateLimit(MaxActive));
        if (await db.ClientCertificates.AnyAsync(c => c.NetworkId == network.Id && c.RevokedAt == null && c.Name == name, ct))
            return Refuse(network, actor, Errors.CertificateNameTaken(name!));

        using var issued = authority.Issue(ForClientAuthentication(request, network.Id), now, now + options.Value.Mtls.CertificateValidity);
        var certificate = new ClientCertificate
        {
            Id = Guid.CreateVersion7(now),
            NetworkId = network.Id,
            Name = name!,
            Fingerprint = Fingerprint(issued),
            SerialNumber = issued.SerialNumber,
            Subject = issued.Subject,
            CertificatePem = issued.ExportCertificatePem(),
            NotBefore = now,
            NotAfter = now + options.Value.Mtls.CertificateValidity,
            CreatedAt = now,
            CreatedBy = actor,
        };
        db.ClientCertificates.Add(certificate);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        audit.Record(SecurityEvents.CertificateCreated(actor, network.Id, certificate.Id, certificate.Name, certificate.Fingerprint));
        return (certificate, null);
    }

    /// <summary>Deleting revokes at once. The last certificate cannot go while mTLS is on: no backend could call.</summary>
    public async Task<Refusal?> RevokeAsync(Network network, Guid certificateId, string actor, CancellationToken ct = default)
    {
        var certificate = await db.ClientCertificates.FirstOrDefaultAsync(c => c.Id == certificateId && c.NetworkId == network.Id, ct);
        if (certificate is null)
            return Errors.CertificateNotFound;
        if (certificate.RevokedAt is not null)
            return null;
        if (network.MtlsEnabled && await ActiveCountAsync(network.Id, ct) <= 1)
            return Errors.LastCertificateUnderMtls;
        certificate.RevokedAt = clock.GetUtcNow();
        await db.SaveChangesAsync(ct);
        audit.Record(SecurityEvents.CertificateRevoked(actor, network.Id, certificate.Id, certificate.Name));
        return null;
    }

    /// <summary>mTLS can go on only with secure mode on and a certificate to call with.</summary>
    public async Task<Refusal?> SetMtlsAsync(Network network, bool on, string actor, CancellationToken ct = default)
    {
        if (network.MtlsEnabled == on)
            return null;
        if (on && !network.SecureMode)
            return Errors.MtlsNeedsSecureMode;
        if (on && await ActiveCountAsync(network.Id, ct) == 0)
            return Errors.MtlsNeedsCertificate;
        network.MtlsEnabled = on;
        await db.SaveChangesAsync(ct);
        audit.Record(SecurityEvents.MtlsChanged(actor, network.Id, on));
        return null;
    }

    public static string Fingerprint(X509Certificate2 certificate) => Convert.ToHexStringLower(certificate.GetCertHash(HashAlgorithmName.SHA256));

    private (ClientCertificate?, Refusal?) Refuse(Network network, string actor, Refusal error)
    {
        audit.Record(SecurityEvents.CertificateRefused(actor, network.Id, error.Message));
        return (null, error);
    }

    private static Refusal? WeakKey(PublicKey key)
    {
        using var rsa = key.GetRSAPublicKey();
        if (rsa is not null)
            return rsa.KeySize < 2048 ? Errors.CsrRsaTooShort(rsa.KeySize) : null;
        using var ecdsa = key.GetECDsaPublicKey();
        if (ecdsa is null)
            return Errors.CsrKeyKind;
        var curve = ecdsa.ExportParameters(false).Curve.Oid;
        return AllowedCurves.Contains(curve.Value ?? "") || AllowedCurves.Contains(curve.FriendlyName ?? "")
            ? null
            : Errors.CsrCurve;
    }

    /// <summary>
    /// The CSR gives the subject and the key, nothing else: its requested extensions are dropped and ours set.
    /// The network is written into the certificate, so it can never pass for another network's.
    /// </summary>
    private CertificateRequest ForClientAuthentication(CertificateRequest request, string networkId)
    {
        var isRsa = request.PublicKey.Oid.Value == "1.2.840.113549.1.1.1";
        request.CertificateExtensions.Clear();
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.DigitalSignature | (isRsa ? X509KeyUsageFlags.KeyEncipherment : X509KeyUsageFlags.None), true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(MtlsGate.ClientAuthentication)], true));
        var names = new SubjectAlternativeNameBuilder();
        names.AddUri(new Uri(CertificateAuthority.NetworkUriPrefix + networkId));
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority.Certificate, true, false));
        return request;
    }
}
