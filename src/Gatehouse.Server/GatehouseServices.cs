using Gatehouse.Server.AdminTokens;
using Gatehouse.Server.Admins;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Certificates;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.KeysAtRest;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Observability;
using Gatehouse.Server.ServerKeys;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Gatehouse.Server.Visitors;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server;

/// <summary>Everything the server and the operator commands share.</summary>
internal static class GatehouseServices
{
    public static IServiceCollection AddGatehouseCore(this IServiceCollection services)
    {
        services.AddOptions<GatehouseOptions>().BindConfiguration(GatehouseOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<GatehouseOptions>, GatehouseOptionsValidator>();
        services.TryAddSingleton(TimeProvider.System);

        services.AddGatehouseStorage();
        services.AddSingleton(sp => KeyEncryptionKey.Load(sp.GetRequiredService<IOptions<GatehouseOptions>>().Value));
        services.AddDataProtection().SetApplicationName("Gatehouse");
        // With PostgreSQL every node must share the key ring, so it lives in the database; with SQLite (one node)
        // it stays in a private folder beside the database, so a copy of the database file alone decrypts nothing.
        // Either way every master key is sealed with the key-encryption key, which is kept in neither place.
        services.AddOptions<KeyManagementOptions>().Configure<IServiceProvider, IOptions<GatehouseOptions>, ILoggerFactory>((keys, sp, gatehouse, logs) =>
        {
            keys.XmlRepository = StorageSetup.UsesPostgreSql(gatehouse.Value)
                ? new EntityFrameworkCoreXmlRepository<GatehouseDb>(sp, logs)
                : new FileSystemXmlRepository(PrivateDirectory(gatehouse.Value.DataDirectory, "keys"), logs);
            keys.XmlEncryptor = new KeyRingEncryptor(sp.GetRequiredService<KeyEncryptionKey>());
        });

        services.WithoutKeyRingPreload();

        services.AddSingleton<SigningKeys>();
        services.AddSingleton<CertificateAuthority>();
        services.AddSingleton<ServerCertificate>();
        services.AddSingleton<TokenIssuer>();
        services.AddSingleton<Jwt>();
        services.AddSingleton<AuthTokens.AuthTokens>();
        services.AddSingleton<AccessTokens>();
        services.AddSingleton<ApiKeys>();
        services.AddSingleton<SecurityMetrics>();
        services.AddSingleton<RateLimits.SessionRefreshLimiter>();
        services.AddSingleton<RateLimits.CredentialFailures>();
        services.AddSingleton<AuditLog>();
        services.AddHostedService(sp => sp.GetRequiredService<AuditLog>());
        services.AddSingleton<LiveSessionCache>();
        services.AddSingleton<SessionAccess>();
        services.AddSingleton<ServerKeyCache>();
        services.AddSingleton<KnownClientCertificates>();
        services.AddSingleton<KnownAdminTokens>();
        services.AddSingleton<KnownUsers>();
        services.AddSingleton<SessionService>();
        services.AddHostedService(sp => sp.GetRequiredService<SessionService>());

        services.AddScoped<NetworkAdministration>();
        services.AddScoped<ServerKeyService>();
        services.AddScoped<VisitorSecrets>();
        services.AddScoped<Console.OneTimeReveals>();
        services.AddScoped<AdminAccounts>();
        services.AddScoped<TwoFactor>();
        services.AddScoped<AdminTokenService>();
        services.AddScoped<UserAdministration>();
        services.AddScoped<ClientCertificates>();
        services.AddSingleton<MtlsGate>();
        return services;
    }

    /// <summary>
    /// Data Protection's hosted service reads the key ring as the host starts: before the key-encryption key is
    /// checked (a wrong one would make it generate a master key sealed with that key, which the right nodes then
    /// refuse), and, on PostgreSQL, before the database may answer or be migrated (StartupGate). The key ring loads
    /// instead when the start-up steps first decrypt the signing keys, after KeyRingSealing. Called again once every
    /// service is registered, because registering Razor Pages or cookies adds Data Protection (and the service) anew.
    /// </summary>
    public static IServiceCollection WithoutKeyRingPreload(this IServiceCollection services)
    {
        foreach (var preload in services.Where(s => s.ServiceType == typeof(IHostedService)
                     && s.ImplementationType?.FullName == "Microsoft.AspNetCore.DataProtection.Internal.DataProtectionHostedService").ToList())
        {
            services.Remove(preload);
        }

        return services;
    }

    /// <summary>The key ring encrypts the signing keys: only the server's own account may read it.</summary>
    private static DirectoryInfo PrivateDirectory(string dataDirectory, string name) =>
        PrivateFiles.Folder(Path.Combine(Path.GetFullPath(dataDirectory), name));
}
