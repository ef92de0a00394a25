using System.Diagnostics;
using System.Net.Sockets;

namespace Gatehouse.Server.Tests;

/// <summary>
/// A real Gatehouse server process on a free port of 127.0.0.1: the build the tests reference, or another release's
/// server assembly (UpgradeTests).
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _output = new();

    private ServerProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
        Http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(15) };
    }

    public Uri BaseAddress { get; }
    public HttpClient Http { get; }

    /// <summary>What the process wrote so far, standard output and standard error, line by line.</summary>
    public string Output => string.Join('\n', _output);

    public bool HasExited => _process.HasExited;

    /// <summary>A started node; with <paramref name="waitReady"/> false, returned before it even listens.</summary>
    public static async Task<ServerProcess> StartAsync(string? postgresConnectionString, string dataDirectory, string? serverAssembly = null,
        bool waitReady = true)
    {
        var port = FreePort();
        Directory.CreateDirectory(dataDirectory);
        var start = new ProcessStartInfo("dotnet", [serverAssembly ?? typeof(GatehouseApp).Assembly.Location])
        {
            WorkingDirectory = dataDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["Urls"] = $"http://127.0.0.1:{port}";
        if (postgresConnectionString is not null)
        {
            start.Environment["Gatehouse__Database__Provider"] = "PostgreSQL";
            start.Environment["Gatehouse__Database__ConnectionString"] = postgresConnectionString;
            start.Environment["Gatehouse__KeyEncryption__Key"] = PostgresServer.KeyEncryptionKey;
        }
        start.Environment["Gatehouse__DataDirectory"] = dataDirectory;
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        // The load in these tests is one client address far above the per-address limit; durability is measured.
        start.Environment["Gatehouse__RateLimits__Enabled"] = "false";
        var process = new Process { StartInfo = start };
        var node = new ServerProcess(process, new Uri($"http://127.0.0.1:{port}"));
        // Drained so a chatty server never blocks on a full pipe.
        process.OutputDataReceived += (_, line) => node.Keep(line.Data);
        process.ErrorDataReceived += (_, line) => node.Keep(line.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (waitReady)
            await node.WaitReadyAsync();
        return node;
    }

    private void Keep(string? line)
    {
        if (line is not null)
            _output.Enqueue(line);
    }

    public double ResidentMegabytes()
    {
        _process.Refresh();
        return _process.WorkingSet64 / 1024.0 / 1024.0;
    }

    /// <summary>SIGKILL: no shutdown, no flush, as a power cut or an OOM kill would leave it.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    public async Task WaitReadyAsync()
    {
        for (var attempt = 0; attempt < 300; attempt++)
        {
            try
            {
                using var ready = await Http.GetAsync("/readyz");
                if (ready.StatusCode == HttpStatusCode.OK)
                    return;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            await Task.Delay(100);
        }
        Assert.Fail($"{BaseAddress} never became ready");
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
