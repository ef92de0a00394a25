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

/// <summary>A visitor's or bot's login: its device, and in secure mode (visitors) the backend's signature for it.</summary>
internal sealed record VisitorSessionRequest(string? DeviceId, DeviceInfo? DeviceInfo, string? AuthSignature, string? AuthSignatureExpiresAt);

/// <summary>A session the customer's backend opens for one of its users (server key).</summary>
internal sealed record BackendSessionRequest(string? UserId, string? DisplayName, string? DeviceId);

internal sealed record RefreshRequest(string? RefreshToken);

internal sealed record SessionResponse(
    string AccessToken,
    string RefreshToken,
    DateTimeOffset IssuedAt,
    DateTimeOffset ExpiresAt,
    string UserType,
    IReadOnlyList<UserView> Users,
    IReadOnlyList<string> Files)
{
    public static SessionResponse Of(IssuedSession issued) => new(
        issued.AccessToken, issued.RefreshToken!, issued.IssuedAt, issued.Session.ExpiresAt, issued.User.Kind.WireName(), [UserView.Of(issued.User)], []);
}

/// <summary>What a backend hands its app: the access token alone (no refresh token: the backend opens the next session).</summary>
internal sealed record BackendSessionResponse(
    string AccessToken,
    DateTimeOffset IssuedAt,
    DateTimeOffset ExpiresAt,
    string UserType,
    IReadOnlyList<UserView> Users,
    IReadOnlyList<string> Files)
{
    public static BackendSessionResponse Of(IssuedSession issued) => new(
        issued.AccessToken, issued.IssuedAt, issued.Session.ExpiresAt, issued.User.Kind.WireName(), [UserView.Of(issued.User)], []);
}

/// <summary>What <c>GET /api/v3/sessions</c> says about the session a bearer token stands for.</summary>
internal sealed record CurrentSessionResponse(string SessionId, string UserId, string NetworkId, string UserType);

/// <summary>Source-generated JSON for the session bodies (no reflection on the hot path).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, AllowDuplicateProperties = false, MaxDepth = 16, Converters = [typeof(UtcTimestampConverter)])]
[JsonSerializable(typeof(SessionRequest))]
[JsonSerializable(typeof(RefreshRequest))]
[JsonSerializable(typeof(SessionResponse))]
[JsonSerializable(typeof(VisitorSessionRequest))]
[JsonSerializable(typeof(BackendSessionRequest))]
[JsonSerializable(typeof(BackendSessionResponse))]
[JsonSerializable(typeof(CurrentSessionResponse))]
internal sealed partial class SessionJson : JsonSerializerContext;
