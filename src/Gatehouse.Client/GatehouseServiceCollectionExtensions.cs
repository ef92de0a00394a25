using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Gatehouse.Client;

/// <summary>Registers the backend clients with <see cref="IHttpClientFactory"/>.</summary>
public static class GatehouseServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="AuthTokenClient"/> as a typed HTTP client whose handler presents
    /// <see cref="ServerClientOptions.ClientCertificate"/>. Bad settings fail at the first resolution.
    /// </summary>
    /// <returns>The HTTP client builder, to add handlers or logging.</returns>
    public static IHttpClientBuilder AddGatehouseAuthTokenClient(this IServiceCollection services, Action<AuthTokenClientOptions> configure) =>
        Add<AuthTokenClient, AuthTokenClientOptions>(services, configure, (http, options, time) => new AuthTokenClient(http, options, time));

    /// <summary>Registers <see cref="AdminClient"/> the same way.</summary>
    /// <returns>The HTTP client builder, to add handlers or logging.</returns>
    public static IHttpClientBuilder AddGatehouseAdminClient(this IServiceCollection services, Action<AdminClientOptions> configure) =>
        Add<AdminClient, AdminClientOptions>(services, configure, (http, options, time) => new AdminClient(http, options, time));

    private static IHttpClientBuilder Add<TClient, TOptions>(IServiceCollection services, Action<TOptions> configure,
        Func<HttpClient, TOptions, TimeProvider, TClient> create)
        where TClient : class
        where TOptions : ServerClientOptions
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<TOptions>().Configure(configure);
        return services.AddHttpClient(typeof(TClient).FullName!)
            .ConfigurePrimaryHttpMessageHandler(provider => provider.GetRequiredService<IOptions<TOptions>>().Value.CreateHandler())
            .AddTypedClient((http, provider) => create(http, provider.GetRequiredService<IOptions<TOptions>>().Value,
                provider.GetService<TimeProvider>() ?? TimeProvider.System));
    }
}
