using System.Text.Encodings.Web;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.Audit;
using Gatehouse.Server.RateLimits;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.ServerKeys.Http;

/// <summary>The customer's backend's server key, sent with <c>x-server-key</c>.</summary>
internal sealed class ServerKeyHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logs, UrlEncoder encoder,
    CredentialFailures failures, AuditLog audit, ServerKeyService serverKeys)
    : CredentialHandler<ServerKey>(options, logs, encoder, failures, audit)
{
    public const string HeaderName = "x-server-key";

    protected override string Header => HeaderName;
    protected override string CredentialKind => CredentialKinds.ServerKey;
    protected override string RefusedKind => AuditKinds.ServerKeyRefused;

    protected override async Task<CredentialCheck<ServerKey>> CheckAsync(string presented, CancellationToken ct)
    {
        var (key, mtlsRequired, refusal) = await serverKeys.AuthenticateAsync(presented, ct);
        return new(key, mtlsRequired, refusal);
    }

    protected override (string Actor, string? NetworkId, string? UserId) Describe(ServerKey caller) => ($"server-key:{caller.Id}", caller.NetworkId, null);
}
