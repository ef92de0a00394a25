using Gatehouse.Server.Admins;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.ServerKeys;
using Gatehouse.Server.KeysAtRest;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Operations;

/// <summary>
/// Subcommands of the server executable for the operator at the machine. They work on the same database as a
/// running server (SQLite in WAL mode takes both), apply pending migrations first, and are audited as
/// "operator".
/// </summary>
internal static class OperatorCommands
{
    private const string Actor = "operator";

    public const string Usage = """
        Usage: Gatehouse.Server [command]
          (no command) [--setting value ...]        run the server; --urls, --Gatehouse:DataDirectory=... and
                                                    other --settings configure it
          help, --help, -h                          print this
          migrate                                   apply database migrations and exit
          migrate --script                          print the SQL that migrate would run; change nothing
          backup <folder>                           SQLite: a consistent copy of the database, its key ring and
                                                    the HTTPS certificate, while the server runs
          restore <folder>                          SQLite, server stopped: put a backup in place (what was
                                                    there is moved to data/backups/replaced-<time>)
          network create <name>                     create a network; prints its id and API key
          network list                              list networks (id, region, secure mode, name)
          network regenerate-api-key <network-id>   replace a network's API key (the old one stops at once)
          secure-mode <network-id> on|off [--keep-sessions]
                                                    switch secure mode; turning it on ends the sessions opened
                                                    without an auth token unless --keep-sessions
          auth-tokens <network-id> single-use|reusable
                                                    each auth token opens one session, or any until it expires
          server-key generate <network-id>          generate a server key; printed once, never again
          visitor-mode <network-id> on|off          allow anonymous visitors' read-only sessions; off ends theirs
          bot-mode <network-id> on|off              allow crawlers' read-only sessions; off ends theirs
          visitor-secret generate <network-id>      the secret a backend signs visitors with in secure mode;
                                                    printed once, never again
          admin create <email> [--super-admin]      create a console admin; prints a one-time password
          admin two-factor-reset <email>            remove an admin's second factor (a lost authenticator and
                                                    recovery codes); its console sign-ins end
          admin enable <email>                      enable an account a super admin disabled
          admin-token generate <network-id> <email> [--days N]
                                                    an admin token for that admin (N days, 1 to 365, default
                                                    365); printed once, never again. A previous token of the
                                                    admin keeps working for the grace period
          admin-token revoke <network-id> <email>   revoke every admin token that admin holds in the network
          signing-key rotate                        sign new tokens with a new key (live tokens stay valid)
          signing-key list                          every signing key, what it does now, until when
          signing-key retire <kid>                  refuse every token a rotated-out key signed (a leaked key)
          key-encryption-key new [--file <path>]    print a new key-encryption key, or write it to a new file
                                                    (0600); give the same one to every PostgreSQL node
        """;

    private static readonly string[] Commands = ["migrate", "backup", "restore", "network", "secure-mode", "auth-tokens", "server-key", "visitor-mode", "bot-mode", "visitor-secret", "admin", "admin-token", "signing-key", "key-encryption-key"];

    private static bool IsHelp(string argument) => argument is "help" or "--help" or "-h";

    /// <summary>
    /// Whether the arguments are for <see cref="RunAsync"/> rather than the server: any first word that is not an
    /// option, so that a mistyped command is refused instead of starting a server that would take the word for
    /// configuration and listen.
    /// </summary>
    public static bool IsCommand(string[] args) => args.Length > 0 && (!args[0].StartsWith('-') || IsHelp(args[0]));

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, Action<HostApplicationBuilder>? configure = null)
    {
        if (IsHelp(args[0]))
        {
            await output.WriteLineAsync(Usage);
            return 0;
        }
        // Refused before the database is opened: a typo changes nothing, not even a pending migration.
        if (!Commands.Contains(args[0]))
        {
            await error.WriteLineAsync($"Unknown command '{args[0]}'.");
            await error.WriteLineAsync(Usage);
            return 2;
        }

        // Needs no configuration: it is how a PostgreSQL deployment gets the key its configuration must name.
        if (args is ["key-encryption-key", ..])
            return await NewKeyEncryptionKeyAsync(args, output, error);

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = AppContext.BaseDirectory });
        // Standard output carries the command's answer alone; warnings and errors go to standard error.
        builder.Logging.ClearProviders();
        builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.AddFilter((_, level) => level >= LogLevel.Warning);
        builder.Services.AddGatehouseCore();
        configure?.Invoke(builder);
        builder.Services.WithoutKeyRingPreload();
        using var host = builder.Build();
        try
        {
            // Only a server on SQLite keeps rows it must be told about (with PostgreSQL it reads every time).
            host.Services.GetRequiredService<CommittedWrites>().SignalsTheServer =
                !StorageSetup.UsesPostgreSql(host.Services.GetRequiredService<IOptions<GatehouseOptions>>().Value);
            await host.StartAsync();
            if (args is ["migrate", "--script" or "--dry-run"])
            {
                await output.WriteAsync(await StorageSetup.PendingMigrationScriptAsync(host.Services));
                await host.StopAsync();
                return 0;
            }
            var settings = host.Services.GetRequiredService<IOptions<GatehouseOptions>>().Value;
            if (args is ["backup" or "restore", ..] && StorageSetup.UsesPostgreSql(settings))
            {
                await error.WriteLineAsync("backup and restore are for SQLite. On PostgreSQL use pg_dump and pg_restore, and keep data/tls beside the dump (docs/deployment.md).");
                return 2;
            }
            if (args is ["restore", var source])
            {
                // Before any migration: the backup is put in place as it was, and the next start upgrades it if needed.
                Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
                if (Backups.Restore(settings, source, host.Services.GetRequiredService<TimeProvider>(), out var movedAside) is { } refused)
                {
                    await error.WriteLineAsync(refused);
                    return 1;
                }
                await output.WriteLineAsync($"Restored {Path.GetFullPath(source)} into {Path.GetFullPath(settings.DataDirectory)}.");
                if (movedAside is not null)
                    await output.WriteLineAsync($"What was there is in {movedAside}.");
                return 0;
            }
            await StorageSetup.MigrateAsync(host.Services);
            await using var scope = host.Services.CreateAsyncScope();
            var exit = await ExecuteAsync(args, scope.ServiceProvider, output, error);
            await host.Services.GetRequiredService<CommittedWrites>().SignalSeenAsync();
            await host.StopAsync();
            return exit;
        }
        catch (Exception e) when (ConfigurationProblems.Of(e) is { } problems)
        {
            foreach (var problem in problems)
                await error.WriteLineAsync(problem);
            return 2;
        }
        catch (StorageTooNewException e)
        {
            await error.WriteLineAsync(e.Message);
            return 3;
        }
    }

    private static async Task<int> NewKeyEncryptionKeyAsync(string[] args, TextWriter output, TextWriter error)
    {
        switch (args)
        {
            case ["key-encryption-key", "new"]:
                await output.WriteLineAsync(KeyEncryptionKey.NewKeyText());
                return 0;
            case ["key-encryption-key", "new", "--file", var path]:
                if (File.Exists(path))
                {
                    await error.WriteLineAsync($"{path} exists; a key-encryption key is never overwritten (the keys it sealed would be lost).");
                    return 1;
                }
                await using (var file = PrivateFiles.Create(path, FileMode.CreateNew))
                await using (var writer = new StreamWriter(file))
                    await writer.WriteLineAsync(KeyEncryptionKey.NewKeyText());
                await output.WriteLineAsync($"Wrote a new key-encryption key to {Path.GetFullPath(path)} (0600). Set Gatehouse:KeyEncryption:KeyFile to it on every node, and keep a copy apart from the database backups.");
                return 0;
            default:
                await error.WriteLineAsync(Usage);
                return 2;
        }
    }

    private static async Task<int> ExecuteAsync(string[] args, IServiceProvider services, TextWriter output, TextWriter error)
    {
        var networks = services.GetRequiredService<NetworkAdministration>();
        switch (args)
        {
            case ["migrate"]:
                await output.WriteLineAsync("Database is up to date.");
                return 0;

            case ["network", "create", var name] when name.Trim().Length is > 0 and <= 100:
                var created = await networks.CreateAsync(name.Trim(), Actor);
                await output.WriteLineAsync($"Network {created.Id} created in region {created.Region}.");
                await output.WriteLineAsync($"API key: {created.ApiKey}");
                return 0;

            case ["network", "list"]:
                foreach (var n in await networks.ListAsync())
                    await output.WriteLineAsync($"{n.Id}  {n.Region}  secure-mode={(n.SecureMode ? "on" : "off")}  {n.Name}");
                return 0;

            case ["network", "regenerate-api-key", var id]:
                if (await FindAsync(networks, id, error) is not { } toRekey)
                    return 1;
                await output.WriteLineAsync($"API key: {await networks.RegenerateApiKeyAsync(toRekey, Actor)}");
                await output.WriteLineAsync("The previous API key no longer works.");
                return 0;

            case ["secure-mode", var id, var state, .. var keep] when state is "on" or "off" && keep is [] or ["--keep-sessions"]:
                if (await FindAsync(networks, id, error) is not { } toSwitch)
                    return 1;
                var wasOn = toSwitch.SecureMode;
                var (refused, sessions) = await networks.SetSecureModeAsync(toSwitch, state == "on", Actor, keepSessions: keep.Length > 0);
                if (refused is not null)
                {
                    await error.WriteLineAsync(refused);
                    return 1;
                }
                await output.WriteLineAsync($"Secure mode is {state} for network {toSwitch.Id}.");
                if (state == "on" && !wasOn)
                {
                    await output.WriteLineAsync(keep.Length > 0
                        ? $"Kept {sessions} session(s) opened without an auth token."
                        : $"Ended {sessions} session(s) opened without an auth token (--keep-sessions keeps them).");
                }

                return 0;

            case ["auth-tokens", var id, var use] when use is "single-use" or "reusable":
                if (await FindAsync(networks, id, error) is not { } toSet)
                    return 1;
                await networks.SetSingleUseAuthTokensAsync(toSet, use == "single-use", Actor);
                await output.WriteLineAsync(use == "single-use"
                    ? $"Each auth token now opens one session in network {toSet.Id}."
                    : $"Auth tokens now open sessions until they expire in network {toSet.Id}.");
                return 0;

            case ["server-key", "generate", var id]:
                if (await FindAsync(networks, id, error) is not { } network)
                    return 1;
                var (key, refusal) = await services.GetRequiredService<ServerKeyService>().GenerateAsync(network, Actor);
                if (refusal is not null)
                {
                    await error.WriteLineAsync($"{refusal.Message} Run: secure-mode {network.Id} on");
                    return 1;
                }
                var grace = services.GetRequiredService<IOptions<Configuration.GatehouseOptions>>().Value.ServerKeyGracePeriod;
                await output.WriteLineAsync($"Server key: {key}");
                await output.WriteLineAsync($"Store it in your backend now: it is shown only once. A previous key stops working in {grace}.");
                return 0;

            case [var mode, var id, var state] when mode is "visitor-mode" or "bot-mode" && state is "on" or "off":
                if (await FindAsync(networks, id, error) is not { } anonymous)
                    return 1;
                var kind = mode == "visitor-mode" ? Users.UserKind.Visitor : Users.UserKind.Bot;
                var endedSessions = await networks.SetAnonymousModeAsync(anonymous, kind, state == "on", Actor);
                var who = kind == Users.UserKind.Visitor ? "Visitors" : "Bots";
                await output.WriteLineAsync(state == "on"
                    ? $"{who} may open read-only sessions in network {anonymous.Id}."
                    : $"{who} are refused in network {anonymous.Id}; ended {endedSessions} of their session(s).");
                return 0;

            case ["visitor-secret", "generate", var id]:
                if (await FindAsync(networks, id, error) is not { } signing)
                    return 1;
                var visitorSecret = await services.GetRequiredService<Visitors.VisitorSecrets>().GenerateAsync(signing, Actor);
                await output.WriteLineAsync($"Visitor secret: {visitorSecret}");
                await output.WriteLineAsync("Store it in your backend now: it is shown only once. It signs visitors' devices in secure mode (docs/api.md); " +
                    $"a previous secret stops working in {services.GetRequiredService<IOptions<GatehouseOptions>>().Value.ServerKeyGracePeriod}.");
                return 0;

            case ["admin", "create", var email, .. var flags] when flags.All(f => f == "--super-admin"):
                var (admin, password, problem) = await services.GetRequiredService<AdminAccounts>()
                    .CreateAsync(email, flags.Length > 0, Actor);
                if (problem is not null)
                {
                    await error.WriteLineAsync(problem.Message);
                    return 1;
                }
                await output.WriteLineAsync($"Admin {admin!.Email} created{(admin.IsSuperAdmin ? " (super admin)" : "")}.");
                await output.WriteLineAsync($"One-time password: {password}");
                return 0;

            case ["admin", "two-factor-reset" or "enable", var email]:
                var accounts = services.GetRequiredService<AdminAccounts>();
                if (await accounts.FindByEmailAsync(email) is not { } account)
                {
                    await error.WriteLineAsync(Errors.AdminNotFound(email).Message);
                    return 1;
                }
                if (args[1] == "enable")
                {
                    await accounts.SetDisabledAsync(account, disabled: false, Actor, origin: null);
                    await output.WriteLineAsync($"{account.Email} can sign in again.");
                    return 0;
                }
                await services.GetRequiredService<TwoFactor>().TurnOffAsync(account, Actor, origin: null);
                await output.WriteLineAsync($"Two-factor sign-in of {account.Email} removed; its console sign-ins ended. " +
                    "If the portal requires two-factor, it sets up a new authenticator at its next sign-in.");
                return 0;

            case ["admin-token", "generate", var id, var email, .. var lifetime] when lifetime is [] or ["--days", _]:
                return await GenerateAdminTokenAsync(services, networks, id, email, lifetime, output, error);

            case ["admin-token", "revoke", var id, var email]:
                if (await FindAsync(networks, id, error) is not { } tokenNetwork)
                    return 1;
                var (revoked, revokeError) = await services.GetRequiredService<AdminTokens.AdminTokenService>().RevokeAllAsync(email, tokenNetwork.Id, Actor);
                if (revokeError is not null)
                {
                    await error.WriteLineAsync(revokeError.Message);
                    return 1;
                }
                await output.WriteLineAsync($"Revoked {revoked} admin token(s).");
                return 0;

            case ["backup", var target]:
                var db = services.GetRequiredService<GatehouseDb>();
                if (await Backups.BackUpAsync(db, services.GetRequiredService<IOptions<GatehouseOptions>>().Value, target) is { } notEmpty)
                {
                    await error.WriteLineAsync(notEmpty);
                    return 1;
                }
                await output.WriteLineAsync($"Backed up to {Path.GetFullPath(target)} (the database, its key ring and the HTTPS certificate; keep it as secret as the server).");
                return 0;

            case ["signing-key", "rotate"]:
                var kid = await services.GetRequiredService<SigningKeys>().RotateAsync(Actor);
                await output.WriteLineAsync($"New signing key {kid}. Running servers sign with it within {SigningKeys.ReReadInterval.TotalSeconds:0} seconds; tokens signed before stay valid.");
                return 0;

            case ["signing-key", "list"]:
                foreach (var signingKey in await services.GetRequiredService<SigningKeys>().ListAsync())
                {
                    await output.WriteLineAsync($"{signingKey.Id}  {signingKey.Use.ToString().ToLowerInvariant(),-9}  created {signingKey.CreatedAt:u}" +
                        (signingKey.VerifiesUntil is { } until ? $"  verifies until {until:u}" : "") + (signingKey.EndedAt is { } ended ? $"  retired {ended:u}" : ""));
                }

                return 0;

            case ["signing-key", "retire", var retiring]:
                switch (await services.GetRequiredService<SigningKeys>().RetireAsync(retiring, Actor))
                {
                    case RetireOutcome.Ended:
                        await output.WriteLineAsync($"Signing key {retiring} retired: the tokens it signed are refused (by running servers within {SigningKeys.ReReadInterval.TotalSeconds:0} seconds). Apps renew theirs with their refresh tokens, signed by the current key.");
                        return 0;
                    case RetireOutcome.StillSigning:
                        await error.WriteLineAsync($"Signing key {retiring} signs new tokens: run `signing-key rotate` first, then retire it.");
                        return 1;
                    case RetireOutcome.AlreadyEnded:
                        await error.WriteLineAsync($"Signing key {retiring} is already retired.");
                        return 1;
                    default:
                        await error.WriteLineAsync($"No signing key {retiring} (`signing-key list` shows them).");
                        return 1;
                }

            default:
                await error.WriteLineAsync(Usage);
                return 2;
        }
    }

    private static async Task<int> GenerateAdminTokenAsync(IServiceProvider services, NetworkAdministration networks, string id, string email,
        string[] lifetime, TextWriter output, TextWriter error)
    {
        var maxDays = (int)AdminTokens.AdminTokenService.MaxLifetime.TotalDays;
        var days = maxDays;
        if (lifetime is [_, var text] && (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out days)
            || days < 1 || days > maxDays))
        {
            await error.WriteLineAsync($"--days takes a whole number of days from 1 to {maxDays} (got '{text}').");
            return 2;
        }
        if (await FindAsync(networks, id, error) is not { } network)
            return 1;
        if (await services.GetRequiredService<AdminAccounts>().FindByEmailAsync(email) is not { } admin)
        {
            await error.WriteLineAsync(Errors.AdminNotFound(email).Message);
            return 1;
        }

        var clock = services.GetRequiredService<TimeProvider>();
        var now = clock.GetUtcNow();
        var hadToken = await services.GetRequiredService<GatehouseDb>().AdminTokens
            .AnyAsync(t => t.AdminId == admin.Id && t.NetworkId == network.Id && t.RevokedAt == null && t.ExpiresAt > now);
        var (token, refusal) = await services.GetRequiredService<AdminTokens.AdminTokenService>()
            .GenerateAsync(Actor, admin, network.Id, TimeSpan.FromDays(days), revokePrevious: false, origin: null);
        if (refusal is not null)
        {
            var remedy = admin.IsSuperAdmin ? " Generate it for an Admin of the network instead."
                : admin.DisabledAt is not null ? $" Run: admin enable {admin.Email}"
                : " Give the admin that role and permission in the console (Settings > Admin Users).";
            await error.WriteLineAsync($"No admin token for {admin.Email}: {refusal.Message}{remedy}");
            return 1;
        }

        await output.WriteLineAsync($"Admin token: {token}");
        await output.WriteLineAsync($"Store it in the backend now: it is shown only once. It expires {now.AddDays(days):yyyy-MM-dd HH:mm} UTC.");
        if (hadToken)
        {
            var grace = services.GetRequiredService<IOptions<GatehouseOptions>>().Value.AdminTokenGracePeriod;
            await output.WriteLineAsync($"The previous token of {admin.Email} keeps working for the grace period (at most {grace}) while its backend switches over; " +
                "to end it now, revoke it in the console (Settings > Admin Users): admin-token revoke would end this one too.");
        }

        return 0;
    }

    private static async Task<Network?> FindAsync(NetworkAdministration networks, string id, TextWriter error)
    {
        var network = await networks.FindAsync(id);
        if (network is null)
            await error.WriteLineAsync($"No network with id '{id}'. List them with: network list");
        return network;
    }
}
