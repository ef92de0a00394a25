using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Gatehouse.Server.Api;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Observability;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Users;
using Gatehouse.Server.Users.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.AdminTokens.Http;

internal sealed record UserIdRequest(string? UserId);

internal sealed record SuccessResponse(bool Success);

internal sealed record Paging(int Page, int Limit, int Total);

internal sealed record AdminUsersResponse(IReadOnlyList<UserView> Users, IReadOnlyList<string> Files, Paging Paging);

internal sealed record AuditEventView(
    long Id, DateTimeOffset OccurredAt, string Kind, string Outcome, string Actor, string? UserId, string? Reason, string? Detail, string? ClientAddress)
{
    public static AuditEventView Of(AuditEvent e) => new(e.Id, e.OccurredAt, e.Kind, e.Outcome, e.Actor, e.UserId, e.Reason, e.Detail, e.ClientAddress);
}

internal sealed record AuditEventsResponse(IReadOnlyList<AuditEventView> Events, Paging Paging);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, AllowDuplicateProperties = false, MaxDepth = 16, Converters = [typeof(UtcTimestampConverter)])]
[JsonSerializable(typeof(UserIdRequest))]
[JsonSerializable(typeof(SuccessResponse))]
[JsonSerializable(typeof(AdminUsersResponse))]
[JsonSerializable(typeof(AuditEventsResponse))]
internal sealed partial class AdminApiJson : JsonSerializerContext;

/// <summary>
/// The server-to-server admin API, authenticated by <c>x-admin-token</c> and scoped to that token's network:
/// nothing here can see or touch another network. No CORS: an admin token never belongs in a browser.
/// </summary>
internal static class AdminApiEndpoints
{
    private const int MaxLimit = 100;

    public static void MapAdminApiEndpoints(this IEndpointRouteBuilder app)
    {
        var metrics = app.ServiceProvider.GetRequiredService<SecurityMetrics>();
        var admin = app.MapGroup("/api/v4/admin").WithTags(ApiTags.Admin)
            .RequireAuthorization(Credentials.Policies.Admin)
            // Runs only once the token and its mTLS have passed: a refused call is not a use.
            .AddEndpointFilter((context, next) =>
            {
                metrics.AdminTokenUsed();
                return next(context);
            });
        admin.MapGet("/users", ListUsersAsync).WithName("adminListUsers")
            .WithSummary("List users (search, userType, page, limit); visitors and bots only when asked for").Produces<AdminUsersResponse>(200)
            .Refuses(PagingError, UserTypeError, Errors.FieldHasHiddenCharacters("search"));
        admin.MapGet("/users/{userId}", GetUserAsync).WithName("adminGetUser").WithSummary("Get one user").Produces<UsersResponse>(200)
            .Refuses(Errors.UserNotFound);
        admin.MapPost("/users/{userId}/ban", (HttpContext http, string userId, UserAdministration users) => SetBanAsync(http, userId, true, users))
            .WithName("adminBanUser").WithSummary("Ban a user globally (ends its sessions)").Produces<SuccessResponse>(200)
            .Refuses(Errors.UserNotFound);
        admin.MapPost("/users/{userId}/unban", (HttpContext http, string userId, UserAdministration users) => SetBanAsync(http, userId, false, users))
            .WithName("adminUnbanUser").WithSummary("Lift a global ban").Produces<SuccessResponse>(200)
            .Refuses(Errors.UserNotFound);
        admin.MapGet("/audit", ListAuditAsync).WithName("adminListAudit")
            .WithSummary("Read the network's audit log (kind, userId, from, to, page, limit)").Produces<AuditEventsResponse>(200)
            .Refuses(PagingError, AuditKindError, AuditTimeError);
        admin.MapDelete("/token", RevokeOwnTokenAsync).WithName("adminRevokeOwnToken").WithSummary("Revoke the admin token this call is made with")
            .Produces<SuccessResponse>(200);
    }

    /// <summary><c>DELETE /api/v4/sessions</c> with <c>x-admin-token</c> and <c>{"userId"}</c>: ends every session of that user.</summary>
    public static async Task<Results<JsonHttpResult<SuccessResponse>, ApiError>> RevokeUserSessionsAsync(
        HttpContext http, AdminCaller caller, UserAdministration users, IOptions<GatehouseOptions> options)
    {
        var limits = options.Value.Limits;
        var body = await JsonBody.ReadAsync(http.Request, AdminApiJson.Default.UserIdRequest, limits.MaxBodyBytes, http.RequestAborted);
        var error = body.Error ?? Field.Check(body.Value!.UserId, "userId", limits.UserIdMaxLength);
        if (error is not null)
            return error.AsResult();
        var user = await users.FindAsync(caller.NetworkId, body.Value!.UserId!, http.RequestAborted);
        if (user is null)
            return Errors.UserNotFound.AsResult();
        await users.RevokeSessionsAsync(user, "admin_revoked", caller.Actor, http.Origin(), http.RequestAborted);
        return Success();
    }

    private static async Task<Results<JsonHttpResult<AdminUsersResponse>, ApiError>> ListUsersAsync(
        HttpContext http, UserAdministration users, IOptions<GatehouseOptions> options, string? search, string? userType, string? page, string? limit)
    {
        if (ParsePaging(page, limit) is not { } paging)
            return PagingError.AsResult();
        if (search is { Length: > 0 } && Field.Check(search, "search", options.Value.Limits.UserIdMaxLength) is { } error)
            return error.AsResult();
        // Visitors and bots are left out of a search unless asked for, as the hosted product hides them from user search.
        var all = userType == "all";
        var kind = all ? null : string.IsNullOrEmpty(userType) ? UserKind.SignedIn : UserKinds.FromWireName(userType);
        if (kind is null && !all)
            return UserTypeError.AsResult();
        var found = await users.ListAsync(http.CallerOf<AdminCaller>().NetworkId, search, kind, paging.Page, paging.Limit, http.RequestAborted);
        return TypedResults.Json(new AdminUsersResponse(found.Users.Select(UserView.Of).ToList(), [], paging with { Total = found.Total }),
            AdminApiJson.Default.AdminUsersResponse);
    }

    private static async Task<Results<UsersAnswer, ApiError>> GetUserAsync(HttpContext http, string userId, UserAdministration users)
    {
        var user = await users.ViewAsync(http.CallerOf<AdminCaller>().NetworkId, userId, http.RequestAborted);
        return user is null ? Errors.UserNotFound.AsResult() : new UsersAnswer(UserView.Of(user));
    }

    private static async Task<Results<JsonHttpResult<SuccessResponse>, ApiError>> SetBanAsync(HttpContext http, string userId, bool banned, UserAdministration users)
    {
        var caller = http.CallerOf<AdminCaller>();
        var user = await users.FindAsync(caller.NetworkId, userId, http.RequestAborted);
        if (user is null)
            return Errors.UserNotFound.AsResult();
        await users.SetBanAsync(user, banned, caller.Actor, http.Origin(), http.RequestAborted);
        return Success();
    }

    private static async Task<Results<JsonHttpResult<AuditEventsResponse>, ApiError>> ListAuditAsync(
        HttpContext http, GatehouseDb db, string? kind, string? userId, string? from, string? to, string? page, string? limit)
    {
        if (ParsePaging(page, limit) is not { } paging)
            return PagingError.AsResult();
        if (kind is { Length: > 0 } && !AuditKinds.All.Contains(kind))
            return AuditKindError.AsResult();
        var (since, sinceOk) = ParseTime(from);
        var (until, untilOk) = ParseTime(to);
        if (!sinceOk || !untilOk)
            return AuditTimeError.AsResult();

        var query = db.AuditEvents.AsNoTracking().Where(e => e.NetworkId == http.CallerOf<AdminCaller>().NetworkId);
        if (kind is { Length: > 0 })
            query = query.Where(e => e.Kind == kind);
        if (userId is { Length: > 0 })
            query = query.Where(e => e.UserId == userId);
        if (since is { } s)
            query = query.Where(e => e.OccurredAt >= s);
        if (until is { } u)
            query = query.Where(e => e.OccurredAt < u);
        var total = await query.CountAsync(http.RequestAborted);
        var events = await query.OrderByDescending(e => e.OccurredAt).ThenByDescending(e => e.Id)
            .Skip((paging.Page - 1) * paging.Limit).Take(paging.Limit).ToListAsync(http.RequestAborted);
        return TypedResults.Json(new AuditEventsResponse(events.Select(AuditEventView.Of).ToList(), paging with { Total = total }),
            AdminApiJson.Default.AuditEventsResponse);
    }

    /// <summary>An admin revokes the token it calls with (say, after moving its backend to a new one).</summary>
    private static async Task<JsonHttpResult<SuccessResponse>> RevokeOwnTokenAsync(HttpContext http, GatehouseDb db, AuditLog audit, TimeProvider clock)
    {
        var caller = http.CallerOf<AdminCaller>();
        var now = clock.GetUtcNow();
        await db.AdminTokens.Where(t => t.Id == caller.TokenId && t.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.RevokedAt, now).SetProperty(t => t.RevokedBy, caller.Actor), http.RequestAborted);
        audit.Record(SecurityEvents.AdminTokenRevoked(caller.Actor, caller.NetworkId, caller.TokenId), http.Origin());
        return Success();
    }

    private static readonly Refusal PagingError = Errors.BadRequest("bad_paging", $"page must be 1 or more and limit between 1 and {MaxLimit}.");
    private static readonly Refusal UserTypeError = Errors.BadRequest("bad_filter", "userType must be one of: signed-in, visitor, bot, all.");
    private static readonly Refusal AuditKindError = Errors.BadRequest("bad_filter", $"kind must be one of: {string.Join(", ", AuditKinds.All)}.");
    private static readonly Refusal AuditTimeError = Errors.BadRequest("bad_filter", "from and to must be ISO-8601 times, for example 2026-11-24T00:00:00Z.");

    private static Paging? ParsePaging(string? page, string? limit)
    {
        var p = 1;
        var l = 20;
        if ((page is { Length: > 0 } && !int.TryParse(page, NumberStyles.None, CultureInfo.InvariantCulture, out p))
            || (limit is { Length: > 0 } && !int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out l)))
        {
            return null;
        }

        return p is >= 1 and <= 1_000_000 && l is >= 1 and <= MaxLimit ? new Paging(p, l, 0) : null;
    }

    private static (DateTimeOffset? Value, bool Ok) ParseTime(string? value) =>
        string.IsNullOrEmpty(value) ? (null, true)
        : DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed) ? (parsed, true)
        : (null, false);

    private static JsonHttpResult<SuccessResponse> Success() => TypedResults.Json(new SuccessResponse(true), AdminApiJson.Default.SuccessResponse);
}
