using System.Security.Cryptography.X509Certificates;
using Gatehouse.Server.Operations;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Tests;

/// <summary>The operator's side: first start, subcommands, and refusing bad configuration.</summary>
[Trait(Category.Name, Category.Slow)]
public sealed class OperatorTests : IDisposable
{
    private readonly string _dataDirectory = GatehouseServer.NewDataDirectory();

    public void Dispose() => GatehouseServer.DeleteDataDirectory(_dataDirectory);

    [Fact]
    public async Task First_start_prints_a_working_api_key_and_a_one_time_password_and_the_next_start_prints_nothing()
    {
        var first = new GatehouseServer { DataDirectory = _dataDirectory };
        await first.InitializeAsync();
        var printed = first.ConsoleOutput;
        var apiKey = Line(printed, "API key:");
        Assert.Equal(20, Line(printed, "One-time password:").Length);
        Assert.Contains("admin@gatehouse.local", printed, StringComparison.Ordinal);
        var session = await first.LoginAsync(new TestNetwork("", apiKey), "alice", "device-a");
        Assert.NotNull(session["accessToken"]);
        await first.StopAsync();

        var second = new GatehouseServer { DataDirectory = _dataDirectory };
        await second.InitializeAsync();
        Assert.Equal("", second.ConsoleOutput);
        await second.StopAsync();
    }

    [Fact]
    public async Task Subcommands_create_a_network_switch_secure_mode_and_generate_a_server_key_that_works()
    {
        var (created, createOut, _) = await RunAsync("network", "create", "Shop");
        var networkId = createOut.Split(' ')[1];
        var apiKey = Line(createOut, "API key:");
        var (refused, _, refusedError) = await RunAsync("server-key", "generate", networkId);
        var (switched, _, _) = await RunAsync("secure-mode", networkId, "on");
        var (generated, keyOut, _) = await RunAsync("server-key", "generate", networkId);
        var (listed, listOut, _) = await RunAsync("network", "list");

        Assert.Equal(0, created);
        Assert.Equal(1, refused);
        Assert.Contains("Secure mode must be on", refusedError, StringComparison.Ordinal);
        Assert.Equal(0, switched);
        Assert.Equal(0, generated);
        Assert.Equal(0, listed);
        Assert.Contains($"{networkId}  sg  secure-mode=on  Shop", listOut, StringComparison.Ordinal);
        Assert.Contains("shown only once", keyOut, StringComparison.Ordinal);

        var server = new GatehouseServer { DataDirectory = _dataDirectory };
        await server.InitializeAsync();
        var network = new TestNetwork(networkId, apiKey);
        var authToken = await server.MintAsync(Line(keyOut, "Server key:"), "bob");
        await server.LoginAsync(network, "bob", "device-b", authToken);
        await server.StopAsync();
    }

    [Fact]
    public async Task Regenerating_the_api_key_stops_the_old_one()
    {
        var (_, createOut, _) = await RunAsync("network", "create", "Game");
        var networkId = createOut.Split(' ')[1];
        var oldKey = Line(createOut, "API key:");
        var (exit, regenerateOut, _) = await RunAsync("network", "regenerate-api-key", networkId);
        var newKey = Line(regenerateOut, "API key:");

        var server = new GatehouseServer { DataDirectory = _dataDirectory };
        await server.InitializeAsync();
        using var withOld = await server.CreateSessionAsync(new TestNetwork(networkId, oldKey), "carol", "device-c");
        await Envelope.AssertUnauthorizedAsync(withOld);
        await server.LoginAsync(new TestNetwork(networkId, newKey), "carol", "device-c");
        await server.StopAsync();
        Assert.Equal(0, exit);
    }

    [Fact]
    public async Task Commands_run_beside_a_running_server_take_effect_at_its_next_request()
    {
        // The server keeps networks and server keys it has read in memory; a command in another process must still
        // be seen at once (the signal file in the data folder).
        var (_, createOut, _) = await RunAsync("network", "create", "Live");
        var networkId = createOut.Split(' ')[1];
        var oldApiKey = Line(createOut, "API key:");
        await RunAsync("secure-mode", networkId, "on");
        var (_, firstKeyOut, _) = await RunAsync("server-key", "generate", networkId);
        var firstKey = Line(firstKeyOut, "Server key:");

        var server = new GatehouseServer { DataDirectory = _dataDirectory };
        await server.InitializeAsync();
        try
        {
            await server.LoginAsync(new TestNetwork(networkId, oldApiKey), "dora", "device-d", await server.MintAsync(firstKey, "dora"));

            var (_, regenerateOut, _) = await RunAsync("network", "regenerate-api-key", networkId);
            using (var withOldApiKey = await server.CreateSessionAsync(new TestNetwork(networkId, oldApiKey), "dora", "device-d",
                       await server.MintAsync(firstKey, "dora")))
            {
                Assert.Contains("not known", await Envelope.AssertUnauthorizedAsync(withOldApiKey), StringComparison.Ordinal);
            }

            var network = new TestNetwork(networkId, Line(regenerateOut, "API key:"));

            await RunAsync("secure-mode", networkId, "off");
            await server.LoginAsync(network, "dora", "device-d");
            await RunAsync("secure-mode", networkId, "on");
            using (var withoutAuthToken = await server.CreateSessionAsync(network, "dora", "device-d"))
                Assert.Contains("authToken is required", await Envelope.AssertUnauthorizedAsync(withoutAuthToken), StringComparison.Ordinal);

            await RunAsync("server-key", "generate", networkId);
            await RunAsync("server-key", "generate", networkId);
            // The command ended the key on the real clock; the server's test clock started a little earlier.
            server.Clock.Advance(TimeSpan.FromMinutes(1));
            using var withEndedKey = await server.MintV3Async(firstKey, "dora");
            await Envelope.AssertUnauthorizedAsync(withEndedKey);
        }
        finally
        {
            await server.StopAsync();
        }
    }

    [Fact]
    public async Task Visitor_and_bot_modes_and_the_visitor_secret_switched_beside_a_running_server_take_effect_at_once()
    {
        var (_, createOut, _) = await RunAsync("network", "create", "Visitors");
        var networkId = createOut.Split(' ')[1];
        var network = new TestNetwork(networkId, Line(createOut, "API key:"));
        var server = new GatehouseServer { DataDirectory = _dataDirectory };
        await server.InitializeAsync();
        try
        {
            using (var off = await server.CreateVisitorSessionAsync(network, "device-v"))
                await Envelope.AssertErrorAsync(off, HttpStatusCode.Forbidden, 488999);

            var (visitorsOn, visitorsOut, _) = await RunAsync("visitor-mode", networkId, "on");
            var (botsOn, _, _) = await RunAsync("bot-mode", networkId, "on");
            using (var visitor = await server.CreateVisitorSessionAsync(network, "device-v"))
                Assert.Equal(HttpStatusCode.OK, visitor.StatusCode);
            using (var bot = await server.CreateVisitorSessionAsync(network, "crawler", "bot"))
                Assert.Equal(HttpStatusCode.OK, bot.StatusCode);
            var (visitorsOff, offOut, _) = await RunAsync("visitor-mode", networkId, "off");
            await RunAsync("secure-mode", networkId, "on");
            await RunAsync("visitor-mode", networkId, "on");
            var (generated, secretOut, _) = await RunAsync("visitor-secret", "generate", networkId);
            var secret = Line(secretOut, "Visitor secret:");
            var signature = new Gatehouse.Client.AuthTokenClient(server.Http,
                new() { Endpoint = server.BaseAddress, ServerKey = "unused", VisitorSecret = secret }).SignVisitor("device-v", server.Clock.GetUtcNow().AddHours(1));
            using var signed = await server.CreateVisitorSessionAsync(network, "device-v", authSignature: signature.AuthSignature,
                authSignatureExpiresAt: signature.AuthSignatureExpiresAt);
            var (unknown, _, unknownError) = await RunAsync("visitor-mode", "no-such-network", "on");
            var (wrong, _, _) = await RunAsync("bot-mode", networkId, "maybe");

            Assert.Equal((0, 0, 0, 0), (visitorsOn, botsOn, visitorsOff, generated));
            Assert.Contains("Visitors may open read-only sessions", visitorsOut, StringComparison.Ordinal);
            Assert.Contains("ended 1 of their session(s)", offOut, StringComparison.Ordinal);
            Assert.StartsWith("gvs_", secret, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, signed.StatusCode);
            Assert.Equal(1, unknown);
            Assert.Contains("No network with id", unknownError, StringComparison.Ordinal);
            Assert.Equal(2, wrong);
        }
        finally
        {
            await server.StopAsync();
        }
    }

    [Fact]
    public async Task Admin_create_prints_a_one_time_password_and_refuses_a_duplicate_or_a_bad_email()
    {
        var (created, output, _) = await RunAsync("admin", "create", "ops@example.com");
        var (duplicate, _, duplicateError) = await RunAsync("admin", "create", "ops@example.com");
        var (bad, _, badError) = await RunAsync("admin", "create", "not-an-email");

        Assert.Equal(0, created);
        Assert.Equal(20, Line(output, "One-time password:").Length);
        Assert.Equal(1, duplicate);
        Assert.Contains("already exists", duplicateError, StringComparison.Ordinal);
        Assert.Equal(1, bad);
        Assert.Contains("not an email address", badError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoking_the_admin_tokens_of_an_unknown_admin_is_an_error()
    {
        var (_, createOut, _) = await RunAsync("network", "create", "Ops");
        var networkId = createOut.Split(' ')[1];

        var (exit, _, error) = await RunAsync("admin-token", "revoke", networkId, "ghost@example.com");
        var (known, output, _) = await RunAsync("admin", "create", "real@example.com");
        var (revokeKnown, revokeOut, _) = await RunAsync("admin-token", "revoke", networkId, "real@example.com");

        Assert.Equal(1, exit);
        Assert.Contains("No admin with the email 'ghost@example.com'", error, StringComparison.Ordinal);
        Assert.Equal(0, known);
        Assert.Contains("One-time password", output, StringComparison.Ordinal);
        Assert.Equal(0, revokeKnown);
        Assert.Contains("Revoked 0 admin token(s).", revokeOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_networks_and_unknown_commands_are_explained()
    {
        var (missing, _, missingError) = await RunAsync("secure-mode", "000000000000000000000000", "on");
        var (unknown, _, usage) = await RunAsync("network", "explode");

        Assert.Equal(1, missing);
        Assert.Contains("No network with id", missingError, StringComparison.Ordinal);
        Assert.Equal(2, unknown);
        Assert.Contains("server-key generate", usage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Admin_token_generate_prints_a_token_the_admin_api_takes_and_the_audit_names_the_operator_and_the_admin()
    {
        var server = new GatehouseServer { DataDirectory = _dataDirectory };
        await server.InitializeAsync();
        try
        {
            var network = await server.CreateNetworkAsync();
            var admin = await server.CreateAdminAsync(network);

            var (exit, output, _) = await RunAsync("admin-token", "generate", network.Id, admin.Email, "--days", "30");
            var token = Line(output, "Admin token:");
            var (second, secondOutput, _) = await RunAsync("admin-token", "generate", network.Id, admin.Email);

            Assert.Equal(0, exit);
            Assert.StartsWith("gat_", token, StringComparison.Ordinal);
            Assert.Contains("shown only once", output, StringComparison.Ordinal);
            Assert.Contains($"It expires {DateTimeOffset.UtcNow.AddDays(30):yyyy-MM-dd}", output, StringComparison.Ordinal);
            Assert.DoesNotContain("previous token", output, StringComparison.Ordinal);
            Assert.Equal(0, second);
            Assert.Contains($"It expires {DateTimeOffset.UtcNow.AddDays(365):yyyy-MM-dd}", secondOutput, StringComparison.Ordinal);
            Assert.Contains($"The previous token of {admin.Email} keeps working for the grace period", secondOutput, StringComparison.Ordinal);
            // The first token is in its grace: both work, as after a replacement in the console.
            foreach (var each in new[] { token, Line(secondOutput, "Admin token:") })
            {
                using var users = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", each);
                Assert.Equal(HttpStatusCode.OK, users.StatusCode);
            }
            // The server now keeps both as good; a revocation from another process must still be seen at once.
            var (revoked, revokedOutput, _) = await RunAsync("admin-token", "revoke", network.Id, admin.Email);
            Assert.Equal(0, revoked);
            Assert.Contains("Revoked 2 admin token(s).", revokedOutput, StringComparison.Ordinal);
            foreach (var each in new[] { token, Line(secondOutput, "Admin token:") })
            {
                using var users = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", each);
                Assert.Contains("revoked", await Envelope.AssertUnauthorizedAsync(users), StringComparison.Ordinal);
            }

            await using var scope = server.Services.CreateAsyncScope();
            var generated = await scope.ServiceProvider.GetRequiredService<Storage.GatehouseDb>().AuditEvents
                .Where(e => e.NetworkId == network.Id && e.Kind == Audit.AuditKinds.AdminTokenGenerated).ToListAsync();
            Assert.Equal(2, generated.Count);
            Assert.All(generated, e => Assert.Equal("operator", e.Actor));
            Assert.All(generated, e => Assert.StartsWith($"admin={admin.Email} token=", e.Detail, StringComparison.Ordinal));
        }
        finally
        {
            await server.StopAsync();
        }
    }

    [Fact]
    public async Task Admin_token_generate_refuses_what_the_console_refuses_and_says_why()
    {
        var server = new GatehouseServer { DataDirectory = _dataDirectory };
        await server.InitializeAsync();
        TestNetwork network;
        Admins.Admin superAdmin, viewer, withoutSecureMode, disabled;
        try
        {
            network = await server.CreateNetworkAsync();
            superAdmin = await server.CreateAdminAsync(network, superAdmin: true);
            viewer = await server.CreateAdminAsync(network, Admins.ConsoleRole.Viewer);
            withoutSecureMode = await server.CreateAdminAsync(network, accessSecureMode: false);
            disabled = await server.CreateAdminAsync(network);
            await using var scope = server.Services.CreateAsyncScope();
            var accounts = scope.ServiceProvider.GetRequiredService<Admins.AdminAccounts>();
            await accounts.SetDisabledAsync((await accounts.FindByEmailAsync(disabled.Email))!, disabled: true, "test", origin: null);
        }
        finally
        {
            await server.StopAsync();
        }

        var (super, _, superError) = await RunAsync("admin-token", "generate", network.Id, superAdmin.Email);
        var (asViewer, _, viewerError) = await RunAsync("admin-token", "generate", network.Id, viewer.Email);
        var (noSecureMode, _, secureModeError) = await RunAsync("admin-token", "generate", network.Id, withoutSecureMode.Email);
        var (whenDisabled, _, disabledError) = await RunAsync("admin-token", "generate", network.Id, disabled.Email);
        var (unknownAdmin, _, unknownAdminError) = await RunAsync("admin-token", "generate", network.Id, "ghost@example.com");
        var (unknownNetwork, _, unknownNetworkError) = await RunAsync("admin-token", "generate", "000000000000000000000000", viewer.Email);
        var (tooLong, tooLongOutput, tooLongError) = await RunAsync("admin-token", "generate", network.Id, viewer.Email, "--days", "366");

        Assert.Equal(1, super);
        Assert.Contains($"No admin token for {superAdmin.Email}: A super admin cannot generate admin tokens.", superError, StringComparison.Ordinal);
        Assert.Equal(1, asViewer);
        Assert.Contains("not a Viewer", viewerError, StringComparison.Ordinal);
        Assert.Equal(1, noSecureMode);
        Assert.Contains("Access Secure Mode", secureModeError, StringComparison.Ordinal);
        Assert.Equal(1, whenDisabled);
        Assert.Contains($"Run: admin enable {disabled.Email}", disabledError, StringComparison.Ordinal);
        Assert.Equal(1, unknownAdmin);
        Assert.Contains("No admin with the email 'ghost@example.com'", unknownAdminError, StringComparison.Ordinal);
        Assert.Equal(1, unknownNetwork);
        Assert.Contains("No network with id", unknownNetworkError, StringComparison.Ordinal);
        Assert.Equal(2, tooLong);
        Assert.Equal("", tooLongOutput);
        Assert.Contains("--days takes a whole number of days from 1 to 365", tooLongError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_command_prints_the_usage_to_standard_error_and_opens_no_database()
    {
        var (unknown, unknownOutput, unknownError) = await RunAsync("foo");
        var (misspelt, _, misspeltError) = await RunAsync("visitor-modes", "x", "on");
        var (help, helpOutput, helpError) = await RunAsync("-h");

        Assert.Equal(2, unknown);
        Assert.Equal("", unknownOutput);
        Assert.StartsWith("Unknown command 'foo'.", unknownError, StringComparison.Ordinal);
        Assert.Contains("admin-token generate <network-id> <email> [--days N]", unknownError, StringComparison.Ordinal);
        Assert.Equal(2, misspelt);
        Assert.Contains("Unknown command 'visitor-modes'.", misspeltError, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_dataDirectory), "An unknown command must not create or migrate a database.");
        Assert.Equal(0, help);
        Assert.Contains("Usage: Gatehouse.Server", helpOutput, StringComparison.Ordinal);
        Assert.Equal("", helpError);
        Assert.False(OperatorCommands.IsCommand(["--urls", "http://127.0.0.1:0"]));
    }

    [Fact]
    public async Task The_server_executable_refuses_an_unknown_command_and_still_takes_settings_as_options()
    {
        var serverAssembly = typeof(GatehouseApp).Assembly.Location;
        var environment = new Dictionary<string, string>
        {
            ["Gatehouse__DataDirectory"] = _dataDirectory,
            // Were the word taken for configuration, the server would listen here and the run would time out.
            ["Urls"] = "http://127.0.0.1:0",
        };
        foreach (var args in new[] { new[] { "foo" }, ["visitor-modes", "x", "on"] })
        {
            var (exit, output, error) = await ExecutableRun.RunAsync(serverAssembly, args, environment, TimeSpan.FromMinutes(1));
            Assert.Equal(2, exit);
            Assert.Equal("", output);
            Assert.Contains($"Unknown command '{args[0]}'.", error, StringComparison.Ordinal);
            Assert.Contains("Usage: Gatehouse.Server", error, StringComparison.Ordinal);
        }
        Assert.False(Directory.Exists(_dataDirectory));
        foreach (var help in new[] { "--help", "-h", "help" })
        {
            var (exit, output, error) = await ExecutableRun.RunAsync(serverAssembly, [help], environment, TimeSpan.FromMinutes(1));
            Assert.Equal(0, exit);
            Assert.Contains("Usage: Gatehouse.Server", output, StringComparison.Ordinal);
            Assert.Equal("", error);
        }

        var data = Path.Combine(_dataDirectory, "data");
        await using var node = await ServerProcess.StartAsync(new ServerStart(serverAssembly, Path.Combine(_dataDirectory, "work"),
            new Dictionary<string, string>(), Arguments: ["--urls", "http://127.0.0.2:0", $"--Gatehouse:DataDirectory={data}"]));
        Assert.Equal("127.0.0.2", node.BaseAddress.Host);
        Assert.True(File.Exists(Path.Combine(data, "gatehouse.db")), node.Output);
    }

    [Fact]
    public async Task Bad_configuration_is_refused_with_a_message_per_setting()
    {
        var (exit, _, error) = await RunAsync(new Dictionary<string, string?>
        {
            ["Gatehouse:Region"] = "mars",
            ["Gatehouse:ServerKeyGracePeriod"] = "1.00:00:01",
        }, "network", "list");

        Assert.Equal(2, exit);
        Assert.Contains("Gatehouse:Region is 'mars'", error, StringComparison.Ordinal);
        Assert.Contains("Gatehouse:ServerKeyGracePeriod", error, StringComparison.Ordinal);

        var failure = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using var app = GatehouseApp.Build([], builder => builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Gatehouse:DataDirectory"] = _dataDirectory,
                ["Gatehouse:Sessions:MaxPerUserAndDevice"] = "0",
            }));
            await GatehouseApp.InitializeAsync(app, TextWriter.Null);
        });
        Assert.Contains(failure.Failures, f => f.Contains("Gatehouse:Sessions:MaxPerUserAndDevice", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_server_reads_its_configuration_files_once_and_watches_none()
    {
        // A watched appsettings.json watched the whole folder beside the binary, ./data too when the server is
        // started from there: every database write then woke a watcher thread (docs/benchmarks.md, change 33).
        await using var app = GatehouseApp.Build([], builder => builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Gatehouse:DataDirectory"] = _dataDirectory,
        }));

        var files = ((IConfigurationRoot)app.Configuration).Providers.OfType<FileConfigurationProvider>().ToList();
        Assert.Contains(files, f => f.Source.Path == "appsettings.json");
        Assert.All(files, f => Assert.False(f.Source.ReloadOnChange, $"{f.Source.Path} is watched"));
    }

    [Fact]
    public async Task A_value_that_does_not_parse_and_an_unreadable_connection_string_are_one_line_each_and_exit_2()
    {
        var (badValue, _, valueError) = await RunAsync(new Dictionary<string, string?> { ["Gatehouse:Sessions:AccessTokenLifetime"] = "thirty-days" },
            "network", "list");
        var (badString, _, stringError) = await RunAsync(new Dictionary<string, string?>
        {
            ["Gatehouse:Database:Provider"] = "PostgreSQL",
            ["Gatehouse:Database:ConnectionString"] = "Host=db;Password=hunter2;Bogus Keyword=1",
            ["Gatehouse:KeyEncryption:Key"] = PostgresServer.KeyEncryptionKey,
        }, "network", "list");

        Assert.Equal(2, badValue);
        Assert.Equal("Failed to convert configuration value 'thirty-days' at 'Gatehouse:Sessions:AccessTokenLifetime' to type 'System.TimeSpan'.",
            valueError.Trim());
        Assert.Equal(2, badString);
        Assert.StartsWith("Gatehouse:Database:ConnectionString cannot be read:", stringError.Trim(), StringComparison.Ordinal);
        Assert.Single(stringError.Trim().Split('\n'));
        Assert.DoesNotContain("hunter2", stringError, StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task First_start_can_write_its_secrets_to_an_owner_only_file_instead_of_the_terminal()
    {
        var secrets = Path.Combine(_dataDirectory, "first-start.txt");
        var server = new GatehouseServer { DataDirectory = _dataDirectory };
        server.Settings["Gatehouse:Bootstrap:SecretsFile"] = secrets;
        await server.InitializeAsync();
        await server.StopAsync();

        Assert.Contains($"are in {secrets}", server.ConsoleOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("One-time password", server.ConsoleOutput, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(secrets));
        var written = await File.ReadAllTextAsync(secrets);
        Assert.Equal(20, Line(written, "One-time password:").Length);
        Assert.StartsWith("sg_", Line(written, "API key:"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_self_signed_certificate_covers_the_configured_host_name_and_a_client_trusting_it_connects_by_that_name()
    {
        string Thumbprint(GatehouseServer s) => s.Services.GetRequiredService<Gatehouse.Server.Certificates.ServerCertificate>().Certificate.Thumbprint;
        var named = new GatehouseServer { DataDirectory = _dataDirectory };
        named.Settings["Gatehouse:Https:SelfSignedNames:0"] = "gatehouse.example.test";
        await named.InitializeAsync();
        var certificate = named.Services.GetRequiredService<Gatehouse.Server.Certificates.ServerCertificate>().Certificate;
        var first = certificate.Thumbprint;
        var port = named.HttpsAddress.Port;

        // As `curl --cacert server.crt.pem https://gatehouse.example.test:<port>/readyz` would: the name resolves to this
        // machine, and the certificate is the only trusted root; the host name must match it.
        using var trusted = X509CertificateLoader.LoadCertificate(certificate.RawData);
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                await socket.ConnectAsync(IPAddress.Loopback, port, ct);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            },
            SslOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, CustomTrustStore = { trusted } },
            },
        };
        using var client = new HttpClient(handler);
        using var ready = await client.GetAsync(new Uri($"https://gatehouse.example.test:{port}/readyz"));
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        await named.StopAsync();

        var same = new GatehouseServer { DataDirectory = _dataDirectory };
        same.Settings["Gatehouse:Https:SelfSignedNames:0"] = "gatehouse.example.test";
        await same.InitializeAsync();
        Assert.Equal(first, Thumbprint(same));
        await same.StopAsync();
        var renamed = new GatehouseServer { DataDirectory = _dataDirectory };
        renamed.Settings["Gatehouse:Https:SelfSignedNames:0"] = "gatehouse.example.org";
        await renamed.InitializeAsync();
        Assert.NotEqual(first, Thumbprint(renamed));
        await renamed.StopAsync();
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_backup_taken_while_the_server_runs_restores_every_key_token_and_the_https_certificate()
    {
        var backup = Path.Combine(_dataDirectory + "-backup", "monday");
        try
        {
            var before = new GatehouseServer { DataDirectory = _dataDirectory };
            await before.InitializeAsync();
            var network = await before.CreateNetworkAsync(secureMode: true);
            var serverKey = await before.GenerateServerKeyAsync(network);
            var session = await before.LoginAsync(network, "rita", "device-r", await before.MintAsync(serverKey, "rita"));
            var jwks = await before.Http.GetStringAsync("/.well-known/jwks.json");
            var thumbprint = before.Services.GetRequiredService<Gatehouse.Server.Certificates.ServerCertificate>().Certificate.Thumbprint;

            var (backedUp, backupOut, backupError) = await RunAsync("backup", backup);
            var afterBackup = await before.CreateNetworkAsync();
            await before.StopAsync();
            var (restored, restoreOut, _) = await RunAsync("restore", backup);

            Assert.True(backedUp == 0, backupError);
            Assert.Contains("Backed up to", backupOut, StringComparison.Ordinal);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(backup));
            Assert.All(Directory.GetFiles(backup, "*", SearchOption.AllDirectories),
                f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));
            Assert.Equal(0, restored);
            var movedAside = Line(restoreOut, "What was there is in").TrimEnd('.');
            Assert.True(File.Exists(Path.Combine(movedAside, "gatehouse.db")));

            var after = new GatehouseServer { DataDirectory = _dataDirectory };
            await after.InitializeAsync();
            await AssertRestoredAsync(after, network, serverKey, session, jwks, thumbprint, afterBackup);
            await after.StopAsync();
        }
        finally
        {
            GatehouseServer.DeleteDataDirectory(_dataDirectory + "-backup");
        }
    }

    private static async Task AssertRestoredAsync(GatehouseServer after, TestNetwork network, string serverKey, System.Text.Json.Nodes.JsonNode session,
        string jwks, string thumbprint, TestNetwork afterBackup)
    {
        Assert.Equal(jwks, await after.Http.GetStringAsync("/.well-known/jwks.json"));
        Assert.Equal(thumbprint, after.Services.GetRequiredService<Gatehouse.Server.Certificates.ServerCertificate>().Certificate.Thumbprint);
        using var me = await after.GetWithBearerAsync("/api/v3/users/me", session["accessToken"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        using var refreshed = await after.RefreshAsync(network, session["refreshToken"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        await after.LoginAsync(network, "sam", "device-s", await after.MintAsync(serverKey, "sam"));
        await using var scope = after.Services.CreateAsyncScope();
        Assert.Null(await scope.ServiceProvider.GetRequiredService<Gatehouse.Server.Networks.NetworkAdministration>().FindAsync(afterBackup.Id));
    }

    [Fact]
    public async Task A_command_that_returns_right_after_a_server_request_is_still_seen_by_the_next_one()
    {
        // The server reads the signal file at most every few milliseconds; a command returning within that window
        // would otherwise leave the next request on the reading taken just before the command's write.
        Directory.CreateDirectory(_dataDirectory);
        var settings = Options.Create(new Gatehouse.Server.Configuration.GatehouseOptions { DataDirectory = _dataDirectory });
        var server = new Gatehouse.Server.Storage.CommittedWrites(settings);
        var command = new Gatehouse.Server.Storage.CommittedWrites(settings) { SignalsTheServer = true };
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var before = server.VersionOf(["Networks"]);
            command.Committed("Networks");
            await command.SignalSeenAsync();
            Assert.NotEqual(before, server.VersionOf(["Networks"]));
        }
    }

    private Task<(int Exit, string Output, string Error)> RunAsync(params string[] args) => RunAsync([], args);

    private async Task<(int Exit, string Output, string Error)> RunAsync(Dictionary<string, string?> settings, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await OperatorCommands.RunAsync(args, output, error, builder =>
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>(settings) { ["Gatehouse:DataDirectory"] = _dataDirectory }));
        return (exit, output.ToString(), error.ToString());
    }

    private static string Line(string text, string label) =>
        text.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith(label, StringComparison.Ordinal))[label.Length..].Trim();
}
