using Gatehouse.Server.Api;
using Gatehouse.Server.Observability;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Certificates;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.ServerKeys;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.AuthTokens;

public sealed record AuthTokenRequest(string? UserId);

public sealed record AuthTokenResponse(string AuthToken, DateTimeOffset ExpiresAt);

/// <summary>
/// Server to server: the customer's backend trades its server key for a user's auth token.
/// Deliberately without CORS: a browser must never hold a server key.
/// </summary>
public static class AuthTokenEndpoints
{
    public static void MapAuthTokenEndpoints(this IEndpointRouteBuilder app)
    {
        var serverToServer = app.MapGroup("").WithTags("Server to server (x-server-key)").RateLimited(LimitedAs.Mint);
        serverToServer.MapGet("/api/v3/authentication/token", MintV3Async)
            .WithSummary("Mint an auth token for a user (answers a JSON string)")
            .WithDescription("Header x-server-key. Valid ten minutes, for that user in that network. With mTLS on, over HTTPS with the network's client certificate.")
            .Produces<string>(200);
        serverToServer.MapPost("/api/v4/authentication/token", MintV4Async)
            .WithSummary("Mint an auth token for a user")
            .WithDescription("Header x-server-key. Valid ten minutes, for that user in that network. With mTLS on, over HTTPS with the network's client certificate.")
            .AcceptsJson<AuthTokenRequest>()
            .Produces<AuthTokenResponse>(200);
    }

    private static async Task<Results<JsonHttpResult<string>, ApiError>> MintV3Async(
        HttpContext http, ServerKeyService serverKeys, AuthTokens authTokens, AuditLog audit, IOptions<GatehouseOptions> options)
    {
        var userIds = http.Request.Query["userId"];
        var userId = userIds.Count > 1 ? null : userIds.ToString();
        var outcome = await MintAsync(http, userIds.Count > 1 ? Errors.BadRequest("field_repeated", "userId must be given once.") : null,
            userId, serverKeys, authTokens, audit, options.Value.Limits);
        return outcome.Error is { } error ? error : TypedResults.Json(outcome.Token!, GatehouseJson.Default.String);
    }

    private static async Task<Results<JsonHttpResult<AuthTokenResponse>, ApiError>> MintV4Async(
        HttpContext http, ServerKeyService serverKeys, AuthTokens authTokens, AuditLog audit, IOptions<GatehouseOptions> options)
    {
        var limits = options.Value.Limits;
        // The key is checked before the body is read: an unauthenticated caller learns nothing about it.
        var body = http.Request.Headers.ContainsKey(ServerKeyService.Header)
            ? await JsonBody.ReadAsync(http.Request, GatehouseJson.Default.AuthTokenRequest, limits.MaxBodyBytes, http.RequestAborted)
            : default;
        var outcome = await MintAsync(http, body.Error, body.Value?.UserId, serverKeys, authTokens, audit, limits);
        return outcome.Error is { } error
            ? error
            : TypedResults.Json(new AuthTokenResponse(outcome.Token!, outcome.ExpiresAt), GatehouseJson.Default.AuthTokenResponse);
    }

    private static async Task<(string? Token, DateTimeOffset ExpiresAt, ApiError? Error)> MintAsync(
        HttpContext http, ApiError? bodyError, string? userId,
        ServerKeyService serverKeys, AuthTokens authTokens, AuditLog audit, InputLimits limits)
    {
        var failures = http.RequestServices.GetRequiredService<CredentialFailures>();
        var presented = http.Request.Headers[ServerKeyService.Header].ToString();
        if (failures.Refusal(http, CredentialKinds.ServerKey, presented) is { } limited)
            return (null, default, limited);
        var (key, mtlsRequired, keyError) = await serverKeys.AuthenticateAsync(http.Request, http.RequestAborted);
        if (keyError is not null)
            failures.Failed(http, CredentialKinds.ServerKey, presented);
        // With mTLS on, the certificate is judged before the key: without it a thief learns nothing about a stolen key
        // (not even that it has expired).
        if (key is not null && mtlsRequired && await http.RequestServices.GetRequiredService<MtlsGate>().CheckAsync(http, key.NetworkId) is { } mtlsError)
        {
            audit.Record(AuditKinds.MtlsRefused, Outcomes.Refused, $"server-key:{key.Id}", key.NetworkId, reason: mtlsError.Reason, http: http);
            return (null, default, mtlsError);
        }
        var error = keyError ?? bodyError ?? Field.Check(userId, "userId", limits.UserIdMaxLength);
        if (error is not null)
        {
            audit.Record(keyError is null ? AuditKinds.AuthTokenRefused : AuditKinds.ServerKeyRefused, Outcomes.Refused,
                key is null ? "anonymous" : $"server-key:{key.Id}", key?.NetworkId, key is null ? null : userId, error.Reason, http: http);
            return (null, default, error);
        }

        var (token, expiresAt) = authTokens.Mint(key!.NetworkId, userId!, key.Id);
        audit.Record(AuditKinds.AuthTokenMinted, Outcomes.Success, $"server-key:{key.Id}", key.NetworkId, userId, http: http);
        return (token, expiresAt, null);
    }
}
