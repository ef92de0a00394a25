using Gatehouse.Server.Api;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Sessions;

/// <summary>Who is calling, once the bearer token and its session have been checked.</summary>
public sealed record Caller(Guid SessionId, string NetworkId, User User);

/// <summary>
/// The filter on every bearer endpoint. A valid signature is not enough: the session must still be live,
/// so logout, device rebinding and reuse detection take effect on the very next request.
/// </summary>
public static class BearerAuthentication
{
    private static readonly CompiledQuery<Guid, SessionState?> SessionWithUser =
        new((db, sessionId, ct) => db.Sessions.AsNoTracking()
            .Where(s => s.Id == sessionId)
            .Join(db.Users, s => s.UserRef, u => u.Id, (s, u) => new SessionState(s.NetworkId, s.RevokedAt, s.CreatedAt, u))
            .FirstOrDefault());

    public static Caller GetCaller(this HttpContext http) =>
        http.Features.Get<Caller>() ?? throw new InvalidOperationException("The endpoint is not behind the bearer filter.");

    public static async ValueTask<object?> FilterAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var (caller, error) = await AuthenticateAsync(context.HttpContext);
        if (error is not null)
            return error;
        context.HttpContext.Features.Set(caller);
        return await next(context);
    }

    /// <summary>Checks the bearer token and its session; a refusal is audited with the reason.</summary>
    public static async Task<(Caller? Caller, ApiError? Error)> AuthenticateAsync(HttpContext http)
    {
        var failures = http.RequestServices.GetRequiredService<CredentialFailures>();
        var presented = http.Request.Headers.Authorization.ToString();
        if (failures.Refusal(http, CredentialKinds.Bearer, presented) is { } limited)
            return (null, limited);
        var (caller, error) = await CheckAsync(http);
        if (error is not null)
        {
            // A token that is merely expired or whose session ended is what an honest client sends; garbage is not.
            if (error == Errors.AccessTokenInvalid || error == Errors.BearerMissing)
                failures.Failed(http, CredentialKinds.Bearer, presented);
            http.RequestServices.GetRequiredService<AuditLog>()
                .Record(AuditKinds.AccessRefused, Outcomes.Refused, "bearer", caller?.NetworkId, caller?.User.UserId, error.Reason, http: http);
        }
        return (caller, error);
    }

    private static async Task<(Caller? Caller, ApiError? Error)> CheckAsync(HttpContext http)
    {
        var header = http.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) || header.Length == scheme.Length)
            return (null, Errors.BearerMissing);

        var check = await http.RequestServices.GetRequiredService<AccessTokens>().CheckAsync(header[scheme.Length..].Trim());
        if (check.Failure == JwtFailure.Expired)
            return (null, Errors.AccessTokenExpired);
        if (check.Token is not { } token
            || !token.TryGetPayloadValue<string>("sid", out var sid) || !Guid.TryParse(sid, out var sessionId)
            || !token.TryGetPayloadValue<string>("nid", out var networkId))
        {
            return (null, Errors.AccessTokenInvalid);
        }

        var found = await http.RequestServices.GetRequiredService<LiveSessionCache>().GetAsync(sessionId,
            () => SessionWithUser.RunAsync(http.RequestServices.GetRequiredService<GatehouseDb>(), sessionId, http.RequestAborted));
        if (found is null || found.NetworkId != networkId)
            return (null, Errors.AccessTokenInvalid);

        // The ban is reported before the ended session, so the SDK learns why it was signed out.
        var caller = new Caller(sessionId, networkId, found.User);
        if (found.User.IsGlobalBan)
            return (caller, Errors.UserBanned);
        if (found.RevokedAt is not null || found.User.IsDeleted)
            return (caller, Errors.SessionEnded);
        // Access tokens expire by the session's absolute end; tokens issued before 0.2.0 did not, so it is checked here too.
        var absolute = http.RequestServices.GetRequiredService<IOptions<GatehouseOptions>>().Value.Sessions.AbsoluteLifetime;
        if (http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow() >= found.CreatedAt + absolute)
            return (caller, Errors.SessionTooOld);
        return (caller, null);
    }
}
