namespace Gatehouse.Server.Certificates;

/// <summary>A client certificate the deployment's authority issued to one network from the customer's CSR.</summary>
internal sealed class ClientCertificate
{
    public Guid Id { get; init; }
    public required string NetworkId { get; init; }
    public required string Name { get; init; }

    /// <summary>SHA-256 of the DER certificate, hex: how a presented certificate is found.</summary>
    public required string Fingerprint { get; init; }

    public required string SerialNumber { get; init; }
    public required string Subject { get; init; }
    public required string CertificatePem { get; init; }
    public DateTimeOffset NotBefore { get; init; }
    public DateTimeOffset NotAfter { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public required string CreatedBy { get; init; }

    /// <summary>Deleting a certificate revokes it: the row stays so the refusal can say why.</summary>
    public DateTimeOffset? RevokedAt { get; set; }
}

/// <summary>The deployment's certificate authority; its private key only ever stored encrypted.</summary>
internal sealed class CertificateAuthorityKey
{
    public int Id { get; init; }
    public required string CertificatePem { get; init; }
    public required string ProtectedPrivateKey { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}
