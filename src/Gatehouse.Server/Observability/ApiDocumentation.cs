using System.Globalization;
using System.Text.Json.Nodes;
using Gatehouse.Server.AdminTokens.Http;
using Gatehouse.Server.Api;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.AuthTokens.Http;
using Gatehouse.Server.Certificates.Http;
using Gatehouse.Server.Networks.Http;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.ServerKeys.Http;
using Gatehouse.Server.Sessions.Http;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.OpenApi;

namespace Gatehouse.Server.Observability;

/// <summary>
/// Documents a JSON request body without the routing constraint that <c>Accepts</c> adds: the endpoints read
/// their bodies themselves so that a wrong content type answers 400 in the envelope, not a bare 415.
/// </summary>
internal sealed record JsonBodyMetadata(Type Type, bool Required);

/// <summary>A form body (<c>application/x-www-form-urlencoded</c>) of text fields, which the endpoint reads itself, like a JSON body.</summary>
internal sealed record FormBodyMetadata(string Name, string[] Required, string[] Optional);

/// <summary>Refusals an endpoint (or a group of them) can answer beyond those of its credential, body and limits.</summary>
internal sealed record RefusalsMetadata(IReadOnlyList<Refusal> Refusals);

/// <summary>The tags of the public API, each with the description the document gives it.</summary>
internal static class ApiTags
{
    public const string Client = "Client (x-api-key, bearer)";
    public const string ServerToServer = "Server to server (x-server-key)";
    public const string Admin = "Admin (x-admin-token)";
    public const string ResourceServers = "Resource servers";
    public const string PublicKeys = "Public keys";

    public static readonly IReadOnlyDictionary<string, string> Descriptions = new Dictionary<string, string>
    {
        [Client] = "What the official SDKs call from an app: sessions opened with the network's API key (and, in secure mode, " +
            "an auth token), then calls with the session's access token as a bearer token. CORS allows any origin.",
        [ServerToServer] = "What the customer's backend calls with its server key: auth tokens and sessions for its users. " +
            "With mTLS on for the network, only over HTTPS with one of the network's client certificates. No CORS.",
        [Admin] = "The admin API, with an admin token from the console, scoped to the token's network. " +
            "With mTLS on for the network, only over HTTPS with one of the network's client certificates. No CORS.",
        [ResourceServers] = "What a customer's own API needs to trust Gatehouse's access tokens: the authorization server metadata (RFC 8414).",
        [PublicKeys] = "Public material anyone may read: the keys that verify Gatehouse's tokens and the certificate authority of client certificates.",
    };
}

/// <summary>The OpenAPI 3.1 document of the public API, generated from the endpoints, with examples.</summary>
internal static class ApiDocumentation
{
    private static readonly Dictionary<Type, JsonNode> Examples = new()
    {
        [typeof(ErrorEnvelope)] = Envelope(Errors.ApiKeyUnknown),
        [typeof(SessionRequest)] = new JsonObject
        {
            ["userId"] = "alice",
            ["deviceId"] = "ascWebSdk#6c8f2b3e-1d2c-4b8a-9f1e-2a3b4c5d6e7f",
            ["displayName"] = "Alice",
            ["authToken"] = "eyJhbGciOiJFUzI1NiIs…",
            ["deviceInfo"] = new JsonObject { ["kind"] = "web", ["model"] = "Chrome", ["sdkVersion"] = "6.35.3" },
        },
        [typeof(RefreshRequest)] = new JsonObject { ["refreshToken"] = "grt_Kwj6DzsQ3YvDYsiijZWii4iBYqOlcetsXq3qXKKX3wQ" },
        [typeof(AuthTokenRequest)] = new JsonObject { ["userId"] = "alice" },
        [typeof(UserIdRequest)] = new JsonObject { ["userId"] = "alice" },
        [typeof(AuthTokenResponse)] = new JsonObject { ["authToken"] = "eyJhbGciOiJFUzI1NiIs…", ["expiresAt"] = "2026-11-24T06:06:33.663Z" },
        [typeof(SuccessResponse)] = new JsonObject { ["success"] = true },
    };

    // Request records take every field as a nullable constructor parameter (so that a missing field is our 400,
    // not a serializer error); this is what is really required, and a required field's null is refused too.
    private static readonly Dictionary<Type, string[]> RequiredFields = new()
    {
        [typeof(SessionRequest)] = ["userId", "deviceId"],
        [typeof(DeviceInfo)] = [],
        [typeof(RefreshRequest)] = ["refreshToken"],
        [typeof(AuthTokenRequest)] = ["userId"],
        [typeof(UserIdRequest)] = ["userId"],
        [typeof(VisitorSessionRequest)] = ["deviceId"],
        [typeof(BackendSessionRequest)] = ["userId"],
    };

    /// <summary>A credential scheme as the document declares it, and what its check refuses.</summary>
    private sealed record CredentialDocumentation(string SchemeId, OpenApiSecurityScheme Scheme, Refusal[] Refusals);

    private const string MtlsNote = " With mTLS on for the network, only over HTTPS with one of the network's client certificates.";

    /// <summary>Keyed by authentication scheme (<see cref="Credentials"/>): the security scheme of each credential handler.</summary>
    private static readonly Dictionary<string, CredentialDocumentation> CredentialSchemes = new()
    {
        [Credentials.ApiKey] = new(ApiKeyHandler.HeaderName, new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = ApiKeyHandler.HeaderName,
            Description = "The network's public API key, as the SDKs send it: it names the network, nothing more.",
        }, [Errors.ApiKeyMissing, Errors.ApiKeyUnknown]),
        [Credentials.ServerKey] = new(ServerKeyHandler.HeaderName, new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = ServerKeyHandler.HeaderName,
            Description = "A server key of the network (secure mode on), held by the customer's backend only." + MtlsNote,
        }, [Errors.ServerKeyMissing, Errors.ServerKeyInvalid, Errors.ServerKeyExpired]),
        [Credentials.AdminToken] = new(AdminTokenHandler.HeaderName, new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = AdminTokenHandler.HeaderName,
            Description = "An admin token from the console (Settings · Admin Users), for one network." + MtlsNote,
        }, [Errors.AdminTokenMissing, Errors.AdminTokenInvalid, Errors.AdminTokenRevoked, Errors.AdminTokenExpired, Errors.AdminTokenNotPermitted]),
        [Credentials.Bearer] = new(Credentials.Bearer, new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "JWT",
            Description = "A session's access token (an ES256 JWT), from opening or refreshing a session.",
        }, [Errors.BearerMissing, Errors.AccessTokenInvalid, Errors.AccessTokenExpired, Errors.SessionEnded, Errors.SessionTooOld, Errors.UserBanned]),
    };

    /// <summary>A policy scheme forwards to one of these (see <c>GatehouseCredentials</c>): each is an alternative.</summary>
    private static readonly Dictionary<string, string[]> ForwardedSchemes = new()
    {
        [Credentials.AdminTokenOrBearer] = [Credentials.AdminToken, Credentials.Bearer],
    };

    private static readonly Refusal[] MtlsRefusals =
        [Errors.MtlsNotTls, Errors.MtlsNoCertificate, Errors.MtlsExpired, Errors.MtlsUntrusted, Errors.MtlsUnknown, Errors.MtlsRevoked];

    private static readonly Refusal[] JsonBodyRefusals = [Errors.NotJson, Errors.BodyTooLarge, Errors.BodyNotObject, Errors.MalformedJson(null)];

    // Any request: the exception handler answers 500, the start-up gate and a database outage 503.
    private static readonly Refusal[] ServerRefusals = [Errors.Internal, Errors.Starting, Errors.Unavailable];

    private static readonly string[] PublicPrefixes = ["api/", ".well-known/", "oauth/"];

    public static RouteHandlerBuilder AcceptsJson<T>(this RouteHandlerBuilder endpoint, bool required = true) =>
        endpoint.WithMetadata(new JsonBodyMetadata(typeof(T), required));

    /// <param name="name">The form's name among the document's schemas (a generated client's class).</param>
    public static RouteHandlerBuilder AcceptsForm(this RouteHandlerBuilder endpoint, string name, string[] required, string[]? optional = null) =>
        endpoint.WithMetadata(new FormBodyMetadata(name, required, optional ?? []));

    public static TBuilder Refuses<TBuilder>(this TBuilder endpoint, params Refusal[] refusals) where TBuilder : IEndpointConventionBuilder =>
        endpoint.WithMetadata(new RefusalsMetadata(refusals));

    public static IServiceCollection AddGatehouseOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(openApi =>
        {
            // The console's pages and the operational endpoints are not part of the public API.
            openApi.ShouldInclude = description => description.RelativePath is { } path && PublicPrefixes.Any(prefix => path.StartsWith(prefix, StringComparison.Ordinal));
            openApi.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "Gatehouse API";
                document.Info.Description = "The social.plus-compatible security API. Every error answers the envelope " +
                    "{\"status\":\"error\",\"code\":<number>,\"message\":\"…\"}; see docs/api.md for codes and limits.";
                document.Info.License = new OpenApiLicense { Name = "Apache License 2.0", Identifier = "Apache-2.0" };
                // The server is the address the document was asked at; paths start with a slash of their own.
                foreach (var server in document.Servers ?? [])
                    server.Url = server.Url?.TrimEnd('/');
                foreach (var tag in document.Tags ?? new HashSet<OpenApiTag>())
                {
                    if (tag.Name is { } name && ApiTags.Descriptions.TryGetValue(name, out var description))
                        tag.Description = description;
                }
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                foreach (var credential in CredentialSchemes.Values)
                    document.Components.SecuritySchemes[credential.SchemeId] = credential.Scheme;
                return Task.CompletedTask;
            });
            openApi.AddOperationTransformer(async (operation, context, ct) =>
            {
                var metadata = context.Description.ActionDescriptor.EndpointMetadata;
                var document = context.Document!;
                var refusals = new List<Refusal>();
                if (metadata.OfType<JsonBodyMetadata>().FirstOrDefault() is { } body)
                {
                    operation.RequestBody = new OpenApiRequestBody
                    {
                        Required = body.Required,
                        Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new() { Schema = await ComponentAsync(body.Type, context, ct) } },
                    };
                    refusals.AddRange(JsonBodyRefusals);
                }
                if (metadata.OfType<FormBodyMetadata>().FirstOrDefault() is { } form)
                {
                    var fields = new OpenApiSchema
                    {
                        Type = JsonSchemaType.Object,
                        Properties = form.Required.Concat(form.Optional).ToDictionary(field => field, IOpenApiSchema (_) => new OpenApiSchema { Type = JsonSchemaType.String }),
                        Required = new HashSet<string>(form.Required, StringComparer.Ordinal),
                    };
                    operation.RequestBody = new OpenApiRequestBody
                    {
                        Required = true,
                        Content = new Dictionary<string, OpenApiMediaType>
                        {
                            ["application/x-www-form-urlencoded"] = new() { Schema = Component(form.Name, fields, document) },
                        },
                    };
                }
                refusals.AddRange(await SecureAsync(operation, metadata, context, document));
                if (metadata.OfType<RateLimitedAttribute>().Any())
                    refusals.Add(Errors.TooManyRequests(60));
                refusals.AddRange(metadata.OfType<RefusalsMetadata>().SelectMany(m => m.Refusals));
                refusals.AddRange(ServerRefusals);
                await AnswerAsync(operation, refusals, context, ct);
            });
            openApi.AddSchemaTransformer((schema, context, _) =>
            {
                if (Examples.TryGetValue(context.JsonTypeInfo.Type, out var example))
                    schema.Examples = [example.DeepClone()];
                if (RequiredFields.TryGetValue(context.JsonTypeInfo.Type, out var required))
                {
                    schema.Required = new HashSet<string>(required, StringComparer.Ordinal);
                    foreach (var field in required)
                    {
                        if (schema.Properties is { } properties && properties.TryGetValue(field, out var found) && found is OpenApiSchema property)
                            property.Type &= ~JsonSchemaType.Null;
                    }
                }
                return Task.CompletedTask;
            });
        });

    /// <summary>
    /// The operation's security requirements, read from the authorization policy the endpoint really runs (one
    /// requirement per alternative credential; none needed for a public endpoint), and what those credentials refuse.
    /// </summary>
    private static async Task<List<Refusal>> SecureAsync(OpenApiOperation operation, IList<object> metadata, OpenApiOperationTransformerContext context,
        OpenApiDocument document)
    {
        var policies = context.ApplicationServices.GetRequiredService<IAuthorizationPolicyProvider>();
        var policy = await AuthorizationPolicy.CombineAsync(policies, metadata.OfType<IAuthorizeData>(), metadata.OfType<AuthorizationPolicy>());
        if (policy is null)
        {
            // An empty requirement: no credential is needed.
            operation.Security = [new OpenApiSecurityRequirement()];
            return [];
        }

        var credentials = policy.AuthenticationSchemes.SelectMany(scheme => ForwardedSchemes.GetValueOrDefault(scheme) ?? [scheme])
            .Select(scheme => CredentialSchemes.TryGetValue(scheme, out var credential)
                ? credential
                : throw new InvalidOperationException($"The authentication scheme '{scheme}' has no security scheme in the OpenAPI document."))
            .ToList();
        operation.Security = credentials
            .Select(credential => new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(credential.SchemeId, document)] = [] })
            .ToList();
        var refusals = credentials.SelectMany(credential => credential.Refusals).ToList();
        if (policy.Requirements.OfType<MtlsRequirement>().Any())
            refusals.AddRange(MtlsRefusals);
        // Too many refused credentials from an address, or of one credential, this minute (CredentialFailures).
        refusals.Add(Errors.TooManyRequests(60));
        return refusals;
    }

    /// <summary>Each status the refusals answer, in the envelope, with every refusal of that status as a named example.</summary>
    private static async Task AnswerAsync(OpenApiOperation operation, List<Refusal> refusals, OpenApiOperationTransformerContext context, CancellationToken ct)
    {
        var envelope = await ComponentAsync(typeof(ErrorEnvelope), context, ct);
        operation.Responses ??= new OpenApiResponses();
        foreach (var status in refusals.DistinctBy(r => (r.Status, r.Code, r.Message)).GroupBy(r => r.Status).OrderBy(g => g.Key))
        {
            var examples = new Dictionary<string, IOpenApiExample>();
            foreach (var refusal in status)
            {
                var name = refusal.Reason;
                for (var n = 2; examples.ContainsKey(name); n++)
                    name = $"{refusal.Reason}-{n}";
                examples[name] = new OpenApiExample { Summary = refusal.Message, Value = Envelope(refusal) };
            }
            var response = new OpenApiResponse
            {
                Description = ReasonPhrases.GetReasonPhrase(status.Key),
                Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new() { Schema = envelope, Examples = examples } },
            };
            if (status.Key is StatusCodes.Status429TooManyRequests or StatusCodes.Status503ServiceUnavailable)
            {
                response.Headers = new Dictionary<string, IOpenApiHeader>
                {
                    ["Retry-After"] = new OpenApiHeader { Description = "Seconds to wait before trying again.", Schema = new OpenApiSchema { Type = JsonSchemaType.Integer } },
                };
            }
            operation.Responses[status.Key.ToString(CultureInfo.InvariantCulture)] = response;
        }
    }

    /// <summary>The type's schema as a component of the document, referenced rather than repeated in each operation.</summary>
    private static async Task<IOpenApiSchema> ComponentAsync(Type type, OpenApiOperationTransformerContext context, CancellationToken ct)
    {
        var document = context.Document!;
        return document.Components?.Schemas?.ContainsKey(type.Name) == true
            ? new OpenApiSchemaReference(type.Name, document)
            : Component(type.Name, await context.GetOrCreateSchemaAsync(type, null, ct), document);
    }

    private static OpenApiSchemaReference Component(string name, OpenApiSchema schema, OpenApiDocument document)
    {
        if (document.Components?.Schemas?.ContainsKey(name) != true)
            document.AddComponent(name, schema);
        return new OpenApiSchemaReference(name, document);
    }

    private static JsonObject Envelope(Refusal refusal) => new() { ["status"] = "error", ["code"] = refusal.Code, ["message"] = refusal.Message };
}
