using System.Net;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Api;

/// <summary>The address of the machine that opened the connection, kept before X-Forwarded-For may replace it.</summary>
internal sealed record PeerAddress(IPAddress? Address);

/// <summary>
/// Who the client is, for per-address limits and the audit log. Behind a configured load balancer
/// (<c>Gatehouse:ForwardedHeaders:TrustedProxies</c>) ASP.NET Core's forwarded-headers middleware takes the client
/// address from X-Forwarded-For, walking back only through the listed proxies; from anyone else the header is
/// ignored, so a client cannot choose the address it is limited as. The peer itself stays readable for the checks
/// that must judge the connection (a forwarded client certificate is believed only from a listed proxy).
/// </summary>
internal static class ClientAddresses
{
    public static IApplicationBuilder UseClientAddresses(this WebApplication app)
    {
        app.Use((http, next) =>
        {
            http.Features.Set(new PeerAddress(http.Connection.RemoteIpAddress));
            return next(http);
        });
        var proxies = app.Services.GetRequiredService<IOptions<GatehouseOptions>>().Value.ForwardedHeaders.TrustedProxies;
        if (proxies.Count == 0)
            return app;
        var forwarded = new ForwardedHeadersOptions { ForwardedHeaders = ForwardedHeaders.XForwardedFor, ForwardLimit = null };
        // The defaults trust loopback; only the configured proxies are trusted here.
        forwarded.KnownIPNetworks.Clear();
        forwarded.KnownProxies.Clear();
        foreach (var proxy in proxies)
            forwarded.KnownProxies.Add(IPAddress.Parse(proxy));
        return app.UseForwardedHeaders(forwarded);
    }

    /// <summary>The request's origin as the audit log records it.</summary>
    public static RequestOrigin Origin(this HttpContext http) => new(http.Connection.RemoteIpAddress?.ToString(), http.TraceIdentifier);

    /// <summary>The machine that opened the connection (a proxy, behind one), whatever X-Forwarded-For said.</summary>
    public static IPAddress? Peer(HttpContext http) => http.Features.Get<PeerAddress>()?.Address ?? http.Connection.RemoteIpAddress;
}
