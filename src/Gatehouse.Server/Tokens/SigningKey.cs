namespace Gatehouse.Server.Tokens;

/// <summary>An ES256 key pair and its auth-token MAC key; the secrets only ever stored encrypted with Data Protection.</summary>
internal sealed class SigningKey
{
    public required string Id { get; init; }
    public required string ProtectedPrivateKey { get; init; }

    /// <summary>
    /// The HS256 key of the auth tokens this key's id names: random, encrypted with Data Protection. Null only on rows
    /// of a release before 0.2.0 (which derived it from the private key) until the first start of 0.2.0 gives them one.
    /// </summary>
    public string? ProtectedMacKey { get; set; }
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Set when a newer key takes over signing; the key still verifies the tokens it signed.</summary>
    public DateTimeOffset? RetiredAt { get; set; }

    /// <summary>Set by <c>signing-key retire</c>: the key verifies nothing any more, so every token it signed is refused.</summary>
    public DateTimeOffset? EndedAt { get; set; }
}
