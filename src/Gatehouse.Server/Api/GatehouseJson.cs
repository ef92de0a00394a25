using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Gatehouse.Server.AdminTokens;
using Gatehouse.Server.AuthTokens;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;

namespace Gatehouse.Server.Api;

/// <summary>Source-generated JSON for every body the API reads or writes (no reflection on the hot path).</summary>
[JsonSourceGenerationOptions(
    JsonSerializerDefaults.Web,
    AllowDuplicateProperties = false,
    MaxDepth = 16,
    Converters = [typeof(UtcTimestampConverter)])]
[JsonSerializable(typeof(ErrorEnvelope))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(AuthTokenRequest))]
[JsonSerializable(typeof(AuthTokenResponse))]
[JsonSerializable(typeof(SessionRequest))]
[JsonSerializable(typeof(RefreshRequest))]
[JsonSerializable(typeof(SessionResponse))]
[JsonSerializable(typeof(UsersResponse))]
[JsonSerializable(typeof(ChatSettingsResponse))]
[JsonSerializable(typeof(SuccessResponse))]
[JsonSerializable(typeof(UserIdRequest))]
[JsonSerializable(typeof(AdminUsersResponse))]
[JsonSerializable(typeof(AuditEventsResponse))]
[JsonSerializable(typeof(JsonWebKeySetResponse))]
[JsonSerializable(typeof(Observability.ReadyResponse))]
public sealed partial class GatehouseJson : JsonSerializerContext;

/// <summary>Timestamps as the contract shows them: UTC, milliseconds, a trailing Z.</summary>
public sealed class UtcTimestampConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        DateTimeOffset.Parse(reader.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
}
