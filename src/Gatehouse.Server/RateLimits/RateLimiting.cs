using System.Globalization;
using System.Threading.RateLimiting;
using Gatehouse.Server.AdminTokens;
using Gatehouse.Server.Api;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Networks;
using Gatehouse.Server.ServerKeys;
using Gatehouse.Server.Tokens;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.RateLimits;

/// <summary>
/// Abuse limits, each a fixed one-minute window per key, counted per node: sessions and refreshes per API key
/// and per client address, auth tokens per server key, admin API calls per admin token, console sign-ins per
/// address (per account, the lockout applies). Over a limit: 429, the envelope, and Retry-After.
/// Secrets are never kept as partition keys, only their digests.
/// </summary>
public static class RateLimiting
{
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
                    http => IsClientLogin(http) ? http.Request.Headers[ApiKeys.Header].ToString() : null),
                PerMinute("address", limits.SessionsPerAddressPerMinute,
                    http => IsClientLogin(http) ? Address(http) : null),
                PerMinute("server-key", limits.AuthTokensPerServerKeyPerMinute,
                    http => IsMint(http) ? Digest(http.Request.Headers[ServerKeyService.Header].ToString()) : null),
                PerMinute("admin-token", limits.AdminCallsPerTokenPerMinute,
                    http => http.Request.Headers.TryGetValue(AdminTokenService.Header, out var token) ? Digest(token.ToString()) : null),
                PerMinute("sign-in", limits.ConsoleSignInsPerAddressPerMinute,
                    http => HttpMethods.IsPost(http.Request.Method) && http.Request.Path.Equals("/console/signin", StringComparison.OrdinalIgnoreCase) ? Address(http) : null));
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

    private static bool IsClientLogin(HttpContext http) =>
        HttpMethods.IsPost(http.Request.Method) && http.Request.Path.StartsWithSegments("/api", out var rest)
        && (rest.Value is "/v3/sessions" or "/v4/sessions" or "/v5/sessions" or "/v4/sessions/refresh");

    private static bool IsMint(HttpContext http) =>
        http.Request.Path.Equals("/api/v3/authentication/token", StringComparison.OrdinalIgnoreCase)
        || http.Request.Path.Equals("/api/v4/authentication/token", StringComparison.OrdinalIgnoreCase);

    private static string Address(HttpContext http) => http.Connection.RemoteIpAddress?.ToString() ?? "unknown";

    private static string? Digest(string secret) => secret.Length == 0 ? null : Secrets.Digest(secret);

    private static async ValueTask RejectAsync(OnRejectedContext context, CancellationToken ct)
    {
        var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(60);
        await Errors.TooManyRequests(Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds))).ExecuteAsync(context.HttpContext);
    }
}

/// <summary>
/// Refreshes per session: the one limit that needs the session, so it is checked once the refresh token has been
/// matched to one, not in the middleware. Counted per node, like the others.
/// </summary>
public sealed class SessionRefreshLimiter(IOptions<GatehouseOptions> options) : IDisposable
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
