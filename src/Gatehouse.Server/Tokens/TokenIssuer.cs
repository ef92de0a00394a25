using Gatehouse.Server.Configuration;
using Gatehouse.Server.Storage;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Tokens;

/// <summary>
/// Who signs this deployment's tokens, as a URL a resource server can discover keys from (RFC 8414 §2: the issuer is an
/// https URL with no query or fragment): <c>Gatehouse:PublicUrl</c>, else the first HTTP(S) address the server listens
/// on (SQLite; one node), else the fixed <c>Gatehouse:Issuer</c> (PostgreSQL, where nodes listening on different
/// addresses must still name one issuer). Tokens carrying the fixed issuer of earlier releases are still accepted.
/// </summary>
internal sealed class TokenIssuer(IServiceProvider services, IOptions<GatehouseOptions> options)
{
    private string? _current;

    /// <summary>The issuer new tokens carry, without a trailing slash; read once the server listens.</summary>
    public string Current => _current ?? Resolve();

    /// <summary>
    /// Whether a token of ours (its signature already ours) may carry this issuer: the current one, the fixed one of
    /// releases before 0.2.0, and, while no <c>PublicUrl</c> is set, any http(s) URL, since the issuer then follows the
    /// address the server listens on and a restart on another port must not sign everyone out.
    /// </summary>
    public bool Accepts(string? issuer) =>
        issuer is not null && (issuer == Current || issuer == options.Value.Issuer
            || (string.IsNullOrWhiteSpace(options.Value.PublicUrl) && Uri.TryCreate(issuer, UriKind.Absolute, out var url) && url.Scheme is "http" or "https"));

    /// <summary>The discovery document's base: the issuer when it is a URL.</summary>
    public bool IsUrl => Uri.TryCreate(Current, UriKind.Absolute, out var url) && url.Scheme is "http" or "https";

    private string Resolve()
    {
        var settings = options.Value;
        if (!string.IsNullOrWhiteSpace(settings.PublicUrl))
            return _current = settings.PublicUrl.TrimEnd('/');
        if (StorageSetup.UsesPostgreSql(settings))
            return _current = settings.Issuer;
        // No server in an operator command's host: it signs nothing a client will see.
        var listening = services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses
            .Select(a => Uri.TryCreate(a.Replace("://+", "://localhost", StringComparison.Ordinal)
                .Replace("://*", "://localhost", StringComparison.Ordinal), UriKind.Absolute, out var url) ? url : null)
            .FirstOrDefault(url => url is { Scheme: "http" or "https" });
        // Not listening yet (or an operator command): the fixed issuer, and asked again next time.
        if (listening is null)
            return settings.Issuer;
        // An address that listens everywhere names no host a client could reach; localhost stands in for it.
        var host = listening.Host is "0.0.0.0" or "[::]" ? "localhost" : listening.Host;
        return _current = $"{listening.Scheme}://{host}:{listening.Port}";
    }
}
