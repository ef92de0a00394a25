using Gatehouse.Server.Api;
using Gatehouse.Server.Api.Authentication;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Observability;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.Refusals;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Certificates.Http;

/// <summary>Server-to-server calls of a network with mTLS on must present one of its client certificates.</summary>
internal sealed class MtlsRequirement : IAuthorizationRequirement;

/// <summary>
/// A credential known but no longer usable (an expired server key, a revoked admin token) is refused only after
/// mTLS has passed (see <see cref="CredentialSubject.Pending"/>).
/// </summary>
internal sealed class UsableCredentialRequirement : IAuthorizationRequirement;

/// <summary>
/// Whether a server-to-server call that passed came with a verified client certificate of its network: always under
/// mTLS, and when mTLS is off only if it presented one that would pass. Its audit event says so (<c>mtls=true</c>),
/// which the dashboard's share of calls over mTLS counts; the metric gatehouse.server_to_server.calls counts it too.
/// </summary>
internal sealed record ClientCertificateVerdict(bool Verified)
{
    public static readonly ClientCertificateVerdict VerifiedCertificate = new(true);
    public static readonly ClientCertificateVerdict NoVerifiedCertificate = new(false);
}

/// <summary>
/// Judges the server-to-server requirements in their order: the certificate first, then the credential's own
/// refusal. The first refusal is audited and answered; nothing after it is judged. A server-key or admin-token call that
/// passes both is counted, with whether it came over mTLS.
/// </summary>
internal sealed class ServerToServerRequirementsHandler(MtlsGate gate, AuditLog audit, SecurityMetrics metrics, IOptions<GatehouseOptions> options)
    : IAuthorizationHandler
{
    public async Task HandleAsync(AuthorizationHandlerContext context)
    {
        // One pass, no LINQ: this runs on every server-to-server call (docs/benchmarks.md, change 55).
        MtlsRequirement? mtls = null;
        UsableCredentialRequirement? usable = null;
        foreach (var requirement in context.PendingRequirements)
        {
            mtls ??= requirement as MtlsRequirement;
            usable ??= requirement as UsableCredentialRequirement;
        }
        if ((mtls is null && usable is null) || context.Resource is not HttpContext http)
            return;
        if (http.Features.Get<CredentialSubject>() is not { } subject)
        {
            // Not authenticated: the credential's own refusal is the answer.
            context.Fail();
            return;
        }
        if (await JudgeAsync(http, subject, mtls is not null, usable is not null) is { } refused)
        {
            context.Fail(new AuthorizationFailureReason(this, refused.Reason));
            return;
        }
        if (mtls is not null)
            context.Succeed(mtls);
        if (usable is not null)
            context.Succeed(usable);
    }

    /// <summary>
    /// The requirements' verdict for an authenticated caller: null when the call passes (and is counted), else the
    /// first refusal, already audited and set as the request's answer.
    /// </summary>
    public async ValueTask<Refusal?> JudgeAsync(HttpContext http, CredentialSubject subject, bool mtls, bool usable)
    {
        if (mtls)
        {
            if (subject.MtlsRequired)
            {
                if (await MtlsRefusalAsync(http, subject, onlyPresented: false) is { } refused)
                    return Refuse(http, SecurityEvents.MtlsRefused(subject.Actor, subject.NetworkId, subject.UserId, refused.Reason), refused);
                http.Features.Set(ClientCertificateVerdict.VerifiedCertificate);
            }
            else if (subject.NetworkId is not null)
            {
                // mTLS off: a certificate is judged only when one was presented, and never refuses the call.
                var verified = PresentedCertificates.CanPresent(http, options.Value.Mtls)
                    && await MtlsRefusalAsync(http, subject, onlyPresented: true) is null;
                http.Features.Set(verified ? ClientCertificateVerdict.VerifiedCertificate : ClientCertificateVerdict.NoVerifiedCertificate);
            }
        }
        if (usable && subject.Pending is { } pending)
            return Refuse(http, SecurityEvents.CredentialRefused(subject.RefusedKind, subject.Actor, subject.NetworkId, subject.UserId, pending.Reason), pending);
        if (http.Features.Get<ClientCertificateVerdict>() is { } verdict && CountedCredential(subject.Credential) is { } credential)
            metrics.ServerToServerCall(credential, verdict.Verified);
        return null;
    }

    /// <summary>A bearer caller may reach an admin-or-user endpoint through these requirements: it is no server-to-server call.</summary>
    private static string? CountedCredential(string credential) => credential switch
    {
        CredentialKinds.ServerKey => ServerToServerCredentials.ServerKey,
        CredentialKinds.AdminToken => ServerToServerCredentials.AdminToken,
        _ => null,
    };

    /// <param name="onlyPresented">Without a certificate, answer at once that there is none (no check to make).</param>
    private async Task<Refusal?> MtlsRefusalAsync(HttpContext http, CredentialSubject subject, bool onlyPresented)
    {
        using var presented = await PresentedCertificates.OfAsync(http, options.Value.Mtls);
        if (onlyPresented && presented.Certificate is null)
            return Errors.MtlsNoCertificate;
        return await gate.CheckAsync(presented.Certificate, presented.OverTls, subject.NetworkId!, http.RequestAborted);
    }

    private Refusal Refuse(HttpContext http, SecurityEvent refused, Refusal refusal)
    {
        audit.Record(refused, http.Origin());
        http.Features.Set(new CredentialRefusal(refusal));
        return refusal;
    }
}
