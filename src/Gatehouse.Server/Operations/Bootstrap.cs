using Gatehouse.Server.Admins;
using Gatehouse.Server.Networks;

namespace Gatehouse.Server.Operations;

/// <summary>
/// First start on an empty database: a default network and a super-admin, whose secrets are printed to the
/// console once. Straight to the terminal, never through the logger, so no log sink ever holds them.
/// </summary>
internal static class Bootstrap
{
    public const string AdminEmail = "admin@gatehouse.local";

    /// <summary>The file the first start's secrets go to when standard output is not a terminal and no file is configured.</summary>
    public const string DefaultSecretsFileName = "first-start-secrets.txt";

    /// <param name="outputIsTerminal">
    /// False when <paramref name="output"/> is captured (a service manager, a container's log): the secrets then go
    /// to a 0600 file in the data folder, never into a log.
    /// </param>
    public static async Task RunAsync(IServiceProvider services, TextWriter output, bool outputIsTerminal = true, CancellationToken ct = default)
    {
        if (services.GetRequiredService<KeysAtRest.KeyEncryptionKey>().CreatedFile is { } keyFile)
            await output.WriteLineAsync($"Gatehouse: made the key-encryption key {keyFile}. Keep a copy apart from the data folder's backups: without it they open nothing (docs/deployment.md).");
        await using var scope = services.CreateAsyncScope();
        var networks = scope.ServiceProvider.GetRequiredService<NetworkAdministration>();
        var admins = scope.ServiceProvider.GetRequiredService<AdminAccounts>();

        Network? network = null;
        if ((await networks.ListAsync(ct)).Count == 0)
            network = await networks.CreateAsync("Default network", "bootstrap", ct);
        string? password = null;
        if (!await admins.AnyAsync(ct))
            (_, password, _) = await admins.CreateAsync(AdminEmail, superAdmin: true, "bootstrap", ct);

        if (network is null && password is null)
            return;
        var options = services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Configuration.GatehouseOptions>>().Value;
        var secretsFile = !string.IsNullOrWhiteSpace(options.Bootstrap.SecretsFile) ? options.Bootstrap.SecretsFile
            : outputIsTerminal ? null
            : Path.Combine(options.DataDirectory, DefaultSecretsFileName);
        if (!string.IsNullOrWhiteSpace(secretsFile))
        {
            var path = Path.GetFullPath(secretsFile);
            // Never over an existing file (nor through a link put there): a second name beside it instead.
            if (File.Exists(path) || Directory.Exists(path))
                path = Path.Combine(Path.GetDirectoryName(path)!, $"{Path.GetFileNameWithoutExtension(path)}-{DateTime.UtcNow:yyyyMMdd'T'HHmmss'Z'}{Path.GetExtension(path)}");
            await using (var file = new StreamWriter(Storage.PrivateFiles.Create(path, FileMode.CreateNew)))
                await WriteAsync(file, network, password);
            await output.WriteLineAsync($"Gatehouse: first start. The API key and the one-time password are in {path} (readable by this user only).");
            return;
        }
        await WriteAsync(output, network, password);
    }

    private static async Task WriteAsync(TextWriter output, Network? network, string? password)
    {
        await output.WriteLineAsync("Gatehouse: first start.");
        if (network is not null)
        {
            await output.WriteLineAsync($"  Network:            {network.Name} (id {network.Id}, region {network.Region})");
            await output.WriteLineAsync($"  API key:            {network.ApiKey}");
        }
        if (password is not null)
        {
            await output.WriteLineAsync($"  Super admin:        {AdminEmail}");
            await output.WriteLineAsync($"  One-time password:  {password}");
            await output.WriteLineAsync("  The password is shown only now; a new one is required at first sign-in.");
        }
    }
}
