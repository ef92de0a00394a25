namespace Gatehouse.Server.Visitors;

/// <summary>
/// The secret a network's backend signs visitors' devices with (HMAC-SHA256). Unlike a server key it must be read
/// back to check a signature, so it is kept encrypted with Data Protection, whose key ring the key-encryption key
/// seals; it opens nothing but read-only visitor sessions.
/// </summary>
internal sealed class VisitorSecret
{
    public Guid Id { get; init; }
    public required string NetworkId { get; init; }
    public required string ProtectedSecret { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public required string CreatedBy { get; init; }

    /// <summary>Null while the secret is the network's newest; set to the end of the grace when replaced.</summary>
    public DateTimeOffset? ExpiresAt { get; set; }
}
