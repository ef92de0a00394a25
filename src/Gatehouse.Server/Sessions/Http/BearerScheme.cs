using System.Text.Encodings.Web;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.Audit;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.Refusals;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Sessions.Http;

/// <summary>A user's access token, sent as <c>Authorization: Bearer</c>.</summary>
internal sealed class BearerHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logs, UrlEncoder encoder,
    CredentialFailures failures, AuditLog audit, SessionAccess sessions)
    : CredentialHandler<Caller>(options, logs, encoder, failures, audit)
{
    private const string Prefix = "Bearer ";

    protected override string CredentialKind => CredentialKinds.Bearer;
    protected override string RefusedKind => AuditKinds.AccessRefused;
    protected override string AnonymousActor => "bearer";

    protected override string Header => "Authorization";

    protected override async Task<CredentialCheck<Caller>> CheckAsync(string presented, CancellationToken ct)
    {
        var token = presented.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase) ? presented[Prefix.Length..].Trim() : null;
        var (caller, refusal) = await sessions.CheckAsync(token, ct);
        return new(caller, false, refusal);
    }

    protected override (string Actor, string? NetworkId, string? UserId) Describe(Caller caller) => ("bearer", caller.NetworkId, caller.User.UserId);

    /// <summary>A token that is merely expired or whose session ended is what an honest client sends; garbage is not.</summary>
    protected override bool IsGuess(Refusal refusal) => refusal == Errors.AccessTokenInvalid || refusal == Errors.BearerMissing;
}
