namespace Gatehouse.Server.Tokens;

/// <summary>An ES256 key pair; the private half only ever stored encrypted with Data Protection.</summary>
public sealed class SigningKey
{
    public required string Id { get; init; }
    public required string ProtectedPrivateKey { get; init; }
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Set when a newer key takes over signing; the key still verifies the tokens it signed.</summary>
    public DateTimeOffset? RetiredAt { get; set; }
}
