using System.Text.Json.Nodes;
using Gatehouse.Server.AdminTokens.Http;
using Gatehouse.Server.Api;
using Gatehouse.Server.AuthTokens.Http;
using Gatehouse.Server.Sessions.Http;
using Microsoft.OpenApi;

namespace Gatehouse.Server.Observability;

/// <summary>
/// Documents a JSON request body without the routing constraint that <c>Accepts</c> adds: the endpoints read
/// their bodies themselves so that a wrong content type answers 400 in the envelope, not a bare 415.
/// </summary>
internal sealed record JsonBodyMetadata(Type Type);

/// <summary>The OpenAPI 3.1 document of the public API, generated from the endpoints, with examples.</summary>
internal static class ApiDocumentation
{
    private static readonly Dictionary<Type, JsonNode> Examples = new()
    {
        [typeof(ErrorEnvelope)] = new JsonObject { ["status"] = "error", ["code"] = 400100, ["message"] = "The API key is not known to this server." },
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
    // not a serializer error); this is what is really required.
    private static readonly Dictionary<Type, string[]> RequiredFields = new()
    {
        [typeof(SessionRequest)] = ["userId", "deviceId"],
        [typeof(DeviceInfo)] = [],
        [typeof(RefreshRequest)] = ["refreshToken"],
        [typeof(AuthTokenRequest)] = ["userId"],
        [typeof(UserIdRequest)] = ["userId"],
    };

    public static RouteHandlerBuilder AcceptsJson<T>(this RouteHandlerBuilder endpoint) => endpoint.WithMetadata(new JsonBodyMetadata(typeof(T)));

    public static IServiceCollection AddGatehouseOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(openApi =>
        {
            // The console's pages and the operational endpoints are not part of the public API.
            openApi.ShouldInclude = description => description.RelativePath is { } path && (path.StartsWith("api/", StringComparison.Ordinal) || path.StartsWith(".well-known/", StringComparison.Ordinal));
            openApi.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "Gatehouse API";
                document.Info.Description = "The social.plus-compatible security API. Every error answers the envelope " +
                    "{\"status\":\"error\",\"code\":<number>,\"message\":\"…\"}; see docs/api.md for codes and limits.";
                return Task.CompletedTask;
            });
            openApi.AddOperationTransformer(async (operation, context, ct) =>
            {
                if (context.Description.ActionDescriptor.EndpointMetadata.OfType<JsonBodyMetadata>().FirstOrDefault() is not { } body)
                    return;
                var schema = await context.GetOrCreateSchemaAsync(body.Type, null, ct);
                operation.RequestBody = new OpenApiRequestBody
                {
                    Required = true,
                    Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new() { Schema = schema } },
                };
            });
            openApi.AddSchemaTransformer((schema, context, _) =>
            {
                if (Examples.TryGetValue(context.JsonTypeInfo.Type, out var example))
                    schema.Examples = [example.DeepClone()];
                if (RequiredFields.TryGetValue(context.JsonTypeInfo.Type, out var required))
                    schema.Required = new HashSet<string>(required, StringComparer.Ordinal);
                return Task.CompletedTask;
            });
        });
}
