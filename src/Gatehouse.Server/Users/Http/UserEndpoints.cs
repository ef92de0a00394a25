using System.Text.Json;
using System.Text.Json.Serialization;
using Gatehouse.Server.Api;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Observability;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Users.Http;

internal sealed record UsersResponse(IReadOnlyList<UserView> Users, IReadOnlyList<string> Files);

internal sealed record MentionSettings(bool IsAllowMentionedChannelEnabled);

internal sealed record MessagePreviewSettings(bool Enabled, bool IsIncludeDeleted);

internal sealed record MarkerSettings(bool Enabled);

internal sealed record ChatSettingsResponse(bool Enabled, MentionSettings Mention, MessagePreviewSettings MessagePreview, MarkerSettings Marker)
{
    public static ChatSettingsResponse Of(ChatSettings chat) => new(
        chat.Enabled,
        new MentionSettings(chat.AllowMentionedChannel),
        new MessagePreviewSettings(chat.MessagePreviewEnabled, chat.MessagePreviewIncludeDeleted),
        new MarkerSettings(chat.MarkerEnabled));
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, AllowDuplicateProperties = false, MaxDepth = 16, Converters = [typeof(UtcTimestampConverter)])]
[JsonSerializable(typeof(UsersResponse))]
[JsonSerializable(typeof(ChatSettingsResponse))]
internal sealed partial class UserJson : JsonSerializerContext;

/// <summary>What a signed-in SDK reads right after login.</summary>
internal static class UserEndpoints
{
    public static void MapUserEndpoints(this IEndpointRouteBuilder bearerApi)
    {
        var client = bearerApi.MapGroup("").WithTags(ApiTags.Client);
        client.MapGet("/api/v3/users/me", (HttpContext http) => new UsersAnswer(UserView.Of(http.CallerOf<Caller>().User)))
            .WithName("getMe")
            .WithSummary("The signed-in user")
            .Produces<UsersResponse>(200);
        client.MapGet("/api/v3/users/{userId}", UserAsync)
            .WithName("getUser")
            .WithSummary("One user of the caller's network (the 7.x SDKs read the signed-in user with it)")
            .Produces<UsersResponse>(200)
            .Refuses(Errors.UserNotFound);
        client.MapGet("/api/v3/network-settings/chat", ChatSettingsAsync)
            .WithName("getChatSettings")
            .WithSummary("The network's chat settings (the SDK reads them at login)")
            .Produces<ChatSettingsResponse>(200)
            .Refuses(Errors.ItemNotFound("The network"));
    }

    private static readonly CompiledQuery<string, string, User?> UserNamed =
        new((db, networkId, userId, ct) => db.Users.AsNoTracking().FirstOrDefault(u => u.NetworkId == networkId && u.UserId == userId && !u.IsDeleted));

    /// <summary>
    /// A user of the caller's own network only. The userId is read from the request's raw target and decoded once:
    /// the decoded path leaves an encoded slash encoded, so there "%2F" and "%252F" would read alike and a userId with
    /// a slash or a percent sign would name the wrong user.
    /// </summary>
    private static async Task<Results<UsersAnswer, ApiError>> UserAsync(HttpContext http, string userId, RequestDb db)
    {
        var caller = http.CallerOf<Caller>();
        userId = RawLastSegment(http) ?? userId;
        var user = userId == caller.User.UserId ? caller.User : await UserNamed.RunAsync(db.Context, caller.NetworkId, userId, http.RequestAborted);
        return user is null ? Errors.UserNotFound.AsResult() : new UsersAnswer(UserView.Of(user));
    }

    private static string? RawLastSegment(HttpContext http)
    {
        var target = http.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(target))
            return null;
        var path = target.Split('?', 2)[0].TrimEnd('/');
        return Uri.UnescapeDataString(path[(path.LastIndexOf('/') + 1)..]);
    }

    private static async Task<Results<JsonHttpResult<ChatSettingsResponse>, ApiError>> ChatSettingsAsync(HttpContext http, GatehouseDb db)
    {
        var networkId = http.CallerOf<Caller>().NetworkId;
        var chat = await db.Networks.AsNoTracking().Where(n => n.Id == networkId).Select(n => n.Chat).FirstOrDefaultAsync(http.RequestAborted);
        return chat is null ? Errors.ItemNotFound("The network").AsResult() : TypedResults.Json(ChatSettingsResponse.Of(chat), UserJson.Default.ChatSettingsResponse);
    }
}
