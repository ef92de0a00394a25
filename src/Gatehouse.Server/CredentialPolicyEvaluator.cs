using System.Runtime.CompilerServices;
using System.Security.Claims;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.Certificates.Http;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Infrastructure;
using Microsoft.AspNetCore.Authorization.Policy;

namespace Gatehouse.Server;

/// <summary>
/// Evaluates the API's credential policies, those of one of Gatehouse's own schemes with only the requirements
/// <see cref="GatehouseCredentials"/> gives them, in the steps the framework's <see cref="PolicyEvaluator"/> takes, without
/// its general dispatch: the scheme's handler is called directly (no authentication service, handler provider, claims
/// transformation or principal merge), and the requirements are judged without a handler context (the
/// authenticated-user requirement is met by the authentication itself, <see cref="ServerToServerRequirementsHandler"/>
/// judges the rest). Those steps were about a tenth of a mint's CPU and a quarter of its allocations
/// (docs/benchmarks.md, changes 59 and 61). The outcomes are the framework's:
/// a credential that does not authenticate is a challenge, an authenticated caller that fails a requirement a forbid.
/// Every other policy (the console's, the admin-token-or-bearer forwarding scheme) goes to the framework unchanged.
/// </summary>
internal sealed class CredentialPolicyEvaluator(IAuthenticationSchemeProvider schemes, ServerToServerRequirementsHandler serverToServer)
    : IPolicyEvaluator
{
    /// <summary>How a policy is evaluated, decided once per policy object (the authorization middleware caches one per endpoint).</summary>
    private sealed record Plan(AuthenticationScheme Scheme, bool Mtls, bool Usable);

    /// <summary>Null: the framework evaluates the policy.</summary>
    private readonly ConditionalWeakTable<AuthorizationPolicy, Plan?> _plans = [];

    public async Task<AuthenticateResult> AuthenticateAsync(AuthorizationPolicy policy, HttpContext context)
    {
        if (await PlanOfAsync(policy) is not { } plan)
            return await FrameworkEvaluator(context).AuthenticateAsync(policy, context);

        // As the framework's handler provider: the container's registration (GatehouseCredentials), else built here.
        var handler = (IAuthenticationHandler)ActivatorUtilities.GetServiceOrCreateInstance(context.RequestServices, plan.Scheme.HandlerType);
        await handler.InitializeAsync(plan.Scheme, context);
        var result = await handler.AuthenticateAsync();
        if (result.Succeeded)
        {
            context.User = result.Principal;
            return result;
        }
        // As the framework: a policy whose schemes all failed leaves an anonymous user and no result.
        context.User = new ClaimsPrincipal(new ClaimsIdentity());
        return AuthenticateResult.NoResult();
    }

    public async Task<PolicyAuthorizationResult> AuthorizeAsync(AuthorizationPolicy policy, AuthenticateResult authenticationResult, HttpContext context,
        object? resource)
    {
        if (await PlanOfAsync(policy) is not { } plan)
            return await FrameworkEvaluator(context).AuthorizeAsync(policy, authenticationResult, context, resource);

        // Not authenticated: every one of these policies requires an authenticated user, so it is a challenge, as the
        // framework's evaluation of the same requirements ends. Authenticated, that requirement is met.
        if (!authenticationResult.Succeeded)
            return PolicyAuthorizationResult.Challenge();
        if (!plan.Mtls && !plan.Usable)
            return PolicyAuthorizationResult.Success();
        if (context.Features.Get<CredentialSubject>() is not { } subject)
            return PolicyAuthorizationResult.Forbid(AuthorizationFailure.ExplicitFail());
        return await serverToServer.JudgeAsync(context, subject, plan.Mtls, plan.Usable) is { } refused
            ? PolicyAuthorizationResult.Forbid(AuthorizationFailure.Failed([new AuthorizationFailureReason(serverToServer, refused.Reason)]))
            : PolicyAuthorizationResult.Success();
    }

    private static PolicyEvaluator FrameworkEvaluator(HttpContext context) => context.RequestServices.GetRequiredService<PolicyEvaluator>();

    private async ValueTask<Plan?> PlanOfAsync(AuthorizationPolicy policy)
    {
        if (_plans.TryGetValue(policy, out var plan))
            return plan;
        plan = await DecideAsync(policy);
        return _plans.GetValue(policy, _ => plan);
    }

    /// <summary>One of Gatehouse's own schemes: its handler is a <see cref="CredentialHandler{TCaller}"/>.</summary>
    private static bool IsCredentialHandler(Type handler)
    {
        for (var type = handler.BaseType; type is not null; type = type.BaseType)
        {
            if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(CredentialHandler<>))
                return true;
        }
        return false;
    }

    private async Task<Plan?> DecideAsync(AuthorizationPolicy policy)
    {
        if (policy.AuthenticationSchemes is not [var name] || await schemes.GetSchemeAsync(name) is not { } scheme || !IsCredentialHandler(scheme.HandlerType))
            return null;
        bool mtls = false, usable = false, authenticated = false;
        foreach (var requirement in policy.Requirements)
        {
            switch (requirement)
            {
                case DenyAnonymousAuthorizationRequirement:
                    authenticated = true;
                    continue;
                case MtlsRequirement:
                    mtls = true;
                    continue;
                case UsableCredentialRequirement:
                    usable = true;
                    continue;
                default:
                    return null;
            }
        }
        // Only an authenticated user may pass: a policy without that requirement is not one of these.
        return authenticated ? new Plan(scheme, mtls, usable) : null;
    }
}
