using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;

namespace Gatehouse.Server.Api.Authentication;

/// <summary>
/// The names of the contract's credentials, each an authentication scheme, and of the policies endpoints declare
/// (registered in <c>GatehouseCredentials</c>). There is no default scheme: a request is authenticated only by the
/// schemes its endpoint's policy names, so a mint never looks for a console cookie and a console page never for a
/// server key.
/// </summary>
internal static class Credentials
{
    public const string ApiKey = "api-key";
    public const string ServerKey = "server-key";
    public const string AdminToken = "admin-token";
    public const string Bearer = "bearer";

    /// <summary><c>DELETE /api/v4/sessions</c>: an admin token when one is sent, else the user's bearer token (the contract's one path, two callers).</summary>
    public const string AdminTokenOrBearer = "admin-token-or-bearer";

    /// <summary>Policies, by what an endpoint needs.</summary>
    public static class Policies
    {
        public const string App = "app";
        public const string User = "user";
        public const string ServerToServer = "server-to-server";
        public const string Admin = "admin";
        public const string AdminOrUser = "admin-or-user";
    }
}

/// <summary>A refused credential is answered with its refusal in the contract's envelope; anything else as ASP.NET Core would.</summary>
internal sealed class RefusalResultHandler : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (!authorizeResult.Succeeded && context.Features.Get<CredentialRefusal>() is { } refused)
            return refused.Refusal.ExecuteAsync(context);
        return _default.HandleAsync(next, context, policy, authorizeResult);
    }
}
