using System.Diagnostics;
using System.Net.Sockets;

namespace Gatehouse.Server.Tests;

/// <summary>
/// A PostgreSQL cluster of a test's own, as tests/postgres.sh makes the shared one (initdb in a temporary folder, 127.0.0.1
/// on a free port, as the postgres account when the tests run as root), for a test that stops, starts or freezes its
/// database: doing that to the shared server would break every test running beside it. Removed on dispose.
/// </summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    private readonly string _root;
    private readonly string _bin;
    private readonly int _port;

    private PostgresCluster(string root, string bin, int port)
    {
        _root = root;
        _bin = bin;
        _port = port;
    }

    private string DataDirectory => Path.Combine(_root, "data");

    /// <summary>Its postgres database as the superuser, with no timeout of its own: Gatehouse's defaults apply.</summary>
    public string ConnectionString => $"Host=127.0.0.1;Port={_port};Username=postgres;Database=postgres";

    /// <summary>A new cluster, initialised and not yet started.</summary>
    public static async Task<PostgresCluster> CreateAsync()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(v => Path.Combine(v, "bin")).Where(b => File.Exists(Path.Combine(b, "initdb")))
                .OrderBy(b => Version.TryParse(Path.GetFileName(Path.GetDirectoryName(b)), out var v) ? v : new Version(0, 0)).LastOrDefault()
            : null;
        if (bin is null)
            throw new InvalidOperationException("No PostgreSQL under /usr/lib/postgresql: run the tests with ./test.sh, which installs it.");
        var root = Directory.CreateTempSubdirectory("gatehouse-pg-").FullName;
        if (Environment.UserName == "root")
            await RunAsync("chown", "postgres:postgres", root);
        var cluster = new PostgresCluster(root, bin, FreePort());
        await cluster.AsPostgresAsync("initdb", "-D", cluster.DataDirectory, "-A", "trust", "-U", "postgres");
        return cluster;
    }

    public Task StartAsync() => AsPostgresAsync("pg_ctl", "-D", DataDirectory, "-l", Path.Combine(_root, "log"),
        "-o", $"-c listen_addresses=127.0.0.1 -p {_port} -k {_root}", "-w", "start");

    /// <summary>A clean shutdown, as an operator stops the database for maintenance.</summary>
    public Task StopAsync() => AsPostgresAsync("pg_ctl", "-D", DataDirectory, "-m", "fast", "-w", "stop");

    /// <summary>
    /// SIGSTOP to the postmaster and every backend: the database hangs without closing a connection, as a machine
    /// that froze or a network that drops packets leaves it. The postmaster first, so it forks no new backend.
    /// </summary>
    public Task FreezeAsync() => SignalAsync("-STOP");

    public Task ThawAsync() => SignalAsync("-CONT");

    private async Task SignalAsync(string signal)
    {
        var postmaster = int.Parse(File.ReadLines(Path.Combine(DataDirectory, "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);
        await RunAsync("kill", signal, postmaster.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var backends = ChildrenOf(postmaster);
        // A backend may end between the listing and the signal (its client went away): the others still get it.
        if (backends.Count > 0)
            await RunAsync("kill", [signal, .. backends.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture))], mustSucceed: false);
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
                await AsPostgresAsync("pg_ctl", "-D", DataDirectory, "-m", "immediate", "-w", "stop");
            }
        }
        finally
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    private Task AsPostgresAsync(string program, params string[] arguments) =>
        Environment.UserName == "root"
            ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(_bin, program), .. arguments])
            : RunAsync(Path.Combine(_bin, program), arguments);

    private static Task RunAsync(string program, params string[] arguments) => RunAsync(program, arguments, mustSucceed: true);

    private static async Task RunAsync(string program, string[] arguments, bool mustSucceed)
    {
        using var process = Process.Start(new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0 || !mustSucceed, $"{program} {string.Join(' ', arguments)} exited {process.ExitCode}: {await errors}{await output}");
    }

    /// <summary>Below the kernel's ephemeral range (32768 and up), as tests/postgres.sh picks, so no outgoing connection holds it.</summary>
    private static int FreePort()
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var port = Random.Shared.Next(20_000, 30_000);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
            }
        }
        throw new InvalidOperationException("No free port between 20000 and 30000.");
    }
}
