using System.Diagnostics;

namespace Gatehouse.Server.Tests;

/// <summary>
/// A PostgreSQL cluster of a test's own, as tests/postgres.sh makes the shared one (initdb in a temporary folder, 127.0.0.1,
/// as the postgres account when the tests run as root), for a test that stops, starts or freezes its database: doing
/// that to the shared server would break every test running beside it. Removed on dispose.
/// </summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    public const string NotInstalled = "PostgreSQL binaries not found under /usr/lib/postgresql; install postgresql or run ./test.sh";

    private readonly string _root;
    private readonly string _bin;
    private int _port;

    private PostgresCluster(string root, string bin)
    {
        _root = root;
        _bin = bin;
    }

    /// <summary>The newest installed version's server binaries (Debian's layout), or null when there are none.</summary>
    public static string? Binaries { get; } = Directory.Exists("/usr/lib/postgresql")
        ? Directory.GetDirectories("/usr/lib/postgresql").Select(v => Path.Combine(v, "bin")).Where(b => File.Exists(Path.Combine(b, "initdb")))
            .OrderBy(b => Version.TryParse(Path.GetFileName(Path.GetDirectoryName(b)) + ".0", out var v) ? v : new Version(0, 0)).LastOrDefault()
        : null;

    private string DataDirectory => Path.Combine(_root, "data");

    private string LogFile => Path.Combine(_root, "log");

    /// <summary>Its postgres database as the superuser, with no timeout of its own: Gatehouse's defaults apply. Known once started.</summary>
    public string ConnectionString => _port == 0
        ? throw new InvalidOperationException("The cluster has no port before its first start.")
        : $"Host=127.0.0.1;Port={_port};Username=postgres;Database=postgres";

    /// <summary>A new cluster, initialised and not yet started; the test is skipped where PostgreSQL is not installed.</summary>
    public static async Task<PostgresCluster> CreateAsync()
    {
        var bin = Binaries ?? throw new SkipException(NotInstalled);
        var root = Directory.CreateTempSubdirectory("gatehouse-pg-").FullName;
        if (Environment.UserName == "root")
            await MustAsync("chown", "postgres:postgres", root);
        var cluster = new PostgresCluster(root, bin);
        try
        {
            await cluster.AsPostgresAsync(mustSucceed: true, "initdb", "-D", cluster.DataDirectory, "-A", "trust", "-U", "postgres");
        }
        catch
        {
            Directory.Delete(root, recursive: true);
            throw;
        }
        return cluster;
    }

    /// <summary>
    /// PostgreSQL cannot be asked to pick a free port and say which, so the first start tries ports until one binds:
    /// whoever binds a port first has it, and a start that lost the race tries another. Below the kernel's ephemeral
    /// range (32768 and up), as tests/postgres.sh picks, so no outgoing connection holds one. Later starts reuse the
    /// port its clients were given.
    /// </summary>
    public async Task StartAsync()
    {
        if (_port != 0)
        {
            var (exit, said) = await TryStartAsync(_port);
            if (exit != 0)
                throw new InvalidOperationException($"PostgreSQL did not start again on port {_port}: {said}");
            return;
        }
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var port = Random.Shared.Next(20_000, 30_000);
            var (exit, said) = await TryStartAsync(port);
            if (exit == 0)
            {
                _port = port;
                return;
            }
            if (!said.Contains("Address already in use", StringComparison.Ordinal))
                throw new InvalidOperationException($"PostgreSQL did not start: {said}");
        }
        throw new InvalidOperationException("PostgreSQL found no free port between 20000 and 30000 in 20 tries.");
    }

    /// <summary>pg_ctl's exit code and, on a failure, what it and the server's log said (the log holds this attempt alone).</summary>
    private async Task<(int Exit, string Said)> TryStartAsync(int port)
    {
        File.Delete(LogFile);
        var (exit, output) = await AsPostgresAsync(mustSucceed: false, "pg_ctl", "-D", DataDirectory, "-l", LogFile,
            "-o", $"-c listen_addresses=127.0.0.1 -p {port} -k {_root}", "-w", "start");
        return (exit, exit == 0 ? "" : $"{output}{(File.Exists(LogFile) ? File.ReadAllText(LogFile) : "")}");
    }

    /// <summary>
    /// Stopped and removed by a watchdog once this process ends, however it ends: the test platform kills the test
    /// host a tenth of a second after the run, too soon for a ProcessExit handler to stop PostgreSQL and delete its
    /// files. The watchdog has a session of its own, so a Ctrl+C that ends the run does not end it first.
    /// </summary>
    public void RemoveWhenThisProcessEnds()
    {
        const string Script = "exec >/dev/null 2>&1 </dev/null; pid=$1 root=$2; shift 2; while kill -0 \"$pid\"; do sleep 0.5; done; \"$@\"; rm -rf \"$root\"";
        string[] stop = [.. AsPostgres(Path.Combine(_bin, "pg_ctl")), "-D", DataDirectory, "-m", "immediate", "stop"];
        using var watchdog = Process.Start(new ProcessStartInfo("setsid",
            ["bash", "-c", Script, "gatehouse-pg-watchdog", $"{Environment.ProcessId}", _root, .. stop])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
    }

    /// <summary>A clean restart on the same port, as an operator restarts the database.</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        await StartAsync();
    }

    /// <summary>A clean shutdown, as an operator stops the database for maintenance.</summary>
    public Task StopAsync() => AsPostgresAsync(mustSucceed: true, "pg_ctl", "-D", DataDirectory, "-m", "fast", "-w", "stop");

    /// <summary>
    /// SIGSTOP to the postmaster and every backend: the database hangs without closing a connection, as a machine
    /// that froze or a network that drops packets leaves it. The postmaster first, so it forks no new backend.
    /// </summary>
    public Task FreezeAsync() => SignalAsync("-STOP");

    public Task ThawAsync() => SignalAsync("-CONT");

    private async Task SignalAsync(string signal)
    {
        var postmaster = int.Parse(File.ReadLines(Path.Combine(DataDirectory, "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);
        await MustAsync("kill", signal, postmaster.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var backends = ChildrenOf(postmaster);
        // A backend may end between the listing and the signal (its client went away): the others still get it.
        if (backends.Count > 0)
            await RunAsync("kill", [signal, .. backends.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
    }

    /// <summary>From /proc: the fourth field of /proc/&lt;pid&gt;/stat is the parent (after the command, which may hold spaces).</summary>
    private static List<int> ChildrenOf(int parent)
    {
        var children = new List<int>();
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), out var pid))
                continue;
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(folder, "stat"));
            }
            catch (IOException)
            {
                continue;
            }
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (fields.Length > 1 && fields[1] == parent.ToString(System.Globalization.CultureInfo.InvariantCulture))
                children.Add(pid);
        }
        return children;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            // A frozen cluster ignores every signal but SIGKILL and SIGCONT: thawed first, so the stop below works.
            if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
            {
                await ThawAsync();
                await AsPostgresAsync(mustSucceed: true, "pg_ctl", "-D", DataDirectory, "-m", "immediate", "-w", "stop");
            }
        }
        finally
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    private Task<(int Exit, string Output)> AsPostgresAsync(bool mustSucceed, string program, params string[] arguments)
    {
        string[] command = [.. AsPostgres(Path.Combine(_bin, program)), .. arguments];
        var run = RunAsync(command[0], command[1..]);
        return mustSucceed ? MustSucceedAsync(run, program, arguments) : run;
    }

    /// <summary>PostgreSQL refuses to run as root: the cluster belongs to the postgres account when the tests run as root.</summary>
    private static string[] AsPostgres(string program) => Environment.UserName == "root" ? ["runuser", "-u", "postgres", "--", program] : [program];

    private static Task<(int Exit, string Output)> MustAsync(string program, params string[] arguments) => MustSucceedAsync(RunAsync(program, arguments), program, arguments);

    private static async Task<(int Exit, string Output)> MustSucceedAsync(Task<(int Exit, string Output)> run, string program, string[] arguments)
    {
        var (exit, output) = await run;
        return exit == 0 ? (exit, output) : throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited {exit}: {output}");
    }

    private static async Task<(int Exit, string Output)> RunAsync(string program, string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await errors + await output);
    }
}
