using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.AspNetCore;

/// <summary>Adds Gatehouse access tokens to an API's authentication.</summary>
public static class GatehouseAuthentication
{
    /// <summary>The scheme's name when none is given.</summary>
    public const string DefaultScheme = "Gatehouse";

    /// <summary>The audience every Gatehouse access token carries.</summary>
    public const string Audience = "gatehouse:api";

    /// <summary>
    /// JwtBearer for Gatehouse access tokens: issuer and keys from the discovery document (keys read again when a
    /// token names an unknown one), audience <c>gatehouse:api</c>, ES256 and <c>typ: at+jwt</c> only; with a server key,
    /// each token is also introspected (its answer reused for <see cref="GatehouseAuthenticationOptions.RevocationCheckWindow"/>)
    /// so a revoked session is refused within that window. An introspection that cannot be made refuses the request.
    /// </summary>
    public static AuthenticationBuilder AddGatehouse(this AuthenticationBuilder builder, Action<GatehouseAuthenticationOptions> configure) =>
        builder.AddGatehouse(DefaultScheme, configure);

    /// <inheritdoc cref="AddGatehouse(AuthenticationBuilder, Action{GatehouseAuthenticationOptions})"/>
    public static AuthenticationBuilder AddGatehouse(this AuthenticationBuilder builder, string scheme, Action<GatehouseAuthenticationOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.AddOptions<GatehouseAuthenticationOptions>(scheme).Configure(configure)
            .Validate(o => o.Authority is { IsAbsoluteUri: true } a && a.Scheme is "http" or "https", "Gatehouse:Authority must be Gatehouse's absolute http(s) URL.")
            .Validate(o => o.RevocationCheckWindow >= TimeSpan.Zero, "RevocationCheckWindow must not be negative.")
            .Validate(o => o.KeyRefreshInterval >= TimeSpan.FromSeconds(1), "KeyRefreshInterval must be at least one second.")
            .ValidateOnStart();
        builder.Services.AddKeyedSingleton(scheme, (services, _) =>
            new GatehouseBackchannel(services.GetRequiredService<IOptionsMonitor<GatehouseAuthenticationOptions>>().Get(scheme), TimeProvider.System));
        builder.AddJwtBearer(scheme, _ => { });
        builder.Services.AddOptions<JwtBearerOptions>(scheme).Configure<IOptionsMonitor<GatehouseAuthenticationOptions>, IServiceProvider>((jwt, all, services) =>
        {
            var gatehouse = all.Get(scheme);
            var authority = gatehouse.Authority!.ToString().TrimEnd('/');
            jwt.Authority = authority;
            jwt.MetadataAddress = authority + "/.well-known/openid-configuration";
            jwt.RequireHttpsMetadata = gatehouse.RequireHttpsMetadata;
            jwt.BackchannelHttpHandler = gatehouse.BackchannelHandler;
            jwt.RefreshInterval = gatehouse.KeyRefreshInterval;
            jwt.RefreshOnIssuerKeyNotFound = true;
            jwt.MapInboundClaims = false;
            jwt.Audience = Audience;
            jwt.TokenValidationParameters.ValidAlgorithms = ["ES256"];
            jwt.TokenValidationParameters.ValidTypes = ["at+jwt"];
            jwt.TokenValidationParameters.NameClaimType = GatehouseClaims.UserId;
            jwt.Events = new JwtBearerEvents
            {
                OnTokenValidated = async context =>
                {
                    // Without its text a token cannot be introspected: refused rather than let through unchecked.
                    if (gatehouse.ServerKey is not null && (context.SecurityToken is not JsonWebToken token
                        || !await IsActiveAsync(gatehouse, services, scheme, token.EncodedToken, context.HttpContext.RequestAborted).ConfigureAwait(false)))
                    {
                        context.Fail(Revoked);
                    }
                },
                // A token signed with a key this API has not read yet (Gatehouse rotated its key): the handler asked for
                // the keys to be read again; this request is judged again with them rather than refused.
                OnAuthenticationFailed = async context =>
                {
                    if (context.Exception is not SecurityTokenSignatureKeyNotFoundException || context.Options.ConfigurationManager is not { } keys
                        || !AuthenticationHeaderValue.TryParse(context.Request.Headers.Authorization, out var header)
                        || !string.Equals(header.Scheme, "Bearer", StringComparison.OrdinalIgnoreCase) || header.Parameter is not { } presented)
                    {
                        return;
                    }
                    var ct = context.HttpContext.RequestAborted;
                    var parameters = context.Options.TokenValidationParameters.Clone();
                    try
                    {
                        var configuration = await keys.GetConfigurationAsync(ct).ConfigureAwait(false);
                        parameters.ValidIssuer = configuration.Issuer;
                        parameters.IssuerSigningKeys = await services.GetRequiredKeyedService<GatehouseBackchannel>(scheme)
                            .SigningKeysAsync(configuration.JwksUri, ct).ConfigureAwait(false);
                    }
                    catch (HttpRequestException)
                    {
                        // Gatehouse could not be asked for its keys: the request stays refused.
                        return;
                    }
                    var result = await new JsonWebTokenHandler { MapInboundClaims = false }.ValidateTokenAsync(presented, parameters).ConfigureAwait(false);
                    if (!result.IsValid)
                        return;
                    if (!await IsActiveAsync(gatehouse, services, scheme, presented, context.HttpContext.RequestAborted).ConfigureAwait(false))
                    {
                        context.Fail(Revoked);
                        return;
                    }
                    context.Principal = new ClaimsPrincipal(result.ClaimsIdentity);
                    context.Success();
                },
            };
        });
        return builder;
    }

    private const string Revoked = "Gatehouse says this token may no longer be used (logged out, revoked, banned or expired).";

    private static Task<bool> IsActiveAsync(GatehouseAuthenticationOptions gatehouse, IServiceProvider services, string scheme, string token,
        CancellationToken cancellationToken) =>
        gatehouse.ServerKey is null
            ? Task.FromResult(true)
            : services.GetRequiredKeyedService<GatehouseBackchannel>(scheme).IsActiveAsync(token, cancellationToken);
}

/// <summary>
/// Calls to Gatehouse beside JwtBearer's own: whether a token may be used now (RFC 7662), each answer reused for the
/// revocation window; and the keys read again at once after a rotation (JwtBearer's own refresh runs in the background,
/// after the request that needed it), at most once per <see cref="GatehouseAuthenticationOptions.KeyRefreshInterval"/>
/// so tokens naming made-up keys cannot make the API flood Gatehouse.
/// </summary>
internal sealed class GatehouseBackchannel(GatehouseAuthenticationOptions options, TimeProvider clock) : IDisposable
{
    private readonly SemaphoreSlim _keysGate = new(1, 1);
    private IList<SecurityKey> _keys = [];
    private DateTimeOffset _keysReadAt = DateTimeOffset.MinValue;

    public async Task<IList<SecurityKey>> SigningKeysAsync(string jwksUri, CancellationToken cancellationToken)
    {
        await _keysGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (clock.GetUtcNow() - _keysReadAt >= options.KeyRefreshInterval)
            {
                var json = await _http.GetStringAsync(new Uri(jwksUri), cancellationToken).ConfigureAwait(false);
                _keys = new JsonWebKeySet(json).GetSigningKeys();
                _keysReadAt = clock.GetUtcNow();
            }
            return _keys;
        }
        finally
        {
            _keysGate.Release();
        }
    }

    private const int MaxRemembered = 100_000;
    private readonly HttpClient _http = options.BackchannelHandler is { } handler
        ? new HttpClient(handler, disposeHandler: false) { Timeout = TimeSpan.FromSeconds(10) }
        : new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
    private readonly ConcurrentDictionary<string, (bool Active, DateTimeOffset Until)> _answers = new(StringComparer.Ordinal);

    public async Task<bool> IsActiveAsync(string token, CancellationToken cancellationToken)
    {
        // Remembered by a digest: the tokens themselves are not kept in memory longer than a request.
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
        var now = clock.GetUtcNow();
        if (_answers.TryGetValue(key, out var known) && known.Until > now)
            return known.Active;

        bool active;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, options.Authority!.ToString().TrimEnd('/') + "/oauth/introspect")
            {
                Content = new FormUrlEncodedContent([new KeyValuePair<string, string>("token", token)]),
            };
            request.Headers.Add("x-server-key", options.ServerKey);
            using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            active = response.IsSuccessStatusCode
                && (await response.Content.ReadFromJsonAsync(IntrospectionJson.Default.IntrospectionAnswer, cancellationToken).ConfigureAwait(false))?.Active == true;
        }
        catch (HttpRequestException)
        {
            // Gatehouse could not be asked: refused, never let through unchecked. Not remembered, so the next request asks again.
            return false;
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
        if (options.RevocationCheckWindow > TimeSpan.Zero)
        {
            if (_answers.Count >= MaxRemembered)
                _answers.Clear();
            _answers[key] = (active, now + options.RevocationCheckWindow);
        }
        return active;
    }

    public void Dispose()
    {
        _http.Dispose();
        _keysGate.Dispose();
    }
}

internal sealed record IntrospectionAnswer(bool Active);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(IntrospectionAnswer))]
internal sealed partial class IntrospectionJson : JsonSerializerContext;
