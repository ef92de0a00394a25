using System.Collections.Concurrent;
using System.Collections.ObjectModel;
using System.Security.Claims;
using System.Security.Principal;
using System.Text.Encodings.Web;
using Gatehouse.Server.Audit;
using Gatehouse.Server.RateLimits;
using Gatehouse.Server.Refusals;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Api.Authentication;

/// <summary>What the credential check found, before HTTP: the caller, its network's mTLS switch, and any refusal.</summary>
internal readonly record struct CredentialCheck<TCaller>(TCaller? Caller, bool MtlsRequired, Refusal? Refusal)
    where TCaller : class;

/// <summary>
/// Who a request's credential names, for the audit log and the server-to-server requirements. <see cref="Pending"/>
/// holds a refusal of a credential that is known but not usable (expired, revoked), kept until mTLS has been judged:
/// without the network's certificate a caller learns nothing about the credential, not even that.
/// <see cref="Credential"/> is the scheme's kind (<see cref="CredentialKinds"/>).
/// </summary>
internal sealed record CredentialSubject(string Credential, string RefusedKind, string Actor, string? NetworkId, string? UserId, bool MtlsRequired,
    Refusal? Pending);

/// <summary>The refusal a request is answered with, set by whichever check refused it.</summary>
internal sealed record CredentialRefusal(Refusal Refusal);

/// <summary>
/// Every credential is checked in the same steps: read it from its header; refuse at once (429, no audit row, no
/// database read) an address or credential that failed too often this minute; judge it with the feature's rules;
/// count a refusal that looks like a guess; audit every refusal; on success hand the endpoint its caller. The
/// answer to a refusal is the contract's envelope, written by the challenge.
/// </summary>
internal abstract class CredentialHandler<TCaller>(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logs, UrlEncoder encoder,
    CredentialFailures failures, AuditLog audit) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logs, encoder)
    where TCaller : class
{
    /// <summary>The kind counted by <see cref="CredentialFailures"/>.</summary>
    protected abstract string CredentialKind { get; }

    /// <summary>The audit kind of this credential's refusals.</summary>
    protected abstract string RefusedKind { get; }

    /// <summary>The actor audited when the credential names nobody.</summary>
    protected virtual string AnonymousActor => "anonymous";

    /// <summary>The header the credential travels in.</summary>
    protected abstract string Header { get; }

    /// <summary>The credential as presented, empty when absent.</summary>
    protected virtual string Presented(HttpRequest request) => request.Headers[Header].ToString();

    protected abstract Task<CredentialCheck<TCaller>> CheckAsync(string presented, CancellationToken ct);

    protected abstract (string Actor, string? NetworkId, string? UserId) Describe(TCaller caller);

    /// <summary>Whether a refusal counts against the address and the credential; by default every one does.</summary>
    protected virtual bool IsGuess(Refusal refusal) => true;

    protected sealed override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = Presented(Request);
        var client = Context.Connection.RemoteIpAddress;
        if (failures.Refusal(client, CredentialKind, presented) is { } limited)
            return Refused(limited);
        var (caller, mtlsRequired, refusal) = await CheckAsync(presented, Context.RequestAborted);
        if (refusal is not null && IsGuess(refusal))
            failures.Failed(client, CredentialKind, presented);
        var (actor, networkId, userId) = caller is null ? (AnonymousActor, null, null) : Describe(caller);
        if (refusal is not null && (caller is null || !mtlsRequired))
        {
            audit.Record(SecurityEvents.CredentialRefused(RefusedKind, actor, networkId, userId, refusal.Reason), Context.Origin());
            return Refused(refusal);
        }
        Context.Features.Set(caller!);
        Context.Features.Set(new CredentialSubject(CredentialKind, RefusedKind, actor, networkId, userId, mtlsRequired, refusal));
        // Endpoints read the caller itself (CallerOf); the principal only tells authorization which scheme authenticated.
        return AuthenticatedBy.Scheme(Scheme.Name);
    }

    /// <summary>No events to raise: one shared object rather than one per request.</summary>
    protected sealed override Task<object> CreateEventsAsync() => NoEvents;

    private static readonly Task<object> NoEvents = Task.FromResult(new object());

    private AuthenticateResult Refused(Refusal refusal)
    {
        Context.Features.Set(new CredentialRefusal(refusal));
        return AuthenticateResult.Fail(refusal.Reason);
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        (Context.Features.Get<CredentialRefusal>()?.Refusal ?? Errors.Unauthorized("unauthenticated", "A credential is required.")).ExecuteAsync(Context);

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        (Context.Features.Get<CredentialRefusal>()?.Refusal ?? Errors.Forbidden).ExecuteAsync(Context);
}

/// <summary>
/// A scheme's one successful result, shared by all its requests: the principal carries nothing of the caller's (that
/// travels in the request's features), so building a principal, identity, ticket and properties for every request
/// was a tenth of a mint's allocations for nothing (docs/benchmarks.md, change 60). What everyone shares, nobody may
/// write: the identity refuses claims, the principal identities, the properties items and parameters.
/// </summary>
internal static class AuthenticatedBy
{
    private static readonly ConcurrentDictionary<string, AuthenticateResult> Results = new(StringComparer.Ordinal);

    public static AuthenticateResult Scheme(string name) => Results.GetOrAdd(name, static scheme => AuthenticateResult.Success(new AuthenticationTicket(
        new SharedPrincipal(new SharedIdentity(scheme)),
        new AuthenticationProperties(ReadOnlyDictionary<string, string?>.Empty, ReadOnlyDictionary<string, object?>.Empty),
        scheme)));

    private sealed class SharedIdentity(string scheme) : ClaimsIdentity(scheme)
    {
        public override void AddClaim(Claim claim) => throw Shared();
        public override void AddClaims(IEnumerable<Claim?> claims) => throw Shared();
        public override void RemoveClaim(Claim? claim) => throw Shared();
        public override bool TryRemoveClaim(Claim? claim) => throw Shared();
    }

    private sealed class SharedPrincipal(IIdentity identity) : ClaimsPrincipal(identity)
    {
        public override void AddIdentity(ClaimsIdentity identity) => throw Shared();
        public override void AddIdentities(IEnumerable<ClaimsIdentity> identities) => throw Shared();
    }

    private static InvalidOperationException Shared() =>
        new("Every request of this scheme shares this principal: the caller is in the request's features (CallerOf), not in claims.");
}

internal static class CallerOfRequest
{
    /// <summary>The caller its credential scheme authenticated; an endpoint asks only for the one its policy requires.</summary>
    public static TCaller CallerOf<TCaller>(this HttpContext http)
        where TCaller : class =>
        http.Features.Get<TCaller>() ?? throw new InvalidOperationException($"No {typeof(TCaller).Name}: the endpoint's policy does not authenticate one.");
}
