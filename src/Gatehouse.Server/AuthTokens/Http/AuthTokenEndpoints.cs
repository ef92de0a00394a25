using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Gatehouse.Server.Api;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Certificates.Http;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Observability;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.ServerKeys;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.AuthTokens.Http;

internal sealed record AuthTokenRequest(string? UserId);

internal sealed record AuthTokenResponse(string AuthToken, DateTimeOffset ExpiresAt);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, AllowDuplicateProperties = false, MaxDepth = 16, Converters = [typeof(UtcTimestampConverter)])]
[JsonSerializable(typeof(AuthTokenRequest))]
[JsonSerializable(typeof(AuthTokenResponse))]
[JsonSerializable(typeof(string))]
internal sealed partial class AuthTokenJson : JsonSerializerContext;

/// <summary>
/// Server to server: the customer's backend trades its server key for a user's auth token. The key (and, with mTLS on,
/// the network's client certificate) is judged by the server-to-server policy before the body is read, so an
/// unauthenticated caller learns nothing about it. Deliberately without CORS: a browser must never hold a server key.
/// </summary>
internal static class AuthTokenEndpoints
{
    public static void MapAuthTokenEndpoints(this IEndpointRouteBuilder app)
    {
        var serverToServer = app.MapGroup("").WithTags(ApiTags.ServerToServer)
            .RequireAuthorization(Credentials.Policies.ServerToServer)
            .RateLimited(LimitedAs.Mint);
        serverToServer.MapGet("/api/v3/authentication/token", MintV3Async)
            .WithName("mintAuthTokenV3")
            .WithSummary("Mint an auth token for a user (answers a JSON string)")
            .WithDescription("Header x-server-key. Valid ten minutes, for that user in that network. With mTLS on, over HTTPS with the network's client certificate.")
            .Produces<string>(200)
            .Refuses(Errors.FieldRequired("userId"), RepeatedUserId);
        serverToServer.MapPost("/api/v4/authentication/token", MintV4Async)
            .WithName("mintAuthToken")
            .WithSummary("Mint an auth token for a user")
            .WithDescription("Header x-server-key. Valid ten minutes, for that user in that network. With mTLS on, over HTTPS with the network's client certificate.")
            .AcceptsJson<AuthTokenRequest>()
            .Produces<AuthTokenResponse>(200)
            .Refuses(Errors.FieldRequired("userId"));
    }

    private static readonly Refusal RepeatedUserId = Errors.BadRequest("field_repeated", "userId must be given once.");

    /// <param name="userId">Bound so that the document names the parameter; a repeated one is refused, not joined.</param>
    private static Results<TokenAsJsonString, ApiError> MintV3Async(HttpContext http, string? userId, AuthTokens authTokens, AuditLog audit,
        IOptions<GatehouseOptions> options)
    {
        var repeated = http.Request.Query["userId"].Count > 1;
        var outcome = Mint(http, repeated ? RepeatedUserId : null, repeated ? null : userId, authTokens, audit, options.Value.Limits);
        return outcome.Refusal is { } refusal ? refusal.AsResult() : new TokenAsJsonString(outcome.Token!);
    }

    private static async Task<Results<JsonHttpResult<AuthTokenResponse>, ApiError>> MintV4Async(HttpContext http, AuthTokens authTokens,
        AuditLog audit, IOptions<GatehouseOptions> options)
    {
        var limits = options.Value.Limits;
        var body = await JsonBody.ReadAsync(http.Request, AuthTokenJson.Default.AuthTokenRequest, limits.MaxBodyBytes, http.RequestAborted);
        var outcome = Mint(http, body.Error, body.Value?.UserId, authTokens, audit, limits);
        return outcome.Refusal is { } refusal
            ? refusal.AsResult()
            : TypedResults.Json(new AuthTokenResponse(outcome.Token!, outcome.ExpiresAt), AuthTokenJson.Default.AuthTokenResponse);
    }

    private static (string? Token, DateTimeOffset ExpiresAt, Refusal? Refusal) Mint(HttpContext http, Refusal? bodyError, string? userId,
        AuthTokens authTokens, AuditLog audit, InputLimits limits)
    {
        var key = http.CallerOf<ServerKey>();
        var actor = http.CallerOf<CredentialSubject>().Actor;
        if ((bodyError ?? Field.Check(userId, "userId", limits.UserIdMaxLength)) is { } refusal)
        {
            audit.Record(SecurityEvents.AuthTokenRefused(actor, key.NetworkId, userId, refusal.Reason), http.Origin());
            return (null, default, refusal);
        }

        var (token, expiresAt) = authTokens.Mint(key.NetworkId, userId!, key.Id);
        audit.Record(SecurityEvents.AuthTokenMinted(actor, key.NetworkId, userId!, http.Features.Get<ClientCertificateVerdict>()?.Verified == true), http.Origin());
        return (token, expiresAt, null);
    }
}

/// <summary>
/// The v3 mint's answer, the token as a JSON string, written in one piece with its length. A token is base64url and
/// dots, none of which JSON escapes, so the serializer's writer, its result object and a chunked body were work for
/// nothing on the most frequent server-to-server call (docs/benchmarks.md, change 55).
/// </summary>
internal sealed class TokenAsJsonString : IResult, IStatusCodeHttpResult, IContentTypeHttpResult
{
    private const string JsonContentType = "application/json; charset=utf-8";
    private static readonly SearchValues<char> TokenCharacters =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.");

    private readonly string _token;

    public TokenAsJsonString(string token)
    {
        // A token that needed escaping would be written wrong, never silently: refused where it is made.
        if (token.AsSpan().ContainsAnyExcept(TokenCharacters))
            throw new ArgumentException("A token is base64url and dots.", nameof(token));
        _token = token;
    }

    int? IStatusCodeHttpResult.StatusCode => StatusCodes.Status200OK;

    string IContentTypeHttpResult.ContentType => JsonContentType;

    public Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        var length = _token.Length + 2;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = JsonContentType;
        response.ContentLength = length;
        var body = response.BodyWriter.GetSpan(length);
        body[0] = (byte)'"';
        Encoding.ASCII.GetBytes(_token, body[1..]);
        body[length - 1] = (byte)'"';
        response.BodyWriter.Advance(length);
        // Kestrel flushes what was written when the request ends, in the same send as the headers.
        return Task.CompletedTask;
    }
}
