namespace Gatehouse.Server.AdminTokens;

/// <summary>An admin's credential for the server-to-server admin API of one network, kept only as a digest.</summary>
internal sealed class AdminToken
{
    public Guid Id { get; init; }
    public Guid AdminId { get; init; }
    public required string NetworkId { get; init; }
    public required string Digest { get; init; }
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>The chosen expiry (at most a year), brought forward to the end of the grace when replaced.</summary>
    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>Set when a newer token took over; the token then works until <see cref="ExpiresAt"/>.</summary>
    public DateTimeOffset? ReplacedAt { get; set; }

    public DateTimeOffset? RevokedAt { get; set; }
    public string? RevokedBy { get; set; }
    public DateTimeOffset? LastUsedAt { get; set; }

    public bool IsActive(DateTimeOffset now) => RevokedAt is null && now < ExpiresAt;
}
