using System.Text.Encodings.Web;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.Audit;
using Gatehouse.Server.RateLimits;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Networks.Http;

/// <summary>The public API key an app sends with <c>x-api-key</c>: it names the network, nothing more.</summary>
internal sealed class ApiKeyHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logs, UrlEncoder encoder,
    CredentialFailures failures, AuditLog audit, ApiKeys apiKeys)
    : CredentialHandler<Network>(options, logs, encoder, failures, audit)
{
    public const string HeaderName = "x-api-key";

    protected override string Header => HeaderName;
    protected override string CredentialKind => CredentialKinds.ApiKey;
    protected override string RefusedKind => AuditKinds.SessionRefused;
    protected override string AnonymousActor => "api-key";

    protected override async Task<CredentialCheck<Network>> CheckAsync(string presented, CancellationToken ct)
    {
        var (network, refusal) = await apiKeys.ResolveAsync(presented, ct);
        return new(network, false, refusal);
    }

    protected override (string Actor, string? NetworkId, string? UserId) Describe(Network caller) => ("api-key", caller.Id, null);
}
