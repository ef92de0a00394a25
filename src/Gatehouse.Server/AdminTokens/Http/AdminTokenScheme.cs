using System.Text.Encodings.Web;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.Audit;
using Gatehouse.Server.RateLimits;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.AdminTokens.Http;

/// <summary>An admin's token for the admin API, sent with <c>x-admin-token</c>; every use checks the token and its admin as last committed.</summary>
internal sealed class AdminTokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logs, UrlEncoder encoder,
    CredentialFailures failures, AuditLog audit, AdminTokenService adminTokens)
    : CredentialHandler<AdminCaller>(options, logs, encoder, failures, audit)
{
    public const string HeaderName = "x-admin-token";

    protected override string Header => HeaderName;
    protected override string CredentialKind => CredentialKinds.AdminToken;
    protected override string RefusedKind => AuditKinds.AdminTokenRefused;

    protected override async Task<CredentialCheck<AdminCaller>> CheckAsync(string presented, CancellationToken ct)
    {
        var (caller, mtlsRequired, refusal) = await adminTokens.AuthenticateAsync(presented, ct);
        return new(caller, mtlsRequired, refusal);
    }

    protected override (string Actor, string? NetworkId, string? UserId) Describe(AdminCaller caller) => (caller.Actor, caller.NetworkId, null);
}
