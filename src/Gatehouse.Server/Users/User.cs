namespace Gatehouse.Server.Users;

/// <summary>A user of one network, created on its first session.</summary>
internal sealed class User
{
    /// <summary>The hosted product's <c>_id</c>: ours, unlike <see cref="UserId"/> which the customer chooses.</summary>
    public required string Id { get; init; }
    public required string NetworkId { get; init; }
    public required string UserId { get; init; }
    public string? DisplayName { get; set; }
    public bool IsGlobalBan { get; set; }
    public bool IsDeleted { get; set; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; set; }
}
