using Gatehouse.Server.AdminTokens.Http;
using Gatehouse.Server.Api;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.AuthTokens.Http;
using Gatehouse.Server.Certificates;
using Gatehouse.Server.Console;
using Gatehouse.Server.Observability;
using Gatehouse.Server.Operations;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.ResourceServers;
using Gatehouse.Server.Sessions.Http;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users.Http;
using Gatehouse.Server.Visitors.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Gatehouse.Server;

/// <summary>The web application: built here so tests host exactly what production runs.</summary>
internal static class GatehouseApp
{
    private const string SdkCors = "sdk";

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // appsettings.json sits beside the binary; ./data stays relative to where the server is started.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            // Configuration is read once, at start, where it is validated (options are never re-read), so
            // appsettings.json is not watched: watching it watched the whole folder beside the binary with every
            // subfolder, and a server started from that folder woke a watcher thread at each write to ./data
            // (docs/benchmarks.md, change 33).
            Args = [.. args, "--hostBuilder:reloadConfigOnChange=false"],
            // Razor Pages are found in the application's assembly; named here so a test host finds them too.
            ApplicationName = typeof(GatehouseApp).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
            WebRootPath = Path.Combine(AppContext.BaseDirectory, "wwwroot"),
        });
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = 1024 * 1024;
            kestrel.ConfigureHttpsDefaults(https =>
            {
                https.ServerCertificateSelector = (_, _) => kestrel.ApplicationServices.GetRequiredService<ServerCertificate>().Certificate;
                // TLS asks for a client certificate and accepts any: the mTLS gate judges it per request, against
                // the network's own certificates and the server's clock.
                https.ClientCertificateMode = ClientCertificateMode.AllowCertificate;
                https.ClientCertificateValidation = (_, _, _) => true;
            });
        });
        builder.Services.AddGatehouseCore();
        builder.Services.AddGatehouseCredentials();
        builder.Services.AddGatehouseConsole();
        builder.Services.AddGatehouseObservability();
        builder.Services.AddGatehouseRateLimits();
        builder.Services.AddSingleton<StartupGate>();
        // The server's alone: an operator command must not prune beside (or before) its own migrations.
        builder.Services.AddSingleton<Retention.RetentionService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Retention.RetentionService>());
        builder.Services.AddHostedService<SigningKeyWatch>();
        // The server's alone: an operator command runs for moments, so its caches read through (CommittedWrites).
        builder.Services.AddHostedService<WriteNotifications>();
        // The server's alone too: an operator command exports no metrics.
        builder.Services.AddHostedService<GovernanceMetrics>();
        builder.Services.AddSingleton<ResourceServers.IntrospectionTally>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ResourceServers.IntrospectionTally>());
        // Each feature's own source-generated contracts, for the OpenAPI document's schemas; endpoints name their type info.
        builder.Services.ConfigureHttpJsonOptions(json =>
        {
            foreach (var contracts in new System.Text.Json.Serialization.Metadata.IJsonTypeInfoResolver[]
                     {
                         ApiJson.Default, SessionJson.Default, AuthTokenJson.Default, AdminApiJson.Default, UserJson.Default, JwksJson.Default,
                         ObservabilityJson.Default, ResourceServerJson.Default,
                     })
            {
                json.SerializerOptions.TypeInfoResolverChain.Add(contracts);
            }
            // The API reads no number and writes every number as one: the document says "integer", not "integer or string".
            json.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
        });
        // The web SDK calls from the customer's own pages. It sends no cookies, so any origin may call.
        builder.Services.AddCors(cors => cors.AddPolicy(SdkCors, policy => policy
            .AllowAnyOrigin()
            .WithHeaders("x-api-key", "authorization", "content-type", "set-access-token-cookie")
            .WithMethods("GET", "POST", "DELETE")
            .SetPreflightMaxAge(TimeSpan.FromMinutes(10))));
        configure?.Invoke(builder);
        builder.Services.WithoutKeyRingPreload();

        var app = builder.Build();
        app.UseClientAddresses();
        app.UseEnvelopeForEveryError();
        app.Use(app.Services.GetRequiredService<StartupGate>().HandleAsync);
        app.UseStaticFiles();
        app.UseRateLimiter();
        app.UseCors();
        // The console's own headers first, so its sign-in redirects and refusals carry them too.
        app.UseGatehouseConsole();
        // There is no default scheme: authentication reads no credential here, and authorization authenticates each
        // endpoint with the schemes its policy names, so a request whose endpoint asks for none runs no credential code.
        app.UseAuthentication();
        app.UseAuthorization();

        var clientApi = app.MapGroup("").RequireCors(SdkCors);
        var bearerApi = clientApi.MapGroup("").RequireAuthorization(Credentials.Policies.User);
        clientApi.MapSessionEndpoints();
        clientApi.MapVisitorEndpoints();
        bearerApi.MapCurrentSessionEndpoint();
        bearerApi.MapUserEndpoints();
        app.MapAuthTokenEndpoints();
        app.MapBackendSessionEndpoints();
        app.MapAdminApiEndpoints();
        app.MapResourceServerEndpoints(SdkCors);
        var wellKnown = app.MapGroup("/.well-known").WithTags(ApiTags.PublicKeys);
        wellKnown.MapGet("/jwks.json", (SigningKeys keys) => TypedResults.Json(keys.Jwks, JwksJson.Default.JsonWebKeySetResponse))
            .WithName("getJwks")
            .WithSummary("The ES256 public keys that verify access and auth tokens (RFC 7517)")
            .Produces<JsonWebKeySetResponse>(200);
        wellKnown.MapGet("/gatehouse-client-ca.pem", (CertificateAuthority authority) =>
                TypedResults.Text(authority.CertificatePem, "application/x-pem-file"))
            .WithName("getClientCertificateAuthority")
            .WithSummary("The certificate authority that issues client certificates for mTLS")
            .Produces<string>(200, "application/x-pem-file");
        app.MapGatehouseObservability();
        return app;
    }

    /// <summary>Before the first request: schema up to date, signing keys loaded, first-start secrets printed.</summary>
    public static async Task InitializeAsync(WebApplication app, TextWriter output, bool outputIsTerminal = true)
    {
        await StorageSetup.MigrateAsync(app.Services, async ct =>
        {
            await app.Services.GetRequiredService<SigningKeys>().LoadAsync(ct);
            await app.Services.GetRequiredService<CertificateAuthority>().LoadAsync(ct);
            await Bootstrap.RunAsync(app.Services, output, outputIsTerminal, ct);
        });
        app.Services.GetRequiredService<StartupGate>().Open();
    }

    /// <summary>
    /// <see cref="InitializeAsync"/> for a server already listening: tried again while the database does not answer
    /// (the node answers 503 meanwhile, see <see cref="StartupGate"/>); any other failure is thrown.
    /// </summary>
    public static Task InitializeWhenDatabaseAnswersAsync(WebApplication app, TextWriter output, bool outputIsTerminal, CancellationToken ct) =>
        app.Services.GetRequiredService<StartupGate>().RetryAsync(() => InitializeAsync(app, output, outputIsTerminal), ct);
}
