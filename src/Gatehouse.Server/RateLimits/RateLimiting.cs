using System.Threading.RateLimiting;
using Gatehouse.Server.AdminTokens.Http;
using Gatehouse.Server.Api;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Networks;
using Gatehouse.Server.ServerKeys;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Networks.Http;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.ServerKeys.Http;
using Gatehouse.Server.Tokens;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.RateLimits;

/// <summary>What a limited endpoint is, for the limits that apply to it.</summary>
internal enum LimitedAs
{
    /// <summary>A client login or refresh: limited per API key and per client address.</summary>
    ClientLogin,

    /// <summary>An auth-token mint: limited per server key.</summary>
    Mint,

    /// <summary>The console's sign-in form (its POST): limited per client address.</summary>
    ConsoleSignIn,

    /// <summary>Token introspection by a resource server: limited per server key.</summary>
    Introspection,
}

/// <summary>Endpoint metadata naming the limits an endpoint is under (on a Razor page, an attribute of its model).</summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class RateLimitedAttribute(LimitedAs kind) : Attribute
{
    public LimitedAs Kind { get; } = kind;
}

/// <summary>
/// Abuse limits, each a fixed one-minute window per key, counted per node: sessions and refreshes per API key
/// and per client address, auth tokens per server key, admin API calls per admin token, console sign-ins per
/// address (per account, the lockout applies). Over a limit: 429, the envelope, and Retry-After.
/// Limits attach to the endpoint routing matched (its <see cref="RateLimitedAttribute"/>), never to a spelling of
/// the path, so another case, a trailing slash or percent-encoding reaches the same limit as the endpoint.
/// Secrets are never kept as partition keys, only their digests.
/// </summary>
internal static class RateLimiting
{
    public static TBuilder RateLimited<TBuilder>(this TBuilder endpoints, LimitedAs kind) where TBuilder : IEndpointConventionBuilder =>
        endpoints.WithMetadata(new RateLimitedAttribute(kind));

    public static IServiceCollection AddGatehouseRateLimits(this IServiceCollection services)
    {
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<IOptions<GatehouseOptions>>((limiter, gatehouse) =>
        {
            var limits = gatehouse.Value.RateLimits;
            limiter.OnRejected = RejectAsync;
            if (!limits.Enabled)
                return;
            limiter.GlobalLimiter = PartitionedRateLimiter.CreateChained(
                PerMinute("api-key", limits.SessionsPerApiKeyPerMinute,
                    http => Kind(http) == LimitedAs.ClientLogin ? http.Request.Headers[ApiKeyHandler.HeaderName].ToString() : null),
                PerMinute("address", limits.SessionsPerAddressPerMinute,
                    http => Kind(http) == LimitedAs.ClientLogin ? Address(http) : null),
                PerMinute("server-key", limits.AuthTokensPerServerKeyPerMinute,
                    http => Kind(http) == LimitedAs.Mint ? Digest(http.Request.Headers[ServerKeyHandler.HeaderName].ToString()) : null),
                PerMinute("introspection", limits.IntrospectionsPerServerKeyPerMinute,
                    http => Kind(http) == LimitedAs.Introspection ? Digest(http.Request.Headers[ServerKeyHandler.HeaderName].ToString()) : null),
                PerMinute("admin-token", limits.AdminCallsPerTokenPerMinute,
                    http => http.Request.Headers.TryGetValue(AdminTokenHandler.HeaderName, out var token) ? Digest(token.ToString()) : null),
                PerMinute("sign-in", limits.ConsoleSignInsPerAddressPerMinute,
                    http => Kind(http) == LimitedAs.ConsoleSignIn && HttpMethods.IsPost(http.Request.Method) ? Address(http) : null));
        });
        return services;
    }

    private static PartitionedRateLimiter<HttpContext> PerMinute(string name, int permits, Func<HttpContext, string?> key) =>
        PartitionedRateLimiter.Create<HttpContext, string>(http => key(http) is { } partition
            ? RateLimitPartition.GetFixedWindowLimiter($"{name}:{partition}", _ => new FixedWindowRateLimiterOptions
            {
                PermitLimit = permits,
                Window = TimeSpan.FromMinutes(1),
                QueueLimit = 0,
            })
            : RateLimitPartition.GetNoLimiter("unlimited"));

    private static LimitedAs? Kind(HttpContext http) => http.GetEndpoint()?.Metadata.GetMetadata<RateLimitedAttribute>()?.Kind;

    private static string Address(HttpContext http) => http.Connection.RemoteIpAddress?.ToString() ?? "unknown";

    private static string? Digest(string secret) => secret.Length == 0 ? null : Secrets.Digest(secret);

    /// <summary>
    /// 429 with Retry-After, and a refusal in the audit log, so the dashboard counts rate limits apart from bad
    /// credentials; a flood of them is summed up by the audit log like any other refusal. The network is named when the
    /// limited credential is one this node already keeps in memory: a rejection never reads the database, or a flood
    /// of 429s would cost what the limit is there to spare (with PostgreSQL, which keeps none, it is never named).
    /// </summary>
    private static async ValueTask RejectAsync(OnRejectedContext context, CancellationToken ct)
    {
        var http = context.HttpContext;
        var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(60);
        var headers = http.Request.Headers;
        var (limit, actor, networkId) = Kind(http) switch
        {
            LimitedAs.ClientLogin => ("client_login", "api-key",
                http.RequestServices.GetRequiredService<ApiKeys>().Peek(headers[ApiKeyHandler.HeaderName].ToString())?.Id),
            LimitedAs.Introspection => ("introspection", "server-key",
                http.RequestServices.GetRequiredService<ServerKeyCache>().NetworkOf(headers[ServerKeyHandler.HeaderName].ToString())),
            LimitedAs.Mint => ("auth_token_mint", "server-key",
                http.RequestServices.GetRequiredService<ServerKeyCache>().NetworkOf(headers[ServerKeyHandler.HeaderName].ToString())),
            LimitedAs.ConsoleSignIn => ("console_sign_in", "anonymous", null),
            _ => ("admin_api", "admin-token", null),
        };
        http.RequestServices.GetRequiredService<AuditLog>().Record(SecurityEvents.RateLimited(limit, actor, networkId), http.Origin());
        await Errors.TooManyRequests(Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds))).ExecuteAsync(http);
    }
}

/// <summary>
/// Refreshes per session: the one limit that needs the session, so it is checked once the refresh token has been
/// matched to one and found unused and renewable (a replayed token ends its session whatever the limit), not in the
/// middleware. Counted per node, like the others.
/// </summary>
internal sealed class SessionRefreshLimiter(IOptions<GatehouseOptions> options) : IDisposable
{
    private readonly PartitionedRateLimiter<Guid> _limiter = PartitionedRateLimiter.Create<Guid, Guid>(session =>
        RateLimitPartition.GetFixedWindowLimiter(session, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = options.Value.RateLimits.RefreshesPerSessionPerMinute,
            Window = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
        }));

    public bool TryAcquire(Guid sessionId)
    {
        if (!options.Value.RateLimits.Enabled)
            return true;
        using var lease = _limiter.AttemptAcquire(sessionId);
        return lease.IsAcquired;
    }

    public void Dispose() => _limiter.Dispose();
}
