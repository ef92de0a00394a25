using System.Text.Json;
using Gatehouse.Server.Api;
using Microsoft.AspNetCore.Http.Metadata;

namespace Gatehouse.Server.Users.Http;

/// <summary>
/// <see cref="UsersResponse"/> with one user, the most frequent answer of all (every <c>/users/me</c>, every admin
/// read of a user), written straight into the response. The source-generated serializer cannot take its fast path
/// while the contract's timestamp converter is registered, and its general path was an eighth of a bearer check's
/// CPU (docs/benchmarks.md, change 32). The bytes are the serializer's own: a test compares them for every field.
/// </summary>
internal sealed class UsersAnswer(UserView user) : IResult, IStatusCodeHttpResult, IContentTypeHttpResult, IEndpointMetadataProvider
{
    private static readonly JsonEncodedText Users = JsonEncodedText.Encode("users");
    private static readonly JsonEncodedText Files = JsonEncodedText.Encode("files");
    private static readonly JsonEncodedText Id = JsonEncodedText.Encode("_id");
    private static readonly JsonEncodedText Path = JsonEncodedText.Encode("path");
    private static readonly JsonEncodedText UserId = JsonEncodedText.Encode("userId");
    private static readonly JsonEncodedText DisplayName = JsonEncodedText.Encode("displayName");
    private static readonly JsonEncodedText Metadata = JsonEncodedText.Encode("metadata");
    private static readonly JsonEncodedText Roles = JsonEncodedText.Encode("roles");
    private static readonly JsonEncodedText Permissions = JsonEncodedText.Encode("permissions");
    private static readonly JsonEncodedText FlagCount = JsonEncodedText.Encode("flagCount");
    private static readonly JsonEncodedText HashFlag = JsonEncodedText.Encode("hashFlag");
    private static readonly JsonEncodedText AvatarFileId = JsonEncodedText.Encode("avatarFileId");
    private static readonly JsonEncodedText IsDeleted = JsonEncodedText.Encode("isDeleted");
    private static readonly JsonEncodedText IsGlobalBan = JsonEncodedText.Encode("isGlobalBan");
    private static readonly JsonEncodedText IsGlobalBanned = JsonEncodedText.Encode("isGlobalBanned");
    private static readonly JsonEncodedText UserType = JsonEncodedText.Encode("userType");
    private static readonly JsonEncodedText CreatedAt = JsonEncodedText.Encode("createdAt");
    private static readonly JsonEncodedText UpdatedAt = JsonEncodedText.Encode("updatedAt");

    public int? StatusCode => StatusCodes.Status200OK;

    public string ContentType => "application/json; charset=utf-8";

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = ContentType;
        using (var json = new Utf8JsonWriter(response.BodyWriter))
            Write(json, user);
        await response.BodyWriter.FlushAsync();
    }

    public static void Write(Utf8JsonWriter json, UserView user)
    {
        json.WriteStartObject();
        json.WriteStartArray(Users);
        json.WriteStartObject();
        json.WriteString(Id, user.Id);
        json.WriteString(Path, user.Path);
        json.WriteString(UserId, user.UserId);
        json.WriteString(DisplayName, user.DisplayName);
        json.WriteStartObject(Metadata);
        foreach (var (name, value) in user.Metadata)
            json.WriteString(name, value);
        json.WriteEndObject();
        WriteStrings(json, Roles, user.Roles);
        WriteStrings(json, Permissions, user.Permissions);
        json.WriteNumber(FlagCount, user.FlagCount);
        json.WriteString(HashFlag, user.HashFlag);
        json.WriteString(AvatarFileId, user.AvatarFileId);
        json.WriteBoolean(IsDeleted, user.IsDeleted);
        json.WriteBoolean(IsGlobalBan, user.IsGlobalBan);
        json.WriteBoolean(IsGlobalBanned, user.IsGlobalBanned);
        json.WriteString(UserType, user.UserType);
        UtcTimestampConverter.Write(json, CreatedAt, user.CreatedAt);
        UtcTimestampConverter.Write(json, UpdatedAt, user.UpdatedAt);
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteStartArray(Files);
        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteStrings(Utf8JsonWriter json, JsonEncodedText name, IReadOnlyList<string> values)
    {
        json.WriteStartArray(name);
        foreach (var value in values)
            json.WriteStringValue(value);
        json.WriteEndArray();
    }

    public static void PopulateMetadata(System.Reflection.MethodInfo method, EndpointBuilder builder) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(UsersResponse), ["application/json"]));
}
