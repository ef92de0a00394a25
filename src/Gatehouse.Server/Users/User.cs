namespace Gatehouse.Server.Users;

/// <summary>
/// Who a user is to the 7.x SDKs (their <c>userType</c>): a person the app signed in, or an anonymous visitor or a
/// crawler that only reads. Stored as a number; rows from before visitors existed read 0, signed in.
/// </summary>
internal enum UserKind
{
    SignedIn = 0,
    Visitor = 1,
    Bot = 2,
}

internal static class UserKinds
{
    /// <summary>The SDK's spelling of each kind (<c>Amity.UserType</c>).</summary>
    public static string WireName(this UserKind kind) => kind switch
    {
        UserKind.Visitor => "visitor",
        UserKind.Bot => "bot",
        _ => "signed-in",
    };

    public static UserKind? FromWireName(string? name) => name switch
    {
        "signed-in" => UserKind.SignedIn,
        "visitor" => UserKind.Visitor,
        "bot" => UserKind.Bot,
        _ => null,
    };
}

/// <summary>A user of one network, created on its first session.</summary>
internal sealed class User
{
    /// <summary>The hosted product's <c>_id</c>: ours, unlike <see cref="UserId"/> which the customer chooses.</summary>
    public required string Id { get; init; }
    public required string NetworkId { get; init; }
    public required string UserId { get; init; }
    public string? DisplayName { get; set; }

    /// <summary>Visitors and bots are made by their device's first visitor or bot login, never by an ordinary one.</summary>
    public UserKind Kind { get; init; }
    public bool IsGlobalBan { get; set; }
    public bool IsDeleted { get; set; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; set; }
}
