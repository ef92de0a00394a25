using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Gatehouse.Server.Api;

/// <summary>
/// Source-generated JSON for the error envelope. Each feature keeps its own wire contracts and context beside its
/// endpoints (<c>SessionJson</c>, <c>AuthTokenJson</c>, ...), so this folder names none of them.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, AllowDuplicateProperties = false, MaxDepth = 16)]
[JsonSerializable(typeof(ErrorEnvelope))]
internal sealed partial class ApiJson : JsonSerializerContext;

/// <summary>Timestamps as the contract shows them: UTC, milliseconds, a trailing Z.</summary>
internal sealed class UtcTimestampConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        DateTimeOffset.Parse(reader.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
}
