using Gatehouse.Server.AdminTokens;
using Gatehouse.Server.AdminTokens.Http;
using Gatehouse.Server.Api;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Certificates.Http;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Observability;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Users;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Sessions.Http;

/// <summary>
/// Client to server: the SDKs open sessions with the public API key (plus an auth token in secure mode),
/// refresh them, and log out. Every step is parse, validate, generate, write; every outcome is audited.
/// </summary>
internal static class SessionEndpoints
{
    private const int DeviceInfoMaxLength = 256;
    private const int RefreshTokenMaxLength = 128;

    public static void MapSessionEndpoints(this IEndpointRouteBuilder publicApi)
    {
        var sessions = publicApi.MapGroup("").WithTags(ApiTags.Client);
        // The newest version's operation is the plain name; the older paths answer the same.
        foreach (var (version, name) in new[] { ("v3", "openSessionV3"), ("v4", "openSessionV4"), ("v5", "openSession") })
        {
            sessions.MapPost($"/api/{version}/sessions", CreateAsync)
                .WithName(name)
                .WithSummary($"Open a session ({version})")
                .WithDescription("Header x-api-key. In secure mode authToken is required. Creates the user on first login.")
                .AcceptsJson<SessionRequest>()
                .Produces<SessionResponse>(200)
                .Refuses(Errors.FieldRequired("userId"), Errors.FieldRequired("deviceId"), Errors.AuthTokenRequired, Errors.AuthTokenInvalid,
                    Errors.AuthTokenExpired, Errors.AuthTokenUsed, Errors.AuthTokenOtherUser, Errors.UserBanned, Errors.VisitorNotPermitted, Errors.BotNotPermitted)
                .RequireAuthorization(Credentials.Policies.App)
                .RateLimited(LimitedAs.ClientLogin);
        }
        sessions.MapPost("/api/v4/sessions/refresh", RefreshAsync)
            .WithName("refreshSession")
            .WithSummary("Trade a refresh token for new tokens")
            .WithDescription("Header x-api-key. Each refresh token works once; a reused one ends the session.")
            .AcceptsJson<RefreshRequest>()
            .Produces<SessionResponse>(200)
            .Refuses(Errors.FieldRequired("refreshToken"), Errors.RefreshTokenInvalid, Errors.RefreshTokenExpired, Errors.RefreshTokenReused,
                Errors.SessionEnded, Errors.SessionTooOld, Errors.UserBanned, Errors.TooManyRequests(60))
            .RequireAuthorization(Credentials.Policies.App)
            .RateLimited(LimitedAs.ClientLogin);
        sessions.MapDelete("/api/v4/sessions", DeleteAsync)
            .WithName("endSessions")
            .WithSummary("Secure logout (bearer), or end every session of a user (x-admin-token with {\"userId\"})")
            .WithDescription("With a bearer token: ends that session; no body is read. With x-admin-token: the body names the user whose sessions end.")
            .AcceptsJson<UserIdRequest>(required: false)
            .Produces<SuccessResponse>(200)
            .Refuses(Errors.FieldRequired("userId"), Errors.UserNotFound)
            .RequireAuthorization(Credentials.Policies.AdminOrUser);
    }

    /// <summary>
    /// One path, two callers (as the contract has it): with a bearer token, secure logout of that session;
    /// with <c>x-admin-token</c> and <c>{"userId"}</c>, every session of that user.
    /// </summary>
    private static async Task<IResult> DeleteAsync(HttpContext http, SessionService sessions, UserAdministration users, AuditLog audit,
        SecurityMetrics metrics, IOptions<GatehouseOptions> options)
    {
        if (http.Features.Get<AdminCaller>() is { } admin)
        {
            metrics.AdminTokenUsed();
            return await AdminApiEndpoints.RevokeUserSessionsAsync(http, admin, users, options);
        }
        return await LogoutAsync(http, http.CallerOf<Caller>(), sessions, audit);
    }

    /// <param name="db">Read only in secure mode (the auth token's key and, single-use, its spending); the session itself is written by the group writer.</param>
    private static async Task<Results<JsonHttpResult<SessionResponse>, ApiError>> CreateAsync(
        HttpContext http, RequestDb db, AuthTokens.AuthTokens authTokens, SessionService sessions, AuditLog audit, IOptions<GatehouseOptions> options)
    {
        var ct = http.RequestAborted;
        var limits = options.Value.Limits;
        var network = http.CallerOf<Network>();

        var body = await JsonBody.ReadAsync(http.Request, SessionJson.Default.SessionRequest, limits.MaxBodyBytes, ct);
        var request = body.Value;
        var error = body.Error
            ?? Field.Check(request!.UserId, "userId", limits.UserIdMaxLength)
            ?? CheckClientDeviceId(request.DeviceId, limits)
            ?? Field.Check(request.DisplayName, "displayName", limits.DisplayNameMaxLength, required: false, allowEmojiJoiner: true)
            ?? CheckDeviceInfo(request.DeviceInfo);
        if (error is null && network.SecureMode)
        {
            // Without secure mode an authToken is not asked for, so one sent anyway is not judged either.
            error = string.IsNullOrEmpty(request!.AuthToken)
                ? Errors.AuthTokenRequired
                : await authTokens.CheckAsync(request.AuthToken, network.Id, request.UserId!, network.SingleUseAuthTokens, db.Context, ct);
        }

        IssuedSession? issued = null;
        if (error is null)
            (issued, error) = await sessions.OpenAsync(network, request!.ToLogin(), http.Connection.RemoteIpAddress?.ToString(), ct);

        if (error is not null)
        {
            audit.Record(SecurityEvents.SessionRefused(network.Id, UserIdIfValid(request?.UserId, limits), error.Reason), http.Origin());
            return error.AsResult();
        }
        audit.Record(issued!.Raised!, http.Origin());
        return TypedResults.Json(SessionResponse.Of(issued), SessionJson.Default.SessionResponse);
    }

    private static async Task<Results<JsonHttpResult<SessionResponse>, ApiError>> RefreshAsync(
        HttpContext http, SessionService sessions, AuditLog audit, IOptions<GatehouseOptions> options)
    {
        var ct = http.RequestAborted;
        var network = http.CallerOf<Network>();
        var body = await JsonBody.ReadAsync(http.Request, SessionJson.Default.RefreshRequest, options.Value.Limits.MaxBodyBytes, ct);
        var error = body.Error ?? Field.Check(body.Value!.RefreshToken, "refreshToken", RefreshTokenMaxLength);

        IssuedSession? issued = null;
        if (error is null)
            (issued, error) = await sessions.RefreshAsync(network, body.Value!.RefreshToken!, http.Origin().ClientAddress, ct);

        if (error is not null)
        {
            audit.Record(error == Errors.RefreshTokenReused
                ? SecurityEvents.RefreshReused(network.Id, error.Reason)
                : SecurityEvents.SessionRefused(network.Id, null, error.Reason), http.Origin());
            return error.AsResult();
        }
        audit.Record(issued!.Raised!, http.Origin());
        return TypedResults.Json(SessionResponse.Of(issued), SessionJson.Default.SessionResponse);
    }

    /// <summary>Secure logout: the SDK keeps its local session unless this succeeds.</summary>
    private static async Task<JsonHttpResult<SuccessResponse>> LogoutAsync(HttpContext http, Caller caller, SessionService sessions, AuditLog audit)
    {
        var origin = http.Origin();
        if (await sessions.RevokeAsync(caller.SessionId, RevokeReasons.Logout,
                SecurityEvents.LoggedOut(caller.User.UserId, caller.NetworkId, caller.SessionId, RevokeReasons.Logout), origin.ClientAddress,
                http.RequestAborted) is { } loggedOut)
        {
            audit.Record(loggedOut, origin);
        }
        return TypedResults.Json(new SuccessResponse(true), AdminApiJson.Default.SuccessResponse);
    }

    /// <summary>
    /// The device a backend opens a user's sessions on when it names none. Kept from clients: a client logging in on it
    /// would sign that user's backend sessions out (a device holds one user at a time).
    /// </summary>
    private const string BackendDevicePrefix = "backend:";

    /// <summary>A device id an app sends: the usual checks, and none of the backends' devices.</summary>
    public static Refusal? CheckClientDeviceId(string? deviceId, InputLimits limits) =>
        Field.Check(deviceId, "deviceId", limits.DeviceIdMaxLength)
        ?? (deviceId!.StartsWith(BackendDevicePrefix, StringComparison.Ordinal)
            ? Errors.BadRequest("field_invalid", $"deviceId must not start with '{BackendDevicePrefix}': Gatehouse keeps those for sessions a backend opens.")
            : null);

    public static Refusal? CheckDeviceInfo(DeviceInfo? deviceInfo) =>
        Field.Check(deviceInfo?.Kind, "deviceInfo.kind", DeviceInfoMaxLength, required: false)
        ?? Field.Check(deviceInfo?.Model, "deviceInfo.model", DeviceInfoMaxLength, required: false)
        ?? Field.Check(deviceInfo?.SdkVersion, "deviceInfo.sdkVersion", DeviceInfoMaxLength, required: false);

    /// <summary>
    /// Server to server: the customer's backend opens a session for one of its users and hands the access token to its
    /// app, which logs in with it alone (the 7.x SDKs' <c>loginWithAccessToken</c>) and asks the backend again to renew.
    /// The server key (and with mTLS on the network's client certificate) proves who the user is, as an auth token
    /// would; no refresh token is made. Without CORS, like every server-key endpoint.
    /// </summary>
    public static void MapBackendSessionEndpoints(this IEndpointRouteBuilder app) =>
        app.MapPost("/api/v5/server/sessions", OpenForUserAsync)
            .WithTags(ApiTags.ServerToServer)
            .WithName("openBackendSession")
            .WithSummary("Open a session for a user and answer its access token (for loginWithAccessToken)")
            .WithDescription("Header x-server-key. No refresh token: the backend opens the next session to renew. deviceId is optional; " +
                "without it the user's backend sessions share one device, under the per-device session cap.")
            .AcceptsJson<BackendSessionRequest>()
            .Produces<BackendSessionResponse>(200)
            .Refuses(Errors.FieldRequired("userId"), Errors.UserBanned, Errors.VisitorNotPermitted, Errors.BotNotPermitted, Errors.ItemNotFound("The network"))
            .RequireAuthorization(Credentials.Policies.ServerToServer)
            .RateLimited(LimitedAs.Mint);

    /// <summary>Answers what the bearer token stands for; the 7.x SDKs call it to check a token they were handed.</summary>
    public static void MapCurrentSessionEndpoint(this IEndpointRouteBuilder bearerApi) =>
        bearerApi.MapGet("/api/v3/sessions", (HttpContext http) =>
            {
                var caller = http.CallerOf<Caller>();
                return TypedResults.Json(new CurrentSessionResponse(caller.SessionId.ToString(), caller.User.UserId, caller.NetworkId, caller.User.Kind.WireName()),
                    SessionJson.Default.CurrentSessionResponse);
            })
            .WithTags(ApiTags.Client)
            .WithName("getCurrentSession")
            .WithSummary("The session the bearer token stands for")
            .Produces<CurrentSessionResponse>(200);

    private static async Task<Results<JsonHttpResult<BackendSessionResponse>, ApiError>> OpenForUserAsync(
        HttpContext http, GatehouseDb db, SessionService sessions, AuditLog audit, IOptions<GatehouseOptions> options)
    {
        var ct = http.RequestAborted;
        var limits = options.Value.Limits;
        var key = http.CallerOf<ServerKeys.ServerKey>();
        var actor = http.CallerOf<CredentialSubject>().Actor;
        var body = await JsonBody.ReadAsync(http.Request, SessionJson.Default.BackendSessionRequest, limits.MaxBodyBytes, ct);
        var request = body.Value;
        var error = body.Error
            ?? Field.Check(request!.UserId, "userId", limits.UserIdMaxLength)
            ?? Field.Check(request.DisplayName, "displayName", limits.DisplayNameMaxLength, required: false, allowEmojiJoiner: true)
            ?? Field.Check(request.DeviceId, "deviceId", limits.DeviceIdMaxLength, required: false);

        IssuedSession? issued = null;
        Network? network = null;
        if (error is null)
        {
            // The key's own network, read now: the policy judged the key, not the network's current settings.
            network = await db.Networks.AsNoTracking().FirstOrDefaultAsync(n => n.Id == key.NetworkId, ct);
            if (network is null)
                error = Errors.ItemNotFound("The network");
        }
        if (error is null)
        {
            var deviceId = string.IsNullOrWhiteSpace(request!.DeviceId) ? BackendDevicePrefix + Tokens.Secrets.Digest(request.UserId!)[..32] : request.DeviceId;
            var login = new Login(request.UserId!, deviceId, request.DisplayName, "backend", null, null, Backend: actor,
                BackendMtls: http.Features.Get<ClientCertificateVerdict>()?.Verified == true);
            (issued, error) = await sessions.OpenAsync(network!, login, http.Connection.RemoteIpAddress?.ToString(), ct);
        }

        if (error is not null)
        {
            audit.Record(SecurityEvents.SessionRefused(key.NetworkId, UserIdIfValid(request?.UserId, limits), error.Reason, actor), http.Origin());
            return error.AsResult();
        }
        audit.Record(issued!.Raised!, http.Origin());
        return TypedResults.Json(BackendSessionResponse.Of(issued), SessionJson.Default.BackendSessionResponse);
    }

    /// <summary>Only a userId that passed validation goes into the audit log, never arbitrary input.</summary>
    private static string? UserIdIfValid(string? userId, InputLimits limits) =>
        Field.Check(userId, "userId", limits.UserIdMaxLength) is null ? userId : null;
}
