namespace Gatehouse.Server.Sessions;

/// <summary>One login of one user on one device; every access token names its session.</summary>
internal sealed class Session
{
    public Guid Id { get; init; }
    public required string NetworkId { get; init; }
    public required string UserRef { get; init; }
    public required string DeviceId { get; init; }
    public string? DeviceKind { get; init; }
    public string? DeviceModel { get; init; }
    public string? SdkVersion { get; init; }
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>
    /// Opened in secure mode, so with an auth token a backend minted, or by the backend itself with its server key.
    /// Sessions opened without one end when secure
    /// mode is turned on (unless the admin keeps them); rows from before 0.2.0 read false.
    /// </summary>
    public bool OpenedWithAuthToken { get; init; }

    /// <summary>When the newest access token of this session expires; refresh moves it.</summary>
    public DateTimeOffset ExpiresAt { get; set; }

    public DateTimeOffset? RevokedAt { get; set; }
    public string? RevokedReason { get; set; }

    /// <summary>The client's address at login (after any trusted proxy), for the console's Users page.</summary>
    public string? OpenedFrom { get; init; }

    public DateTimeOffset? LastRefreshedAt { get; set; }
    public string? LastRefreshedFrom { get; set; }

    /// <summary>The moment no refresh can carry the session past (<c>Gatehouse:Sessions:AbsoluteLifetime</c> after login).</summary>
    public DateTimeOffset EndsBy(TimeSpan absoluteLifetime) => CreatedAt + absoluteLifetime;
}

/// <summary>
/// Every refresh token a session was given, kept after use: presenting a used one is how a stolen copy
/// is detected (the thief and the owner cannot both hold the newest token).
/// </summary>
internal sealed class RefreshToken
{
    public required string Digest { get; init; }
    public Guid SessionId { get; init; }
    public DateTimeOffset IssuedAt { get; init; }
    public DateTimeOffset ExpiresAt { get; init; }
    public DateTimeOffset? UsedAt { get; set; }
}

/// <summary>
/// One row per device of a network, naming its current user. Two logins on one device take turns on it: on
/// PostgreSQL a login group reads it with a row lock (<see cref="PostgresGroupReads"/>; the default isolation would
/// otherwise let both see no rival and both stay signed in), on SQLite the group's transaction holds the only write lock.
/// </summary>
internal sealed class DeviceBinding
{
    public required string NetworkId { get; init; }
    public required string DeviceId { get; init; }
    public required string UserRef { get; set; }
    public DateTimeOffset BoundAt { get; set; }
}
