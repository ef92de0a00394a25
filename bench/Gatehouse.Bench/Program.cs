using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Gatehouse.Bench;
using Gatehouse.Server;
using Gatehouse.Server.Admins;
using Gatehouse.Server.AdminTokens;
using Gatehouse.Server.Certificates;
using Gatehouse.Server.Networks;
using Gatehouse.Server.Operations;
using Gatehouse.Server.ServerKeys;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// Usage: dotnet run -c Release --project bench/Gatehouse.Bench -- [seconds per run] [connections,…] [only workloads whose name contains this]
//        dotnet run -c Release --project bench/Gatehouse.Bench -- scale [seconds per run]
//        dotnet run -c Release --project bench/Gatehouse.Bench -- wrk [seconds per run] [connections] [only workloads whose name contains this]
var scale = args.Length > 0 && args[0] == "scale";
if (scale)
    args = [args.Length > 1 ? args[1] : "10", "64", "Bearer"];
// The same servers, seeding and workloads, each driven by wrk (bench/wrk/*.lua) instead of the C# generator.
var withWrk = args.Length > 0 && args[0] == "wrk";
if (withWrk)
    args = [args.Length > 1 ? args[1] : "8", args.Length > 2 ? args[2] : "64", args.Length > 3 ? args[3] : ""];
var seconds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5;
var connectionCounts = args.Length > 1 ? args[1].Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToArray() : [1, 64];
var only = args.Length > 2 ? args[2] : "";
var work = Directory.CreateTempSubdirectory("gatehouse-bench").FullName;
Console.WriteLine($"Gatehouse bench{(withWrk ? " with wrk" : "")}: {seconds} s per run after a {Load.WarmUpSeconds} s warm-up, connections {string.Join(", ", connectionCounts)}, {Environment.ProcessorCount} cores");

// BENCH_NODES=2: a second Gatehouse on the same database, and each workload measured on one node and then again with
// wrk's connections split between the two. Nodes share a database only on PostgreSQL.
var nodeCount = Environment.GetEnvironmentVariable("BENCH_NODES") is { Length: > 0 } nodesSetting
    ? int.Parse(nodesSetting, CultureInfo.InvariantCulture) : 1;
if (nodeCount is not (1 or 2) || (nodeCount == 2 && !(withWrk && BenchServer.OnPostgreSql)))
    throw new InvalidOperationException("BENCH_NODES is 1 or 2, and 2 needs PostgreSQL and wrk: BENCH_DATABASE=postgres BENCH_NODES=2 bench/run.sh wrk");
Console.WriteLine(BenchServer.OnPostgreSql ? "Database: PostgreSQL (GATEHOUSE_BENCH_POSTGRES)" : "Database: SQLite (synchronous=FULL)");
await using var gatehouse = await BenchServer.StartAsync(typeof(OperatorCommands).Assembly.Location, work, "/readyz", https: true);
// Started once the first node has migrated the database, with a data folder of its own as a second machine would have.
await using var secondNode = nodeCount == 2
    ? await BenchServer.StartAsync(typeof(OperatorCommands).Assembly.Location, Path.Combine(work, "node-2"), "/readyz", https: true)
    : null;
// In a folder of its own: ASP.NET Core watches its content root (the working directory) with every subfolder;
// sharing Gatehouse's, the baseline's watcher thread woke at each write to Gatehouse's database
// (docs/benchmarks.md, change 33).
await using var baseline = await BenchServer.StartAsync(Path.Combine(AppContext.BaseDirectory, "Gatehouse.Bench.Baseline.dll"),
    Path.Combine(work, "baseline"), "/baseline");

// Seeding goes through the operator commands on the same database, as an operator would.
async Task<string> OperatorAsync(params string[] command)
{
    using var output = new StringWriter();
    var exit = await OperatorCommands.RunAsync(command, output, Console.Error, builder =>
        builder.Configuration.AddInMemoryCollection(BenchServer.Settings(work, ":")));
    return exit == 0 ? output.ToString() : throw new InvalidOperationException($"{string.Join(' ', command)} failed");
}
string Field(string text, string label) => text.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith(label, StringComparison.Ordinal))[label.Length..].Trim();

var open = await OperatorAsync("network", "create", "bench-open");
var openKey = Field(open, "API key:");
var openId = open.Split(' ')[1];
var secure = await OperatorAsync("network", "create", "bench-secure");
var secureId = secure.Split(' ')[1];
await OperatorAsync("secure-mode", secureId, "on");
var serverKey = Field(await OperatorAsync("server-key", "generate", secureId), "Server key:");

// An admin token and a client certificate have no operator command (they are the console's), so they are
// made with the server's own services on the same database, as the console would.
var (adminToken, mtlsServerKey, clientCertificate, clientKeyPem) = await SeedWithServicesAsync();
HttpClient MtlsClient(int connections)
{
    var handler = Load.Handler(connections);
    handler.SslOptions.ClientCertificates = [clientCertificate];
    // The load generator measures the server, not its identity: the self-signed certificate of the process it
    // started on 127.0.0.1 is taken as is (the tests pin it; see MtlsTests).
    handler.SslOptions.RemoteCertificateValidationCallback = (_, presented, _, _) => presented is not null;
    return Load.Client(gatehouse.HttpsAddress!, handler);
}

/// The server's own services on the bench's database, for what has no operator command.
async Task<T> WithServicesAsync<T>(Func<IServiceProvider, Task<T>> action)
{
    var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = AppContext.BaseDirectory });
    builder.Logging.ClearProviders();
    builder.Configuration.AddInMemoryCollection(BenchServer.Settings(work, ":"));
    builder.Services.AddGatehouseCore();
    using var host = builder.Build();
    await host.StartAsync();
    await host.Services.GetRequiredService<CertificateAuthority>().LoadAsync();
    try
    {
        await using var scope = host.Services.CreateAsyncScope();
        return await action(scope.ServiceProvider);
    }
    finally
    {
        await host.StopAsync();
    }
}

Task<(string AdminToken, string ServerKey, X509Certificate2 Certificate, string KeyPem)> SeedWithServicesAsync() => WithServicesAsync(async services =>
    {
        var networks = services.GetRequiredService<NetworkAdministration>();
        var accounts = services.GetRequiredService<AdminAccounts>();
        var (admin, _, adminError) = await accounts.CreateAsync("bench@example.com", superAdmin: false, "bench");
        await accounts.SetMembershipAsync(admin?.Id ?? throw new InvalidOperationException(adminError?.Message), openId, ConsoleRole.Admin, true, "bench");
        var (token, tokenError) = await services.GetRequiredService<AdminTokenService>().GenerateAsync(admin, openId, TimeSpan.FromDays(1), false, null);

        var mtls = await networks.CreateAsync("bench-mtls", "bench");
        await networks.SetSecureModeAsync(mtls, true, "bench");
        var (key, _) = await services.GetRequiredService<ServerKeyService>().GenerateAsync(mtls, "bench");
        using var privateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest("CN=bench", privateKey, HashAlgorithmName.SHA256).CreateSigningRequestPem();
        var certificates = services.GetRequiredService<ClientCertificates>();
        var (issued, certificateError) = await certificates.CreateAsync(mtls, "bench", csr, "bench");
        if (issued is null || await certificates.SetMtlsAsync(mtls, true, "bench") is not null)
            throw new InvalidOperationException(certificateError?.Message ?? "mTLS could not be turned on");
        using var ephemeral = X509Certificate2.CreateFromPem(issued.CertificatePem, privateKey.ExportPkcs8PrivateKeyPem());
        var certificate = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
        return (token ?? throw new InvalidOperationException(tokenError?.Message), key!, certificate, privateKey.ExportPkcs8PrivateKeyPem());
    });

/// Live sessions written straight into the database (10 per user, as users with several devices), in batches.
Task<int> FillSessionsAsync(int liveSessions) => WithServicesAsync(async services =>
{
    var db = services.GetRequiredService<Gatehouse.Server.Storage.GatehouseDb>();
    var present = await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.Sessions);
    var now = DateTimeOffset.UtcNow;
    for (var next = present; next < liveSessions; next += 10_000)
    {
        for (var i = next; i < Math.Min(next + 10_000, liveSessions); i += 10)
        {
            var user = new Gatehouse.Server.Users.User
            {
                Id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12)),
                NetworkId = openId,
                UserId = $"scale-{i / 10}",
                CreatedAt = now,
                UpdatedAt = now,
            };
            db.Users.Add(user);
            for (var device = 0; device < 10 && i + device < liveSessions; device++)
            {
                db.Sessions.Add(new Gatehouse.Server.Sessions.Session
                {
                    Id = Guid.CreateVersion7(),
                    NetworkId = openId,
                    UserRef = user.Id,
                    DeviceId = $"scale-device-{i + device}",
                    CreatedAt = now,
                    ExpiresAt = now.AddDays(30),
                });
            }
        }
        await db.SaveChangesAsync();
        db.ChangeTracker.Clear();
    }
    return liveSessions;
});

var maxConnections = connectionCounts.Max();
using var seeding = Load.Client(gatehouse.BaseAddress, maxConnections);
async Task<JsonNode> LoginAsync(string userId, string deviceId)
{
    using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v5/sessions") { Content = JsonContent.Create(new { userId, deviceId }) };
    request.Headers.Add("x-api-key", openKey);
    using var response = await seeding.SendAsync(request);
    response.EnsureSuccessStatusCode();
    return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
}

var bearer = new string[maxConnections];
var refresh = new string[maxConnections];
for (var w = 0; w < maxConnections; w++)
{
    var session = await LoginAsync($"reader-{w}", $"reader-device-{w}");
    bearer[w] = session["accessToken"]!.GetValue<string>();
    session = await LoginAsync($"refresher-{w}", $"refresher-device-{w}");
    refresh[w] = session["refreshToken"]!.GetValue<string>();
}

var newUsers = 0;
var workloads = new List<Workload>
{
    // Gatehouse's own host with nothing to do: its middleware, routing and metrics against the bare baseline.
    new("Gatehouse pipeline only (GET /healthz)", gatehouse, (client, w, timing) => client.GetAsync("/healthz")),
    new("Auth-token mint (v3, server key)", gatehouse, (client, w, timing) =>
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v3/authentication/token?userId=user-{w}");
        request.Headers.Add("x-server-key", serverKey);
        return client.SendAsync(request);
    }),
    new("Auth-token mint over mTLS (v3, client certificate, TLS connections reused)", gatehouse, (client, w, timing) =>
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v3/authentication/token?userId=user-{w}");
        request.Headers.Add("x-server-key", mtlsServerKey);
        return client.SendAsync(request);
    }, MtlsClient),
    new("Admin API: one user (x-admin-token)", gatehouse, (client, w, timing) =>
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v4/admin/users/reader-{w}");
        request.Headers.Add("x-admin-token", adminToken);
        return client.SendAsync(request);
    }),
    new("Session creation, new users (durable)", gatehouse, (client, w, timing) =>
    {
        var n = Interlocked.Increment(ref newUsers);
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v5/sessions") { Content = JsonContent.Create(new { userId = $"new-{n}", deviceId = $"new-device-{n}" }) };
        request.Headers.Add("x-api-key", openKey);
        return client.SendAsync(request);
    }),
    new("Session creation, returning users", gatehouse, (client, w, timing) =>
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v5/sessions") { Content = JsonContent.Create(new { userId = $"returning-{w}", deviceId = $"returning-device-{w}" }) };
        request.Headers.Add("x-api-key", openKey);
        return client.SendAsync(request);
    }),
    new("Bearer validation (GET /api/v3/users/me)", gatehouse, (client, w, timing) =>
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/api/v3/users/me");
        request.Headers.Authorization = new("Bearer", bearer[w]);
        return client.SendAsync(request);
    }),
    new("Refresh (rotating)", gatehouse, async (client, w, timing) =>
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v4/sessions/refresh") { Content = JsonContent.Create(new { refreshToken = refresh[w] }) };
        request.Headers.Add("x-api-key", openKey);
        var response = await client.SendAsync(request);
        if (response.IsSuccessStatusCode)
        {
            await response.Content.LoadIntoBufferAsync();
            refresh[w] = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["refreshToken"]!.GetValue<string>();
        }
        return response;
    }),
    new("Secure logout (each call a fresh session)", gatehouse, async (client, w, timing) =>
    {
        // The session is opened first and only the logout is timed.
        using var login = new HttpRequestMessage(HttpMethod.Post, "/api/v5/sessions") { Content = JsonContent.Create(new { userId = $"leaver-{w}", deviceId = $"leaver-device-{w}" }) };
        login.Headers.Add("x-api-key", openKey);
        using var opened = await client.SendAsync(login);
        var token = JsonNode.Parse(await opened.Content.ReadAsStringAsync())!["accessToken"]!.GetValue<string>();
        timing.Restart();
        var request = new HttpRequestMessage(HttpMethod.Delete, "/api/v4/sessions");
        request.Headers.Authorization = new("Bearer", token);
        return await client.SendAsync(request);
    }),
};

var rows = new List<string>();
if (withWrk)
{
    await RunWithWrkAsync();
    return;
}
var baselineWorkload = new Workload("Baseline (fixed JSON)", baseline, (client, _, timing) => client.GetAsync("/baseline"));
if (scale)
{
    // Validation with 10,000 and then 1,000,000 live sessions in the database, the memory after each, and the
    // time a second server process needs to be ready on the 1,000,000-session database.
    var bearerWorkload = workloads.Single(w => w.Name.StartsWith("Bearer", StringComparison.Ordinal));
    var memory = new List<string>();
    foreach (var liveSessions in new[] { 10_000, 1_000_000 })
    {
        var filling = System.Diagnostics.Stopwatch.StartNew();
        await FillSessionsAsync(liveSessions);
        Console.Error.WriteLine($"  {liveSessions:N0} live sessions written in {filling.Elapsed.TotalSeconds:0} s");
        // As in the table below: the baseline again just before each run.
        var reference = await Load.RunAsync(baselineWorkload, 64, seconds);
        if (rows.Count == 0)
            rows.Add(reference.Row(reference));
        rows.Add((await Load.RunAsync(bearerWorkload with { Name = $"{bearerWorkload.Name}, {liveSessions:N0} live sessions" }, 64, seconds)).Row(reference));
        memory.Add($"Gatehouse RSS with {liveSessions:N0} live sessions: {gatehouse.ResidentMegabytes():0} MiB");
    }
    var starting = System.Diagnostics.Stopwatch.StartNew();
    await using (await BenchServer.StartAsync(typeof(OperatorCommands).Assembly.Location, work, "/readyz"))
        memory.Add($"A second server process ready on the 1,000,000-session database in {starting.Elapsed.TotalSeconds:0.0} s");
    Console.WriteLine();
    Console.WriteLine(Result.Header);
    rows.ForEach(Console.WriteLine);
    Console.WriteLine();
    memory.ForEach(Console.WriteLine);
    Directory.Delete(work, recursive: true);
    return;
}
foreach (var connections in connectionCounts)
{
    var listed = false;
    foreach (var workload in workloads.Where(w => w.Name.Contains(only, StringComparison.OrdinalIgnoreCase)))
    {
        // The baseline again just before each workload, and the ratio to that run: what other tenants take from
        // a shared machine drifts within minutes, and one baseline for a whole table let it move ratios by half.
        var reference = await Load.RunAsync(baselineWorkload, connections, seconds);
        if (!listed)
            rows.Add(reference.Row(reference));
        listed = true;
        rows.Add((await Load.RunAsync(workload, connections, seconds)).Row(reference));
    }
}

Console.WriteLine();
Console.WriteLine(Result.Header);
rows.ForEach(Console.WriteLine);
Console.WriteLine();
Console.WriteLine($"Gatehouse RSS after the run: {gatehouse.ResidentMegabytes():0} MiB; baseline: {baseline.ResidentMegabytes():0} MiB");
Directory.Delete(work, recursive: true);

// The wrk mode: for each workload, the baseline with wrk and then the workload with wrk, as above. What the
// scripts need comes in environment variables, and the per-worker tokens in files in the temp work dir.
async Task RunWithWrkAsync()
{
    // wrk gives each thread connections / threads: the row shows the connections it really opened.
    var connections = connectionCounts[0] / Wrk.Threads(connectionCounts[0]) * Wrk.Threads(connectionCounts[0]);
    await File.WriteAllLinesAsync(Path.Combine(work, "bearer.txt"), bearer);
    // Each wrk run (the warm-up and the timed run) starts with fresh refresh chains, one per worker: a run's
    // last rotations are lost when wrk stops with requests in flight.
    async Task FreshRefreshChainsAsync()
    {
        var chains = new string[connections];
        for (var w = 0; w < connections; w++)
            chains[w] = (await LoginAsync($"refresher-{w}", $"refresher-device-{w}"))["refreshToken"]!.GetValue<string>();
        await File.WriteAllLinesAsync(Path.Combine(work, "refresh.txt"), chains);
    }
    // Sessions for the logout-alone workload, written before each wrk run, each on a device of its own (so that no
    // login ends another by the per-device cap), opened 64 at a time. Enough for 8,000 logouts a second, above any
    // rate measured here (logins alone reach about 4,600/s): should a run end them all, the script sends a token
    // that cannot be valid, and the shortfall shows as non-2xx answers instead of hiding.
    const int LogoutsPerSecondAtMost = 8_000;
    var sessionsToEnd = 0;
    async Task SessionsToEndAsync(int runSeconds)
    {
        var batch = Interlocked.Increment(ref sessionsToEnd);
        var tokens = new string[runSeconds * LogoutsPerSecondAtMost];
        await Parallel.ForEachAsync(Enumerable.Range(0, tokens.Length), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (i, _) =>
            tokens[i] = (await LoginAsync($"departing-{i % connections}", $"departing-device-{batch}-{i}"))["accessToken"]!.GetValue<string>());
        await File.WriteAllLinesAsync(Path.Combine(work, "logout.txt"), tokens);
    }
    var environment = new Dictionary<string, string>
    {
        ["GATEHOUSE_WRK_FILES"] = work,
        ["GATEHOUSE_API_KEY"] = openKey,
        ["GATEHOUSE_SERVER_KEY"] = serverKey,
        ["GATEHOUSE_ADMIN_TOKEN"] = adminToken,
    };
    // wrk cannot present a client certificate of its own; bench/run.sh builds bench/wrk/client-cert.c, which wrk
    // loads for this workload only and which gives its TLS connections the bench network's certificate.
    Dictionary<string, string>? MtlsEnvironment()
    {
        if (Environment.GetEnvironmentVariable("GATEHOUSE_WRK_CLIENT_CERT_SHIM") is not { Length: > 0 } shim)
            return null;
        var certificateFile = Path.Combine(work, "client-certificate.pem");
        var keyFile = Path.Combine(work, "client-key.pem");
        File.WriteAllText(certificateFile, clientCertificate.ExportCertificatePem());
        File.WriteAllText(keyFile, clientKeyPem);
        return new()
        {
            ["LD_PRELOAD"] = shim,
            ["GATEHOUSE_WRK_CLIENT_CERT"] = certificateFile,
            ["GATEHOUSE_WRK_CLIENT_KEY"] = keyFile,
            ["GATEHOUSE_MTLS_SERVER_KEY"] = mtlsServerKey,
        };
    }
    var mtlsEnvironment = MtlsEnvironment();
    var reference = new WrkWorkload("Baseline (fixed JSON)", baseline, "baseline.lua");
    // The names are the C# generator's, so that a filter picks the same rows in both modes.
    var measured = new List<WrkWorkload>
    {
        new("Gatehouse pipeline only (GET /healthz)", gatehouse, "healthz.lua"),
        new("Auth-token mint (v3, server key)", gatehouse, "mint.lua"),
        new("Auth-token mint over mTLS (v3, client certificate, TLS connections reused)", gatehouse, "mint-mtls.lua",
            NotMeasurable: mtlsEnvironment is null ? "not measured: wrk needs bench/run.sh's client-certificate shim (GATEHOUSE_WRK_CLIENT_CERT_SHIM)" : null,
            Https: true, Environment: mtlsEnvironment, OneRun: true),
        new("Admin API: one user (x-admin-token)", gatehouse, "admin.lua"),
        new("Session creation, new users (durable)", gatehouse, "login-new.lua"),
        new("Session creation, returning users", gatehouse, "login-returning.lua"),
        new("Bearer validation (GET /api/v3/users/me)", gatehouse, "bearer.lua"),
        new("Refresh (rotating)", gatehouse, "refresh.lua", _ => FreshRefreshChainsAsync()),
        new("Bearer validation while other sessions refresh (1 request in 10 a refresh)", gatehouse, "bearer-refresh.lua", _ => FreshRefreshChainsAsync()),
        new("Secure logout (login+logout pairs; requests/s = pairs/s, latency over both)", gatehouse, "logout.lua", CountedBy: "logouts"),
        // Last: the tens of thousands of sessions it opens first would otherwise be in every later row's database.
        new("Secure logout alone (sessions opened before the run)", gatehouse, "logout-alone.lua", SessionsToEndAsync, OneRun: true),
    };
    // The machine's speed drifts in spells of ten seconds and more (the bare baseline read 37,000/s for 16 s, then
    // 55,000/s for 20 s, docs/benchmarks.md, change 72): each workload's run is cut into slices taken in turn with
    // the baseline's (B W, W B, B W, W B), so that both sides see the same spells. BENCH_WRK_SLICES=1 gives one
    // baseline run and then one workload run (bench/profile.sh, whose recording must hold the workload alone).
    var slices = Environment.GetEnvironmentVariable("BENCH_WRK_SLICES") is { Length: > 0 } slicesSetting
        ? int.Parse(slicesSetting, CultureInfo.InvariantCulture) : 4;
    if (slices < 1 || slices > seconds)
        throw new InvalidOperationException($"BENCH_WRK_SLICES is between 1 and the seconds per run ({seconds})");
    var sliceSeconds = seconds / slices;
    var baselineWarm = false;
    var listed = false;
    async Task MeasureAsync(WrkWorkload workload)
    {
        if (workload.NotMeasurable is { } reason)
        {
            rows.Add(Result.Unmeasured(workload.Name, connections, reason));
            return;
        }
        if (!baselineWarm && await Wrk.WarmUpAsync(reference, environment, connections) is { } failed)
            throw new InvalidOperationException($"the baseline failed its check: {failed}");
        baselineWarm = true;
        if (await Wrk.WarmUpAsync(workload, environment, connections) is { } failure)
        {
            rows.Add(Result.Unmeasured(workload.Name, connections, $"not measured: {failure.Replace("|", "\\|", StringComparison.Ordinal)}"));
            return;
        }
        var baselineSlices = new List<Slice>();
        var workloadSlices = new List<Slice>();
        if (workload.OneRun && slices > 1)
        {
            // Each wrk run opens its connections anew: in 2 s slices the mTLS mint's handshakes (a client certificate
            // checked on each) cost it 70-95 µs a request against 61-67 µs in one run, and its p99 went from about
            // 10 ms to 50-110 ms (docs/benchmarks.md, change 72). It keeps one run ("TLS connections reused"), with
            // the baseline's seconds split before and after it. The logout alone too: in slices it ran out of the
            // sessions opened for it (68,632 errors in the thirty-second session's first sliced table).
            baselineSlices.Add(await Wrk.SliceAsync(reference, environment, connections, Math.Max(1, seconds / 2)));
            workloadSlices.Add(await Wrk.SliceAsync(workload, environment, connections, seconds));
            baselineSlices.Add(await Wrk.SliceAsync(reference, environment, connections, Math.Max(1, seconds / 2)));
        }
        else
        {
            for (var slice = 0; slice < slices; slice++)
            {
                foreach (var baselineTurn in slice % 2 == 0 ? new[] { true, false } : [false, true])
                {
                    if (baselineTurn)
                        baselineSlices.Add(await Wrk.SliceAsync(reference, environment, connections, sliceSeconds));
                    else
                        workloadSlices.Add(await Wrk.SliceAsync(workload, environment, connections, sliceSeconds));
                }
            }
        }
        var around = Wrk.Combine(reference.Name, connections, baselineSlices);
        if (!listed)
            rows.Add(around.Row(around));
        listed = true;
        rows.Add(Wrk.Combine(workload.Name, connections, workloadSlices).Row(around));
    }
    foreach (var workload in measured.Where(w => w.Name.Contains(only, StringComparison.OrdinalIgnoreCase)))
    {
        await MeasureAsync(workload);
        // Right after the one-node row, so that both see the same spell of the machine.
        if (secondNode is not null)
            await MeasureAsync(workload with { Name = $"{workload.Name}, two nodes", SecondNode = secondNode });
    }

    Console.WriteLine();
    Console.WriteLine($"wrk -t{Wrk.Threads(connections)} -c{connections} --latency, each workload's {seconds} s in {slices} slice(s) of {sliceSeconds} s taken in turn with the baseline's"
        + " (its \"baseline requests/s\" is theirs; p50 the median slice's, p99 the worst slice's"
        + (slices > 1 && measured.Where(w => w.OneRun).Select(w => w.Name).ToList() is { Count: > 0 } oneRun
            ? $"; in one run between two halves of the baseline's: {string.Join("; ", oneRun)})"
            : ")")
        + (secondNode is null ? ":" : "; \"two nodes\": wrk's second thread and its connections sent to a second node on the same database, CPU and KB both nodes' together:"));
    Console.WriteLine();
    Console.WriteLine(Result.Header);
    rows.ForEach(Console.WriteLine);
    Console.WriteLine();
    Console.WriteLine($"Gatehouse RSS after the run: {gatehouse.ResidentMegabytes():0} MiB{(secondNode is null ? "" : $", second node {secondNode.ResidentMegabytes():0} MiB")}; baseline: {baseline.ResidentMegabytes():0} MiB");
    Console.WriteLine($"Gatehouse memory after the run: {await MemoryBreakdownAsync()}");
    // What an idle node gives back: the server GC trims its heaps only on its own schedule.
    await Task.Delay(TimeSpan.FromSeconds(30));
    Console.WriteLine($"Gatehouse RSS after 30 s idle: {gatehouse.ResidentMegabytes():0} MiB; {await MemoryBreakdownAsync()}");
    if (Environment.GetEnvironmentVariable("BENCH_GCDUMP") is { Length: > 0 } dump)
        await GcDumpAsync(dump);
    Directory.Delete(work, recursive: true);
}

// What the live heap holds after the table, type by type: dotnet-gcdump (a local tool of the repository) forces a
// collection in the server and walks what survives it; `dotnet dotnet-gcdump report <file>` lists the types.
async Task GcDumpAsync(string path)
{
    using var collect = System.Diagnostics.Process.Start("dotnet",
        ["dotnet-gcdump", "collect", "-p", gatehouse.ProcessId.ToString(CultureInfo.InvariantCulture), "-o", path])
        ?? throw new InvalidOperationException("dotnet-gcdump did not start");
    await collect.WaitForExitAsync();
    Console.WriteLine(collect.ExitCode == 0
        ? $"Gatehouse heap dump: {path} (dotnet dotnet-gcdump report {path})"
        : $"dotnet-gcdump failed ({collect.ExitCode}); run dotnet tool restore first");
}

// The runtime's own figures from /metrics: what the managed heap holds, what the GC keeps committed, and the rest of
// the resident memory (code, native libraries such as SQLite's page cache, thread stacks, Kestrel's buffers).
async Task<string> MemoryBreakdownAsync()
{
    var metric = await RuntimeMetrics.ReadAsync(gatehouse) ?? throw new InvalidOperationException("Gatehouse served no /metrics");
    return $"managed heap after the last GC {metric("dotnet_gc_last_collection_heap_size_bytes") / 1024 / 1024:0} MiB, "
        + $"GC committed {metric("dotnet_gc_last_collection_memory_committed_size_bytes") / 1024 / 1024:0} MiB, "
        + $"working set {metric("dotnet_process_memory_working_set_bytes") / 1024 / 1024:0} MiB";
}
