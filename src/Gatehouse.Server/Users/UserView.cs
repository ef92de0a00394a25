using System.Text.Json.Serialization;

namespace Gatehouse.Server.Users;

/// <summary>
/// The user object as the SDKs read it. Both <c>isGlobalBan</c> (the seed's example) and
/// <c>isGlobalBanned</c> (what the TypeScript SDK reads) are sent, and <c>userType</c> (<c>signed-in</c>,
/// <c>visitor</c> or <c>bot</c>), which the SDKs ignore on a user and admins filter on.
/// </summary>
internal sealed record UserView(
    [property: JsonPropertyName("_id")] string Id,
    string Path,
    string UserId,
    string? DisplayName,
    IReadOnlyDictionary<string, string> Metadata,
    IReadOnlyList<string> Roles,
    IReadOnlyList<string> Permissions,
    int FlagCount,
    string? HashFlag,
    string? AvatarFileId,
    bool IsDeleted,
    bool IsGlobalBan,
    bool IsGlobalBanned,
    string UserType,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    private static readonly IReadOnlyDictionary<string, string> NoMetadata = new Dictionary<string, string>();

    public static UserView Of(User user) => new(
        user.Id, $"{user.NetworkId}/user/{user.Id}", user.UserId, user.DisplayName, NoMetadata, [], [], 0, null, null,
        user.IsDeleted, user.IsGlobalBan, user.IsGlobalBan, user.Kind.WireName(), user.CreatedAt, user.UpdatedAt);
}
