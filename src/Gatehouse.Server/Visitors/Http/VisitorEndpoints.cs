using Gatehouse.Server.Api;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Observability;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Sessions.Http;
using Gatehouse.Server.Users;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Visitors.Http;

/// <summary>
/// The 7.x SDKs' anonymous logins: <c>loginAsVisitor</c> and <c>loginAsBot</c>. Each device gets one stable
/// visitor (or bot) user, and a session like any login's, answered with its <c>userType</c>. Both are off until an
/// admin allows them for the network; in secure mode a visitor needs a signature from the customer's backend.
/// </summary>
internal static class VisitorEndpoints
{
    public static void MapVisitorEndpoints(this IEndpointRouteBuilder publicApi)
    {
        var sessions = publicApi.MapGroup("/api/v5/sessions").WithTags(ApiTags.Client)
            .RequireAuthorization(Credentials.Policies.App)
            .RateLimited(LimitedAs.ClientLogin);
        sessions.MapPost("/visitor", (HttpContext http, VisitorSecrets secrets, SessionService service, AuditLog audit, TimeProvider clock,
                IOptions<GatehouseOptions> options) => OpenAsync(http, UserKind.Visitor, secrets, service, audit, clock, options))
            .WithName("openVisitorSession")
            .WithSummary("Open a visitor's read-only session (loginAsVisitor)")
            .WithDescription("Header x-api-key. Visitor mode must be on. In secure mode authSignature and authSignatureExpiresAt are required " +
                "(HMAC-SHA256 with the visitor secret, docs/api.md).")
            .AcceptsJson<VisitorSessionRequest>()
            .Produces<SessionResponse>(200)
            .Refuses(Errors.FieldRequired("deviceId"), Errors.VisitorModeOff, Errors.VisitorSignatureRequired, Errors.VisitorSignatureInvalid,
                Errors.VisitorSignatureExpired, Errors.VisitorSignatureTime, Errors.VisitorSecretMissing, Errors.DeviceHasSignedInUser, Errors.UserBanned);
        sessions.MapPost("/bot", (HttpContext http, VisitorSecrets secrets, SessionService service, AuditLog audit, TimeProvider clock,
                IOptions<GatehouseOptions> options) => OpenAsync(http, UserKind.Bot, secrets, service, audit, clock, options))
            .WithName("openBotSession")
            .WithSummary("Open a bot's read-only session (loginAsBot)")
            .WithDescription("Header x-api-key. Bot mode must be on.")
            .AcceptsJson<VisitorSessionRequest>()
            .Produces<SessionResponse>(200)
            .Refuses(Errors.FieldRequired("deviceId"), Errors.BotModeOff, Errors.DeviceHasSignedInUser, Errors.UserBanned);
    }

    private static async Task<Results<JsonHttpResult<SessionResponse>, ApiError>> OpenAsync(HttpContext http, UserKind kind, VisitorSecrets secrets,
        SessionService sessions, AuditLog audit, TimeProvider clock, IOptions<GatehouseOptions> options)
    {
        var ct = http.RequestAborted;
        var limits = options.Value.Limits;
        var network = http.CallerOf<Network>();

        var body = await JsonBody.ReadAsync(http.Request, SessionJson.Default.VisitorSessionRequest, limits.MaxBodyBytes, ct);
        var request = body.Value;
        var error = body.Error
            ?? SessionEndpoints.CheckClientDeviceId(request!.DeviceId, limits)
            ?? SessionEndpoints.CheckDeviceInfo(request.DeviceInfo)
            ?? (kind == UserKind.Visitor ? (network.VisitorsAllowed ? null : Errors.VisitorModeOff) : (network.BotsAllowed ? null : Errors.BotModeOff));
        // A bot proves nothing (the SDK sends no signature for one): allowing bots is allowing anyone with the API key to read.
        if (error is null && kind == UserKind.Visitor && network.SecureMode)
        {
            var valid = await secrets.ValidAsync(network.Id, ct);
            error = valid.Count == 0
                ? Errors.VisitorSecretMissing
                : VisitorSignature.Check(request!.DeviceId!, request.AuthSignature, request.AuthSignatureExpiresAt, valid, clock.GetUtcNow(),
                    options.Value.Visitors.SignatureMaxAhead);
        }

        // Only a deviceId that passed validation names a user in the audit log, never arbitrary input.
        var userId = request?.DeviceId is { } device && Field.Check(device, "deviceId", limits.DeviceIdMaxLength) is null
            ? VisitorIdentity.UserIdFor(network.Id, kind, device)
            : null;
        IssuedSession? issued = null;
        if (error is null)
        {
            var login = new Login(userId!, request!.DeviceId!, null, request.DeviceInfo?.Kind, request.DeviceInfo?.Model, request.DeviceInfo?.SdkVersion, kind);
            (issued, error) = await sessions.OpenAsync(network, login, http.Connection.RemoteIpAddress?.ToString(), ct);
        }

        if (error is not null)
        {
            audit.Record(SecurityEvents.SessionRefused(network.Id, userId, error.Reason), http.Origin());
            return error.AsResult();
        }
        audit.Record(issued!.Raised!, http.Origin());
        return TypedResults.Json(SessionResponse.Of(issued), SessionJson.Default.SessionResponse);
    }
}
