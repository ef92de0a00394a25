using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Gatehouse.Testing;

namespace Gatehouse.Bench;

/// <summary>
/// One workload driven by <c>wrk</c>: its Lua script in bench/wrk/, what to write before each wrk run of so many
/// seconds (fresh refresh chains, sessions to end), and whether the figure is the script's own count
/// (<c>logouts:</c>) rather than wrk's requests. <paramref name="NotMeasurable"/> says why the workload has no wrk row (it is printed instead).
/// <paramref name="Https"/> sends the requests to the target's HTTPS listener, and <paramref name="Environment"/>
/// is added to wrk's for this workload alone (the client-certificate shim of the mTLS mint). With a
/// <paramref name="SecondNode"/> (another Gatehouse on the same database), wrk's second thread and its connections go
/// to that node, and the CPU and the bytes allocated per request are both nodes' together. <paramref name="OneRun"/>
/// measures it in one timed run between two halves of the baseline's instead of in slices.
/// </summary>
public sealed record WrkWorkload(string Name, ServerProcess Target, string Script, Func<int, Task>? Prepare = null,
    string? CountedBy = null, string? NotMeasurable = null, bool Https = false, IReadOnlyDictionary<string, string>? Environment = null,
    ServerProcess? SecondNode = null, bool OneRun = false)
{
    public IReadOnlyList<ServerProcess> Nodes => SecondNode is null ? [Target] : [Target, SecondNode];

    public Uri AddressOf(ServerProcess node) => Https
        ? node.HttpsAddress ?? throw new InvalidOperationException($"{Name}: the server has no HTTPS listener")
        : node.BaseAddress;
}

/// <summary>One timed wrk run: what it counted in so many seconds, its percentiles in ms, and the server's CPU and bytes allocated.</summary>
public sealed record Slice(long Counted, double Seconds, double P50, double P99, long Errors, TimeSpan Cpu, double? Allocated);

/// <summary>
/// Drives a workload with <c>wrk</c> (an open-source C load generator on an event loop, far cheaper per request
/// than the C# generator): a warm-up (<see cref="Load.WarmUpSeconds"/>) in which each wrk thread prints its first
/// response, checked to be 2xx, then timed runs (slices), with the server process's CPU read before and after each.
/// </summary>
public static partial class Wrk
{
    private static int _runs;

    /// <summary>The Lua scripts, copied next to the harness from bench/wrk at build time.</summary>
    public static string Scripts => Path.Combine(AppContext.BaseDirectory, "wrk");

    /// <summary>wrk's threads for a connection count: 2 (the machine's cores), or 1 for one connection.</summary>
    public static int Threads(int connections) => Math.Max(1, Math.Min(2, connections));

    /// <summary>
    /// The warm-up (after the workload's preparation for it): null once each wrk thread's first response was 2xx,
    /// or why the workload cannot be measured. The database's statistics are refreshed after it.
    /// </summary>
    public static async Task<string?> WarmUpAsync(WrkWorkload workload, IReadOnlyDictionary<string, string> environment, int connections)
    {
        var threads = Threads(connections);
        connections = connections / threads * threads;
        if (workload.Prepare is not null)
            await workload.Prepare(Load.WarmUpSeconds);
        var warmUp = await RunWrkAsync(workload, environment, threads, connections, Load.WarmUpSeconds, check: true);
        var first = FirstResponse().Matches(warmUp).Select(m => m.Groups[1].Value + " " + m.Groups[2].Value).ToList();
        Console.Error.WriteLine($"  {workload.Name}: warm-up, first response per thread: {string.Join(" | ", first.Select(f => Shorten(f)))}");
        if (first.Count == 0 || first.Any(f => f[0] != '2'))
            return first.Count == 0 ? "no answer in the warm-up" : $"first response {Shorten(first.First(f => f[0] != '2'))}";
        await BenchServer.AnalyzeAsync();
        return null;
    }

    /// <summary>
    /// One timed wrk run of a warmed-up workload (after its preparation for so many seconds), with the server's CPU
    /// and allocations read around it.
    /// </summary>
    public static async Task<Slice> SliceAsync(WrkWorkload workload, IReadOnlyDictionary<string, string> environment, int connections, int seconds)
    {
        var threads = Threads(connections);
        connections = connections / threads * threads;
        if (workload.Prepare is not null)
            await workload.Prepare(seconds);
        // bench/profile.sh starts recording on this line: after the warm-up and the preparation (logout alone opens
        // its sessions here), so that a profile holds the timed run's requests only.
        Console.Error.WriteLine($"  {workload.Name}: timed run");
        var (answeredBefore, allocatedBefore) = await CountersAsync(workload.Nodes);
        var cpuBefore = ProcessorTime(workload.Nodes);
        var output = await RunWrkAsync(workload, environment, threads, connections, seconds, check: false);
        var cpu = ProcessorTime(workload.Nodes) - cpuBefore;
        var (answeredAfter, allocatedAfter) = await CountersAsync(workload.Nodes);
        var allocated = allocatedAfter - allocatedBefore;
        var answered = answeredAfter.Zip(answeredBefore, (after, before) => after - before).ToList();

        var total = Requests().Match(output);
        if (!total.Success)
            throw new InvalidOperationException($"wrk's output has no request count:\n{output}");
        var requests = long.Parse(total.Groups[1].Value, CultureInfo.InvariantCulture);
        var elapsed = Time(total.Groups[2].Value, total.Groups[3].Value) / 1000;
        // The counts include the harness's own reads of /metrics, a handful: a node under a tenth of wrk's requests
        // means the script ignored GATEHOUSE_WRK_SECOND_NODE, and the row would be one node's.
        if (answered.Count > 1 && answered.Any(count => count < requests / 10.0))
            throw new InvalidOperationException($"{workload.Name}: the nodes answered {string.Join(" and ", answered)} of wrk's {requests} requests");
        var nonSuccess = Number(NonSuccess(), output);
        var socket = SocketErrors().Match(output);
        var socketErrors = socket.Success ? Enumerable.Range(1, 4).Sum(g => long.Parse(socket.Groups[g].Value, CultureInfo.InvariantCulture)) : 0;
        var counted = requests;
        if (workload.CountedBy is { } label)
        {
            var own = new Regex($@"^{Regex.Escape(label)}:\s+(\d+)", RegexOptions.Multiline).Match(output);
            counted = own.Success ? long.Parse(own.Groups[1].Value, CultureInfo.InvariantCulture)
                : throw new InvalidOperationException($"{workload.Script} printed no \"{label}:\" line:\n{output}");
        }
        Console.Error.WriteLine($"  {workload.Name}, {connections} connection(s), wrk -t{threads}: {requests} requests{(counted != requests ? $" ({counted} {workload.CountedBy})" : "")}, " +
            $"non-2xx {nonSuccess}, socket errors {(socket.Success ? socket.Value["Socket errors: ".Length..] : "none")}" +
            (answered.Count > 1 ? $", answered by each node {string.Join(" and ", answered)}" : ""));
        return new Slice(counted, elapsed, Percentile(output, "50"), Percentile(output, "99"), nonSuccess + socketErrors, cpu, allocated);
    }

    /// <summary>
    /// A row from a workload's slices: the rate, CPU and bytes over all of them. wrk gives each slice its own
    /// percentiles only, so the row's p50 is the median slice's and its p99 the worst slice's.
    /// </summary>
    /// <param name="connections">Those wrk really opened (a multiple of its threads).</param>
    public static Result Combine(string name, int connections, IReadOnlyList<Slice> slices)
    {
        var counted = slices.Sum(s => s.Counted);
        var p50s = slices.Select(s => s.P50).Order().ToList();
        return new Result(name, connections, counted / slices.Sum(s => s.Seconds),
            p50s[(p50s.Count - 1) / 2], slices.Max(s => s.P99), slices.Sum(s => s.Errors),
            slices.Aggregate(TimeSpan.Zero, (sum, s) => sum + s.Cpu).TotalMicroseconds / Math.Max(1, counted),
            slices.Any(s => s.Allocated is null) ? null : slices.Sum(s => s.Allocated) / Math.Max(1, counted));
    }

    private static TimeSpan ProcessorTime(IReadOnlyList<ServerProcess> nodes) =>
        nodes.Aggregate(TimeSpan.Zero, (sum, node) => sum + node.ProcessorTime());

    /// <summary>
    /// From one read of each node's /metrics: how many requests each has answered so far (ASP.NET Core's
    /// request-duration histogram), and what the nodes allocated together; null for a server without /metrics (the baseline).
    /// </summary>
    private static async Task<(List<double> Answered, double? Allocated)> CountersAsync(IReadOnlyList<ServerProcess> nodes)
    {
        var answered = new List<double>();
        double? allocated = 0;
        foreach (var node in nodes)
        {
            var metric = await RuntimeMetrics.ReadAsync(node);
            answered.Add(metric?.Invoke("http_server_request_duration_seconds_count") ?? 0);
            allocated += metric?.Invoke(RuntimeMetrics.AllocatedBytes);
        }
        return (answered, allocated);
    }

    private static async Task<string> RunWrkAsync(WrkWorkload workload, IReadOnlyDictionary<string, string> environment, int threads,
        int connections, int seconds, bool check)
    {
        var info = new ProcessStartInfo("wrk")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
        {
            $"-t{threads}", $"-c{connections}", $"-d{seconds}s", "--timeout", "30s", "--latency",
            "-s", Path.Combine(Scripts, workload.Script), workload.AddressOf(workload.Target).ToString(),
        })
        {
            info.ArgumentList.Add(argument);
        }
        if (workload.SecondNode is { } second)
        {
            var address = workload.AddressOf(second);
            info.Environment["GATEHOUSE_WRK_SECOND_NODE"] = $"{address.Host}:{address.Port.ToString(CultureInfo.InvariantCulture)}";
        }
        foreach (var (name, value) in environment.Concat(workload.Environment ?? new Dictionary<string, string>()))
            info.Environment[name] = value;
        info.Environment["GATEHOUSE_WRK_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
        info.Environment["GATEHOUSE_WRK_CONNECTIONS"] = connections.ToString(CultureInfo.InvariantCulture);
        info.Environment["GATEHOUSE_WRK_RUN"] = Interlocked.Increment(ref _runs).ToString(CultureInfo.InvariantCulture);
        if (check)
            info.Environment["GATEHOUSE_WRK_CHECK"] = "1";

        using var process = Process.Start(info) ?? throw new InvalidOperationException("wrk did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(seconds + 60));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw new InvalidOperationException($"wrk ran past {seconds + 60} s on {workload.Script}");
        }
        var text = await output;
        var errorText = await errors;
        // GATEHOUSE_WRK_VERBOSE=1 shows wrk's own output for every run (what the scripts print included).
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("GATEHOUSE_WRK_VERBOSE")))
            Console.Error.WriteLine($"  $ wrk {string.Join(' ', info.ArgumentList)}\n{text}");
        if (process.ExitCode != 0 || errorText.Length > 0)
            throw new InvalidOperationException($"wrk with {workload.Script} failed (exit {process.ExitCode}):\n{errorText}\n{text}");
        return text;
    }

    private static string Shorten(string text) => text.Length <= 100 ? text : text[..100] + "…";

    private static long Number(Regex pattern, string output)
    {
        var match = pattern.Match(output);
        return match.Success ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    private static double Percentile(string output, string percent)
    {
        var match = new Regex($@"^\s+{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", RegexOptions.Multiline).Match(output);
        return match.Success ? Time(match.Groups[1].Value, match.Groups[2].Value) : double.NaN;
    }

    /// <summary>One of wrk's printed times, in ms.</summary>
    private static double Time(string value, string unit) => double.Parse(value, CultureInfo.InvariantCulture) * unit switch
    {
        "us" => 0.001,
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => throw new InvalidOperationException($"wrk printed a time in {unit}"),
    };

    [GeneratedRegex(@"^first response: (\d+) ?(.*)$", RegexOptions.Multiline)]
    private static partial Regex FirstResponse();

    [GeneratedRegex(@"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m|h),", RegexOptions.Multiline)]
    private static partial Regex Requests();

    [GeneratedRegex(@"^\s+Non-2xx or 3xx responses: (\d+)", RegexOptions.Multiline)]
    private static partial Regex NonSuccess();

    [GeneratedRegex(@"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")]
    private static partial Regex SocketErrors();
}
