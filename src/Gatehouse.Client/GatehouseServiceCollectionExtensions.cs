using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gatehouse.Client;

/// <summary>
/// Registers the clients: <see cref="GatehouseClient"/> for an app, <see cref="AuthTokenClient"/> and
/// <see cref="AdminClient"/> for a backend (typed clients of <see cref="IHttpClientFactory"/>). Each takes its settings
/// from code or from a configuration section, and checks them when the host starts (ValidateOnStart): a missing
/// endpoint or key stops the start with a message naming it, not the first call.
/// </summary>
public static class GatehouseServiceCollectionExtensions
{
    /// <summary>
    /// Registers one <see cref="GatehouseClient"/> for the app (a singleton: one session per app), logging through the
    /// container's <see cref="ILoggerFactory"/>, with the container's <see cref="ITokenStore"/> and
    /// <see cref="TimeProvider"/> when it has them.
    /// </summary>
    public static IServiceCollection AddGatehouseClient(this IServiceCollection services, Action<GatehouseClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        AddGatehouseClient(services).Configure(configure);
        return services;
    }

    /// <summary>Like <see cref="AddGatehouseClient(IServiceCollection, Action{GatehouseClientOptions})"/>, bound from a
    /// configuration section (<c>ApiKey</c>, <c>Endpoint</c>, <c>DeviceId</c>, <c>RenewalCheckInterval</c>, <c>Timeout</c>).</summary>
    public static IServiceCollection AddGatehouseClient(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        AddGatehouseClient(services).Bind(configuration);
        return services;
    }

    /// <summary>
    /// Registers <see cref="AuthTokenClient"/> as a typed HTTP client whose handler presents
    /// <see cref="ServerClientOptions.ClientCertificate"/>. The settings are read again (IOptionsMonitor) for each new
    /// client and handler, so a server key or certificate changed in the configuration is taken up without a restart.
    /// </summary>
    /// <returns>The HTTP client builder, to add handlers.</returns>
    public static IHttpClientBuilder AddGatehouseAuthTokenClient(this IServiceCollection services, Action<AuthTokenClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return AddServerClient<AuthTokenClient, AuthTokenClientOptions>(services, options => options.Configure(configure),
            (http, options, time, logger) => new AuthTokenClient(http, options, time, logger));
    }

    /// <summary>Like <see cref="AddGatehouseAuthTokenClient(IServiceCollection, Action{AuthTokenClientOptions})"/>, bound from a
    /// configuration section (<c>Endpoint</c>, <c>ServerKey</c>, <c>Version</c>, <c>VisitorSecret</c>, <c>Timeout</c>, <c>Retry</c>).</summary>
    /// <returns>The HTTP client builder, to add handlers.</returns>
    public static IHttpClientBuilder AddGatehouseAuthTokenClient(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return AddServerClient<AuthTokenClient, AuthTokenClientOptions>(services, options => options.Bind(configuration),
            (http, options, time, logger) => new AuthTokenClient(http, options, time, logger));
    }

    /// <summary>Registers <see cref="AdminClient"/> the same way.</summary>
    /// <returns>The HTTP client builder, to add handlers.</returns>
    public static IHttpClientBuilder AddGatehouseAdminClient(this IServiceCollection services, Action<AdminClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return AddServerClient<AdminClient, AdminClientOptions>(services, options => options.Configure(configure),
            (http, options, time, logger) => new AdminClient(http, options, time, logger));
    }

    /// <summary>Registers <see cref="AdminClient"/>, bound from a configuration section (<c>Endpoint</c>, <c>AdminToken</c>, …).</summary>
    /// <returns>The HTTP client builder, to add handlers.</returns>
    public static IHttpClientBuilder AddGatehouseAdminClient(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return AddServerClient<AdminClient, AdminClientOptions>(services, options => options.Bind(configuration),
            (http, options, time, logger) => new AdminClient(http, options, time, logger));
    }

    private static OptionsBuilder<GatehouseClientOptions> AddGatehouseClient(IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(provider =>
        {
            var options = provider.GetRequiredService<IOptions<GatehouseClientOptions>>().Value;
            return new GatehouseClient(options, http: null, provider.GetService<ILoggerFactory>()?.CreateLogger<GatehouseClient>());
        });
        var options = services.AddOptions<GatehouseClientOptions>()
            .PostConfigure<IServiceProvider>((options, provider) =>
            {
                options.TokenStore = provider.GetService<ITokenStore>() ?? options.TokenStore;
                options.TimeProvider = provider.GetService<TimeProvider>() ?? options.TimeProvider;
            });
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GatehouseClientOptions>, AppSettingsValidator>());
        options.ValidateOnStart();
        return options;
    }

    private static IHttpClientBuilder AddServerClient<TClient, TOptions>(IServiceCollection services, Action<OptionsBuilder<TOptions>> configure,
        Func<HttpClient, TOptions, TimeProvider, ILogger, TClient> create)
        where TClient : class
        where TOptions : ServerClientOptions
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<TOptions>();
        configure(options);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>, BackendSettingsValidator<TOptions>>());
        options.ValidateOnStart();
        return services.AddHttpClient(typeof(TClient).FullName!)
            .ConfigurePrimaryHttpMessageHandler(provider => provider.GetRequiredService<IOptionsMonitor<TOptions>>().CurrentValue.CreateHandler())
            .AddTypedClient((http, provider) => create(http, provider.GetRequiredService<IOptionsMonitor<TOptions>>().CurrentValue,
                provider.GetService<TimeProvider>() ?? TimeProvider.System,
                provider.GetService<ILoggerFactory>()?.CreateLogger<TClient>() ?? (ILogger)Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance));
    }

    /// <summary>The same checks as the constructor, run when the host starts.</summary>
    private sealed class AppSettingsValidator : IValidateOptions<GatehouseClientOptions>
    {
        public ValidateOptionsResult Validate(string? name, GatehouseClientOptions options) => Result(options.Problems());
    }

    /// <summary>The same checks as the backend clients' constructors, run when the host starts.</summary>
    private sealed class BackendSettingsValidator<TOptions> : IValidateOptions<TOptions>
        where TOptions : ServerClientOptions
    {
        public ValidateOptionsResult Validate(string? name, TOptions options) => Result(options.Problems());
    }

    private static ValidateOptionsResult Result(IReadOnlyList<string> problems) =>
        problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
}
