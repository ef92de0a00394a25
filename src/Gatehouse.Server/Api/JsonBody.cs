using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Gatehouse.Server.Refusals;

namespace Gatehouse.Server.Api;

/// <summary>A parsed request body, or the refusal that explains why there is none.</summary>
internal readonly record struct Parsed<T>(T? Value, Refusal? Error) where T : class;

/// <summary>
/// Reads request bodies ourselves rather than through minimal-API binding, so that a wrong content type,
/// an oversized body or broken JSON answers with the contract's envelope instead of the framework's.
/// </summary>
internal static class JsonBody
{
    public static async Task<Parsed<T>> ReadAsync<T>(HttpRequest request, JsonTypeInfo<T> typeInfo, int maxBytes, CancellationToken ct)
        where T : class
    {
        if (!request.HasJsonContentType())
            return new(null, Errors.NotJson);
        if (request.ContentLength > maxBytes)
            return new(null, Errors.BodyTooLarge);

        var buffer = ArrayPool<byte>.Shared.Rent(maxBytes + 1);
        try
        {
            var length = 0;
            int read;
            while ((read = await request.Body.ReadAsync(buffer.AsMemory(length, maxBytes + 1 - length), ct)) > 0)
            {
                length += read;
                if (length > maxBytes)
                    return new(null, Errors.BodyTooLarge);
            }

            var value = JsonSerializer.Deserialize(buffer.AsSpan(0, length), typeInfo);
            return value is null ? new(null, Errors.BodyNotObject) : new(value, null);
        }
        catch (JsonException e)
        {
            return new(null, Errors.MalformedJson(e.Path));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

/// <summary>The same rules for every identifier a client sends: present, bounded, printable.</summary>
internal static class Field
{
    private const int ZeroWidthJoiner = 0x200D;

    /// <summary>
    /// Required (unless not), at most <paramref name="maxLength"/> UTF-16 units, and no character that could hide or
    /// disguise what an admin reads in a console or a log: control (Cc), format (Cf: zero-width characters,
    /// right-to-left overrides) and unassigned (Cn) characters, and halves of a surrogate pair, are refused. A
    /// display name may keep the zero-width joiner, which joins emoji (a family, a flag) into one picture.
    /// </summary>
    public static Refusal? Check(string? value, string name, int maxLength, bool required = true, bool allowEmojiJoiner = false)
    {
        if (string.IsNullOrWhiteSpace(value))
            return required ? Errors.FieldRequired(name) : null;
        if (value.Length > maxLength)
            return Errors.FieldTooLong(name, maxLength);
        var rest = value.AsSpan();
        while (!rest.IsEmpty)
        {
            if (Rune.DecodeFromUtf16(rest, out var rune, out var consumed) != OperationStatus.Done)
                return Errors.FieldHasHiddenCharacters(name);
            var category = Rune.GetUnicodeCategory(rune);
            if (category is UnicodeCategory.Control or UnicodeCategory.OtherNotAssigned
                || (category is UnicodeCategory.Format && !(allowEmojiJoiner && rune.Value == ZeroWidthJoiner)))
            {
                return Errors.FieldHasHiddenCharacters(name);
            }

            rest = rest[consumed..];
        }
        return null;
    }
}
