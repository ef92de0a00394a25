using System.Text.Json.Serialization;
using Gatehouse.Server.Api;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Observability;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.ServerKeys;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.ResourceServers;

/// <summary>Authorization server metadata (RFC 8414 §2), served as OpenID Connect discovery too.</summary>
internal sealed record AuthorizationServerMetadata(
    [property: JsonPropertyName("issuer")] string Issuer,
    [property: JsonPropertyName("jwks_uri")] string JwksUri,
    [property: JsonPropertyName("introspection_endpoint")] string IntrospectionEndpoint,
    [property: JsonPropertyName("revocation_endpoint")] string RevocationEndpoint,
    [property: JsonPropertyName("introspection_endpoint_auth_methods_supported")] IReadOnlyList<string> IntrospectionEndpointAuthMethodsSupported,
    [property: JsonPropertyName("revocation_endpoint_auth_methods_supported")] IReadOnlyList<string> RevocationEndpointAuthMethodsSupported,
    [property: JsonPropertyName("access_token_signing_alg_values_supported")] IReadOnlyList<string> AccessTokenSigningAlgValuesSupported,
    [property: JsonPropertyName("id_token_signing_alg_values_supported")] IReadOnlyList<string> IdTokenSigningAlgValuesSupported,
    [property: JsonPropertyName("subject_types_supported")] IReadOnlyList<string> SubjectTypesSupported,
    [property: JsonPropertyName("access_token_types_supported")] IReadOnlyList<string> AccessTokenTypesSupported,
    [property: JsonPropertyName("access_token_audience")] string AccessTokenAudience,
    [property: JsonPropertyName("introspection_token_types_supported")] IReadOnlyList<string> IntrospectionTokenTypesSupported,
    [property: JsonPropertyName("revocation_token_types_supported")] IReadOnlyList<string> RevocationTokenTypesSupported);

/// <summary>An introspection answer (RFC 7662 §2.2): only <c>active</c> when the token may not be used.</summary>
internal sealed record IntrospectionResponse(
    [property: JsonPropertyName("active")] bool Active,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonPropertyName("sub")] string? Sub = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonPropertyName("network_id")] string? NetworkId = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonPropertyName("session_id")] string? SessionId = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonPropertyName("user_type")] string? UserType = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonPropertyName("token_type")] string? TokenType = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonPropertyName("iss")] string? Iss = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonPropertyName("aud")] string? Aud = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonPropertyName("exp")] long? Exp = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonPropertyName("iat")] long? Iat = null);

// The RFCs' snake_case names are on each property rather than a naming policy of this context: the OpenAPI document
// describes these types with the API's shared (camelCase) options, which a context's policy does not reach.
[JsonSerializable(typeof(AuthorizationServerMetadata))]
[JsonSerializable(typeof(IntrospectionResponse))]
internal sealed partial class ResourceServerJson : JsonSerializerContext;

/// <summary>
/// What a customer's own API needs to trust Gatehouse's access tokens the way it trusts any provider's: the metadata
/// that names the issuer and its keys (RFC 8414), introspection for whether a token may still be used right now
/// (RFC 7662), and revocation by the app holding a token (RFC 7009). Each endpoint parses the form, validates, and
/// answers; introspection is counted per network and audited a minute at a time.
/// </summary>
internal static class ResourceServerEndpoints
{
    public const string IntrospectionPath = "/oauth/introspect";
    public const string RevocationPath = "/oauth/revoke";
    private const int MaxTokenLength = 4096;

    public static void MapResourceServerEndpoints(this IEndpointRouteBuilder app, string sdkCors)
    {
        var wellKnown = app.MapGroup("/.well-known").WithTags(ApiTags.ResourceServers);
        foreach (var (path, name) in new[] { ("/oauth-authorization-server", "getAuthorizationServerMetadata"), ("/openid-configuration", "getOpenIdConfiguration") })
        {
            wellKnown.MapGet(path, Metadata)
                .WithName(name)
                .WithSummary("Authorization server metadata (RFC 8414): the issuer, its keys, introspection and revocation")
                .Produces<AuthorizationServerMetadata>(200);
        }

        // Server to server, like a mint: a server key (and the network's client certificate when mTLS is on), no CORS.
        app.MapPost(IntrospectionPath, IntrospectAsync).WithTags(ApiTags.ResourceServers).WithName("introspectToken")
            .RequireAuthorization(Credentials.Policies.ServerToServer)
            .RateLimited(LimitedAs.Introspection)
            .DisableAntiforgery()
            .WithSummary("Token introspection (RFC 7662): whether an access token may be used now, and whose it is")
            // No Accepts metadata: routing would answer another content type with a bare 415; the handler says what to send.
            .WithDescription("Header x-server-key; form (application/x-www-form-urlencoded) field token. Inactive for a token that is expired, revoked, logged out, banned, " +
                "rebound to another user's device, malformed, or another network's.")
            .AcceptsForm("IntrospectionForm", required: ["token"])
            .Produces<IntrospectionResponse>(200)
            .Refuses(FormRefusals);

        // By the app holding the token (a public client): its API key, as for a refresh, and CORS like the sessions.
        app.MapPost(RevocationPath, RevokeAsync).WithTags(ApiTags.ResourceServers).WithName("revokeToken")
            .RequireCors(sdkCors)
            .RequireAuthorization(Credentials.Policies.App)
            .RateLimited(LimitedAs.ClientLogin)
            .DisableAntiforgery()
            .WithSummary("Token revocation (RFC 7009): an access or refresh token ends its session, like a secure logout")
            .WithDescription("Header x-api-key; form (application/x-www-form-urlencoded) fields token and optional token_type_hint. Answers 200 whether or not the token was known.")
            .AcceptsForm("RevocationForm", required: ["token"], optional: ["token_type_hint"])
            .Produces(200)
            .Refuses(FormRefusals);
    }

    private static JsonHttpResult<AuthorizationServerMetadata> Metadata(TokenIssuer issuer) =>
        TypedResults.Json(new AuthorizationServerMetadata(
            Issuer: issuer.Current,
            JwksUri: issuer.Current + "/.well-known/jwks.json",
            IntrospectionEndpoint: issuer.Current + IntrospectionPath,
            RevocationEndpoint: issuer.Current + RevocationPath,
            IntrospectionEndpointAuthMethodsSupported: ["x-server-key"],
            RevocationEndpointAuthMethodsSupported: ["x-api-key"],
            AccessTokenSigningAlgValuesSupported: [AccessTokens.Algorithm],
            IdTokenSigningAlgValuesSupported: [AccessTokens.Algorithm],
            SubjectTypesSupported: ["public"],
            AccessTokenTypesSupported: [AccessTokens.Type],
            AccessTokenAudience: AccessTokens.Audience,
            IntrospectionTokenTypesSupported: ["access_token"],
            RevocationTokenTypesSupported: ["access_token", "refresh_token"]), ResourceServerJson.Default.AuthorizationServerMetadata);

    private static async Task<Results<JsonHttpResult<IntrospectionResponse>, ApiError>> IntrospectAsync(HttpContext http, AccessTokens accessTokens,
        SessionAccess access, IntrospectionTally tally, TokenIssuer issuer)
    {
        var key = http.CallerOf<ServerKey>();
        var (token, error) = await ReadTokenAsync(http);
        if (error is not null)
            return error.AsResult();

        var (caller, refusal) = await access.CheckAsync(token, http.RequestAborted);
        // A token of another network is no more this backend's to learn about than a forged one. Its times are read
        // from a second check, the verified-token cache's answer when the cache keeps it; a token that expired or
        // whose key retired between the two checks is inactive, like any other.
        var verified = caller is not null && refusal is null && caller.NetworkId == key.NetworkId ? (await accessTokens.CheckAsync(token!)).Token : null;
        tally.Count(key.NetworkId, verified is not null);
        if (verified is null)
            return TypedResults.Json(new IntrospectionResponse(false), ResourceServerJson.Default.IntrospectionResponse);

        return TypedResults.Json(new IntrospectionResponse(true, caller!.User.UserId, caller.NetworkId, caller.SessionId.ToString(),
            caller.User.Kind.WireName(), "access_token", verified.Issuer, AccessTokens.Audience,
            new DateTimeOffset(verified.ValidTo).ToUnixTimeSeconds(), new DateTimeOffset(verified.IssuedAt).ToUnixTimeSeconds()),
            ResourceServerJson.Default.IntrospectionResponse);
    }

    /// <summary>
    /// Ends the session an access or refresh token of this network belongs to. Unknown, malformed, expired and other
    /// networks' tokens change nothing and get the same 200 (RFC 7009 §2.2), so the answer tells nothing about them.
    /// </summary>
    private static async Task<Results<Ok, ApiError>> RevokeAsync(HttpContext http, SessionAccess access, SessionService sessions,
        IDbContextFactory<GatehouseDb> dbs, AuditLog audit)
    {
        var network = http.CallerOf<Network>();
        var (token, error) = await ReadTokenAsync(http);
        if (error is not null)
            return error.AsResult();
        var ct = http.RequestAborted;

        var (sessionId, userId) = await SessionOfAccessTokenAsync(access, token!, network.Id, ct) ?? await SessionOfRefreshTokenAsync(dbs, token!, network.Id, ct)
            ?? (Guid.Empty, null);
        var origin = http.Origin();
        if (userId is not null && await sessions.RevokeAsync(sessionId, RevokeReasons.ClientRevoked,
                SecurityEvents.LoggedOut(userId, network.Id, sessionId, RevokeReasons.ClientRevoked), origin.ClientAddress, ct) is { } revoked)
        {
            audit.Record(revoked, origin);
        }
        return TypedResults.Ok();
    }

    private static async Task<(Guid, string?)?> SessionOfAccessTokenAsync(SessionAccess access, string token, string networkId, CancellationToken ct)
    {
        var (caller, _) = await access.CheckAsync(token, ct);
        return caller is not null && caller.NetworkId == networkId ? (caller.SessionId, caller.User.UserId) : null;
    }

    private static async Task<(Guid, string?)?> SessionOfRefreshTokenAsync(IDbContextFactory<GatehouseDb> dbs, string token, string networkId,
        CancellationToken ct)
    {
        var digest = Secrets.Digest(token);
        await using var db = await dbs.CreateDbContextAsync(ct);
        var found = await db.RefreshTokens.AsNoTracking().Where(r => r.Digest == digest)
            .Join(db.Sessions, r => r.SessionId, s => s.Id, (r, s) => new { r.Digest, s.Id, s.NetworkId, s.UserRef })
            .Join(db.Users, x => x.UserRef, u => u.Id, (x, u) => new { x.Digest, x.Id, x.NetworkId, u.UserId })
            .FirstOrDefaultAsync(ct);
        return found is not null && found.NetworkId == networkId && Secrets.DigestsEqual(found.Digest, digest) ? (found.Id, found.UserId) : null;
    }

    private static readonly Refusal NotForm = Errors.BadRequest("content_type", "Send the token as application/x-www-form-urlencoded, in the field token.");
    private static readonly Refusal FormUnreadable = Errors.BadRequest("body_invalid", "The form could not be read.");
    private static readonly Refusal TokenRepeated = Errors.BadRequest("field_repeated", "token must be given once.");
    private static readonly Refusal TokenRequired = Errors.BadRequest("field_required", "token is required.");
    private static readonly Refusal TokenTooLong = Errors.BadRequest("field_too_long", $"token must be at most {MaxTokenLength} characters.");
    private static readonly Refusal[] FormRefusals = [NotForm, FormUnreadable, TokenRepeated, TokenRequired, TokenTooLong];

    /// <summary>The form's <c>token</c> (RFC 7662 §2.1, RFC 7009 §2.1): a form body, the field once, of a token's length.</summary>
    private static async Task<(string? Token, Refusal? Error)> ReadTokenAsync(HttpContext http)
    {
        if (!http.Request.HasFormContentType)
            return (null, NotForm);
        IFormCollection form;
        try
        {
            form = await http.Request.ReadFormAsync(http.RequestAborted);
        }
        catch (InvalidDataException)
        {
            return (null, FormUnreadable);
        }
        var tokens = form["token"];
        if (tokens.Count > 1)
            return (null, TokenRepeated);
        var token = tokens.ToString();
        if (string.IsNullOrEmpty(token))
            return (null, TokenRequired);
        return token.Length > MaxTokenLength ? (null, TokenTooLong) : (token, null);
    }
}
