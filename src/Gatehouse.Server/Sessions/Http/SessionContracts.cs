using System.Text.Json;
using System.Text.Json.Serialization;
using Gatehouse.Server.Api;
using Gatehouse.Server.Users;

namespace Gatehouse.Server.Sessions.Http;

internal sealed record DeviceInfo(string? Kind, string? Model, string? SdkVersion);

internal sealed record SessionRequest(string? UserId, string? DeviceId, string? DisplayName, string? AuthToken, DeviceInfo? DeviceInfo)
{
    /// <summary>The login the rules apply, once every field has been checked.</summary>
    public Login ToLogin() => new(UserId!, DeviceId!, DisplayName, DeviceInfo?.Kind, DeviceInfo?.Model, DeviceInfo?.SdkVersion);
}

internal sealed record RefreshRequest(string? RefreshToken);

internal sealed record SessionResponse(
    string AccessToken,
    string RefreshToken,
    DateTimeOffset IssuedAt,
    DateTimeOffset ExpiresAt,
    IReadOnlyList<UserView> Users,
    IReadOnlyList<string> Files)
{
    public static SessionResponse Of(IssuedSession issued) => new(
        issued.AccessToken, issued.RefreshToken, issued.IssuedAt, issued.Session.ExpiresAt, [UserView.Of(issued.User)], []);
}

/// <summary>Source-generated JSON for the session bodies (no reflection on the hot path).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, AllowDuplicateProperties = false, MaxDepth = 16, Converters = [typeof(UtcTimestampConverter)])]
[JsonSerializable(typeof(SessionRequest))]
[JsonSerializable(typeof(RefreshRequest))]
[JsonSerializable(typeof(SessionResponse))]
internal sealed partial class SessionJson : JsonSerializerContext;
