namespace Gatehouse.Server.ServerKeys;

/// <summary>A network's backend secret, kept only as a digest.</summary>
internal sealed class ServerKey
{
    public Guid Id { get; init; }
    public required string NetworkId { get; init; }
    public required string Digest { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public required string CreatedBy { get; init; }

    /// <summary>Null while the key is the network's newest; set to the end of the grace when replaced.</summary>
    public DateTimeOffset? ExpiresAt { get; set; }

    public DateTimeOffset? LastUsedAt { get; set; }
}
