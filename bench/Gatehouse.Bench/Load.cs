using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Gatehouse.Testing;

namespace Gatehouse.Bench;

/// <summary>One workload; <paramref name="CreateClient"/> replaces the plain HTTP client (for mTLS, say), given the connection count.</summary>
public sealed record Workload(string Name, ServerProcess Target, Func<HttpClient, int, Timing, Task<HttpResponseMessage>> Send,
    Func<int, HttpClient>? CreateClient = null);

/// <summary>When the timed part of one request began; a workload that prepares first restarts it.</summary>
public sealed class Timing
{
    public long Started { get; private set; }

    public void Restart() => Started = Stopwatch.GetTimestamp();
}

/// <param name="ServerCpuPerRequest">
/// The server process's own CPU time (user and system) per request, in µs: steadier than requests/s on a shared
/// machine, because time other tenants take from the cores is not in it.
/// </param>
/// <param name="AllocatedPerRequest">
/// Bytes the server allocated per request (the runtime's own count, from /metrics; null for the baseline): unlike
/// requests/s and CPU it does not move with the machine's noise, so a change that allocates less shows at once.
/// </param>
public sealed record Result(string Name, int Connections, double RequestsPerSecond, double P50, double P99, long Errors, double ServerCpuPerRequest,
    double? AllocatedPerRequest)
{
    public const string Header = "| workload | connections | requests/s | p50 ms | p99 ms | errors | server CPU µs/request | KB allocated/request | baseline requests/s | ratio to baseline |\n|---|---|---|---|---|---|---|---|---|---|";

    public string Row(Result baseline) => string.Create(CultureInfo.InvariantCulture,
        $"| {Name} | {Connections} | {RequestsPerSecond:0} | {P50:0.00} | {P99:0.00} | {Errors} | {ServerCpuPerRequest:0} | {(AllocatedPerRequest is { } bytes ? (bytes / 1024).ToString("0.0", CultureInfo.InvariantCulture) : "")} | {baseline.RequestsPerSecond:0} | {RequestsPerSecond / baseline.RequestsPerSecond:0.00}× |");

    /// <summary>A row for a workload with no figure, saying why.</summary>
    public static string Unmeasured(string name, int connections, string reason) => string.Create(CultureInfo.InvariantCulture,
        $"| {name} | {connections} | {reason} | | | | | | | |");
}

/// <summary>
/// A closed-loop load generator: N workers, each with one request in flight, for a fixed time. Bounded by the
/// clock and by a request cap, so it always stops by itself; the same generator drives the baseline.
/// </summary>
public static class Load
{
    private const int MaxRequestsPerWorker = 2_000_000;

    /// <summary>
    /// Long enough for the server's code to reach its last tier: under the mint's load the JIT's tier-up thread was
    /// busy for the first 8 s and idle after; with 2 s, most of an 8 s run measured code still being compiled
    /// (docs/benchmarks.md, change 44).
    /// </summary>
    public const int WarmUpSeconds = 10;

    public static HttpClient Client(Uri address, int connections) => Client(address, Handler(connections));

    /// <summary>Connections live as long as the run: over HTTPS each one does its TLS handshake once, in the warm-up.</summary>
    public static SocketsHttpHandler Handler(int connections) => new()
    {
        MaxConnectionsPerServer = connections,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        UseCookies = false,
    };

    public static HttpClient Client(Uri address, SocketsHttpHandler handler) =>
        new(handler) { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };

    public static async Task<Result> RunAsync(Workload workload, int connections, int seconds)
    {
        using var client = workload.CreateClient?.Invoke(connections) ?? Client(workload.Target.BaseAddress, connections);
        await PhaseAsync(workload, client, connections, TimeSpan.FromSeconds(WarmUpSeconds), record: null);
        await BenchServer.AnalyzeAsync();
        var latencies = new List<double>[connections];
        var errors = 0L;
        var allocatedBefore = await RuntimeMetrics.AllocatedAsync(workload.Target);
        var clock = Stopwatch.StartNew();
        var cpuBefore = workload.Target.ProcessorTime();
        var recorded = await PhaseAsync(workload, client, connections, TimeSpan.FromSeconds(seconds), latencies);
        var cpu = workload.Target.ProcessorTime() - cpuBefore;
        var allocated = await RuntimeMetrics.AllocatedAsync(workload.Target) - allocatedBefore;
        var elapsed = clock.Elapsed.TotalSeconds;
        foreach (var list in latencies)
            errors += list.Count(l => l < 0);
        var sorted = latencies.SelectMany(l => l).Where(l => l >= 0).Order().ToArray();
        Console.Error.WriteLine($"  {workload.Name}, {connections} connection(s): {recorded} requests");
        return new Result(workload.Name, connections, recorded / elapsed, Percentile(sorted, 0.50), Percentile(sorted, 0.99), errors,
            cpu.TotalMicroseconds / Math.Max(1, recorded), allocated / Math.Max(1, recorded));
    }

    private static async Task<long> PhaseAsync(Workload workload, HttpClient client, int connections, TimeSpan duration, List<double>[]? record)
    {
        using var stop = new CancellationTokenSource(duration);
        var total = 0L;
        var workers = Enumerable.Range(0, connections).Select(w => Task.Run(async () =>
        {
            var mine = new List<double>(4096);
            var timing = new Timing();
            if (record is not null)
                record[w] = mine;
            for (var i = 0; i < MaxRequestsPerWorker && !stop.IsCancellationRequested; i++)
            {
                timing.Restart();
                var ok = false;
                try
                {
                    using var response = await workload.Send(client, w, timing);
                    await response.Content.LoadIntoBufferAsync();
                    ok = response.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                }
                catch (IOException)
                {
                }
                catch (SocketException)
                {
                }
                mine.Add(ok ? Stopwatch.GetElapsedTime(timing.Started).TotalMilliseconds : -1);
                Interlocked.Increment(ref total);
            }
        })).ToArray();
        await Task.WhenAll(workers);
        return total;
    }

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
}

/// <summary>A server under test as its own process on 127.0.0.1, so its memory and CPU time can be read.</summary>
public static class BenchServer
{
    /// <summary>An empty PostgreSQL database to run on instead of SQLite (bench/run.sh sets it when BENCH_DATABASE=postgres).</summary>
    private static readonly string? PostgreSql = Environment.GetEnvironmentVariable("GATEHOUSE_BENCH_POSTGRES");

    public static bool OnPostgreSql => !string.IsNullOrEmpty(PostgreSql);

    /// <summary>
    /// On PostgreSQL, what autovacuum does for a database that has been running a while: gives the planner statistics.
    /// The bench's database is new, and autovacuum's first look comes a minute after the tables start growing
    /// (autovacuum_naptime); until then the planner takes the network id for selective and each login group's reads
    /// scan the whole network's rows, so every run would measure a database no deployment runs for long
    /// (docs/benchmarks.md, change 39; docs/deployment.md). Called after each warm-up, before the timed run.
    /// </summary>
    public static async Task AnalyzeAsync()
    {
        if (!OnPostgreSql)
            return;
        await using var connection = new Npgsql.NpgsqlConnection(PostgreSql);
        await connection.OpenAsync();
        await using var analyze = new Npgsql.NpgsqlCommand("ANALYZE", connection);
        await analyze.ExecuteNonQueryAsync();
    }

    /// <summary>The bench's own key-encryption key: its databases are thrown away after the run.</summary>
    private const string KeyEncryptionKey = "m1Wm2Q1Ve1SOq5GfIu9iZk4oW3GnxWl0qkO1L8kUQXc=";

    /// <summary>Gatehouse's settings for the bench's database, keys joined by <paramref name="separator"/> (":" in configuration, "__" in the environment).</summary>
    public static Dictionary<string, string?> Settings(string work, string separator)
    {
        var settings = new Dictionary<string, string?> { [$"Gatehouse{separator}DataDirectory"] = Path.Combine(work, "data") };
        if (OnPostgreSql)
        {
            settings[$"Gatehouse{separator}Database{separator}Provider"] = "PostgreSQL";
            settings[$"Gatehouse{separator}Database{separator}ConnectionString"] = PostgreSql!;
            settings[$"Gatehouse{separator}KeyEncryption{separator}Key"] = KeyEncryptionKey;
        }
        return settings;
    }

    public static Task<ServerProcess> StartAsync(string assembly, string work, string readyPath, bool https = false)
    {
        var environment = Settings(work, "__").ToDictionary(setting => setting.Key, setting => setting.Value!);
        // One load generator is one client address: the abuse limits would measure themselves, not the server.
        environment["Gatehouse__RateLimits__Enabled"] = "false";
        // Warning unless asked: the shipped Information level writes a console line per security event.
        environment["Logging__LogLevel__Gatehouse"] = Environment.GetEnvironmentVariable("BENCH_GATEHOUSE_LOG_LEVEL") ?? "Warning";
        environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        // A runtime setting tried on Gatehouse alone (the baseline keeps the defaults), e.g. "DOTNET_GCgen0size=0x4000000".
        foreach (var pair in (Environment.GetEnvironmentVariable("BENCH_GATEHOUSE_ENV") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
                throw new ArgumentException($"BENCH_GATEHOUSE_ENV: \"{pair}\" is not NAME=VALUE.");
            environment[pair[..equals]] = pair[(equals + 1)..];
        }
        return ServerProcess.StartAsync(new ServerStart(assembly, work, environment, https, readyPath));
    }
}
