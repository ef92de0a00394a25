using Gatehouse.Server.AdminTokens.Http;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.Certificates.Http;
using Gatehouse.Server.Networks.Http;
using Gatehouse.Server.ServerKeys.Http;
using Gatehouse.Server.Sessions.Http;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Gatehouse.Server;

/// <summary>Each credential's scheme and each policy, wired once (the names live in <see cref="Credentials"/>).</summary>
internal static class GatehouseCredentials
{
    public static IServiceCollection AddGatehouseCredentials(this IServiceCollection services)
    {
        // Registered, so each request's handler comes from the container's compiled factory rather than
        // ActivatorUtilities' reflection (the mint and bearer paths run one per request).
        services.AddTransient<ApiKeyHandler>();
        services.AddTransient<ServerKeyHandler>();
        services.AddTransient<AdminTokenHandler>();
        services.AddTransient<BearerHandler>();
        services.AddAuthentication()
            .AddScheme<AuthenticationSchemeOptions, ApiKeyHandler>(Credentials.ApiKey, null)
            .AddScheme<AuthenticationSchemeOptions, ServerKeyHandler>(Credentials.ServerKey, null)
            .AddScheme<AuthenticationSchemeOptions, AdminTokenHandler>(Credentials.AdminToken, null)
            .AddScheme<AuthenticationSchemeOptions, BearerHandler>(Credentials.Bearer, null)
            .AddPolicyScheme(Credentials.AdminTokenOrBearer, null, policy => policy.ForwardDefaultSelector =
                http => http.Request.Headers.ContainsKey(AdminTokenHandler.HeaderName) ? Credentials.AdminToken : Credentials.Bearer);
        services.AddAuthorizationBuilder()
            .AddPolicy(Credentials.Policies.App, policy => policy.AddAuthenticationSchemes(Credentials.ApiKey).RequireAuthenticatedUser())
            .AddPolicy(Credentials.Policies.User, policy => policy.AddAuthenticationSchemes(Credentials.Bearer).RequireAuthenticatedUser())
            .AddPolicy(Credentials.Policies.ServerToServer, policy => ServerToServer(policy, Credentials.ServerKey))
            .AddPolicy(Credentials.Policies.Admin, policy => ServerToServer(policy, Credentials.AdminToken))
            // A bearer caller has no mTLS switch and no pending refusal: the requirements pass it by.
            .AddPolicy(Credentials.Policies.AdminOrUser, policy => ServerToServer(policy, Credentials.AdminTokenOrBearer));
        services.AddSingleton<ServerToServerRequirementsHandler>();
        services.AddSingleton<IAuthorizationHandler>(sp => sp.GetRequiredService<ServerToServerRequirementsHandler>());
        // The API's credential policies evaluated directly; every other policy by the framework's evaluator.
        services.AddTransient<PolicyEvaluator>();
        services.Replace(ServiceDescriptor.Singleton<IPolicyEvaluator, CredentialPolicyEvaluator>());
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, RefusalResultHandler>();
        return services;
    }

    private static void ServerToServer(AuthorizationPolicyBuilder policy, string scheme) => policy
        .AddAuthenticationSchemes(scheme)
        .RequireAuthenticatedUser()
        .AddRequirements(new MtlsRequirement(), new UsableCredentialRequirement());
}

