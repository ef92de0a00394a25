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

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options)
    {
        Span<char> text = stackalloc char[RoundTripLength];
        writer.WriteStringValue(Format(value, text));
    }

    /// <summary>The timestamp as a property of the object being written.</summary>
    public static void Write(Utf8JsonWriter writer, JsonEncodedText name, DateTimeOffset value)
    {
        Span<char> text = stackalloc char[RoundTripLength];
        writer.WriteString(name, Format(value, text));
    }

    // "yyyy-MM-dd'T'HH:mm:ss.fff'Z'" is the format; the round-trip format ("O", which .NET writes without parsing a
    // pattern, several times faster) cut after the milliseconds is the same text: both truncate, neither rounds.
    private const int RoundTripLength = 28;

    private static ReadOnlySpan<char> Format(DateTimeOffset value, Span<char> text)
    {
        value.UtcDateTime.TryFormat(text, out _, "O", CultureInfo.InvariantCulture);
        text[23] = 'Z';
        return text[..24];
    }
}
