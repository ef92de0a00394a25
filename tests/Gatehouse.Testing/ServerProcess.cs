using System.Collections.Concurrent;
using System.Diagnostics;

namespace Gatehouse.Testing;

/// <summary>How far <see cref="ServerProcess.StartAsync"/> waits before it returns.</summary>
public enum StartedWhen
{
    /// <summary>At once: for a server expected to exit without ever listening (it must refuse its database, say).</summary>
    Launched,

    /// <summary>Once it listens, ready or not (a node started before its database listens and answers 503).</summary>
    Listening,

    /// <summary>Once its ready path answers with a success status.</summary>
    Ready,
}

/// <summary>
/// What to run: <c>dotnet &lt;Assembly&gt; [Arguments]</c> in <paramref name="WorkingDirectory"/>, with these environment
/// settings; an <paramref name="Assembly"/> that is not a <c>.dll</c> is an executable run itself (a single-file publish).
/// </summary>
/// <param name="ReadyPath">Polled until it answers with a success status, for <see cref="StartedWhen.Ready"/>.</param>
public sealed record ServerStart(string Assembly, string WorkingDirectory, IReadOnlyDictionary<string, string> Environment,
    bool Https = false, string ReadyPath = "/readyz", IReadOnlyList<string>? Arguments = null);

/// <summary>
/// An ASP.NET Core server (Gatehouse, another release of it, or the bench's baseline) as its own process on 127.0.0.1,
/// on ports the kernel picks when it binds them: the address is read from what the server says it listens on, so no
/// port is chosen first and lost to another process before the server binds it.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    /// <summary>What ASP.NET Core's lifetime logger says at start, once per bound address (the port is the real one).</summary>
    private const string ListeningOn = "Now listening on: ";

    private readonly Process _process;
    private readonly bool _https;
    private readonly ConcurrentQueue<string> _output = new();
    private readonly ConcurrentQueue<string> _errors = new();
    private readonly ConcurrentQueue<Uri> _addresses = new();
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private HttpClient? _http;

    private ServerProcess(Process process, bool https)
    {
        _process = process;
        _https = https;
    }

    /// <summary>The HTTP listener; known once the server listens.</summary>
    public Uri BaseAddress => Address(Uri.UriSchemeHttp);

    /// <summary>The HTTPS listener, when the server was started with one.</summary>
    public Uri? HttpsAddress => _https ? Address(Uri.UriSchemeHttps) : null;

    /// <summary>A client of <see cref="BaseAddress"/> that gives up on a request after 15 s; there once the server listens.</summary>
    public HttpClient Http => _http ?? throw new InvalidOperationException("The server does not listen yet.");

    /// <summary>What the process wrote so far, standard output and standard error, line by line.</summary>
    public string Output => string.Join('\n', _output);

    /// <summary>What the process wrote so far to standard error alone.</summary>
    public string ErrorOutput => string.Join('\n', _errors);

    public bool HasExited => _process.HasExited;

    /// <summary>The operating system's id of the server process, for tools that attach to it (a heap dump, a trace).</summary>
    public int ProcessId => _process.Id;

    public static async Task<ServerProcess> StartAsync(ServerStart start, StartedWhen when = StartedWhen.Ready)
    {
        ArgumentNullException.ThrowIfNull(start);
        Directory.CreateDirectory(start.WorkingDirectory);
        var info = start.Assembly.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
            ? new ProcessStartInfo("dotnet", [start.Assembly, .. start.Arguments ?? []])
            : new ProcessStartInfo(start.Assembly, start.Arguments ?? []);
        info.WorkingDirectory = start.WorkingDirectory;
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (name, value) in start.Environment)
            info.Environment[name] = value;
        info.Environment["Urls"] = start.Https ? "http://127.0.0.1:0;https://127.0.0.1:0" : "http://127.0.0.1:0";
        // The lifetime logger's start lines are where the bound addresses are read from.
        info.Environment["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information";

        var server = new ServerProcess(new Process { StartInfo = info }, start.Https);
        // Drained as it comes, so a chatty server never blocks on a full pipe.
        server._process.OutputDataReceived += (_, line) => server.Keep(line.Data, error: false);
        server._process.ErrorDataReceived += (_, line) => server.Keep(line.Data, error: true);
        server._process.Start();
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();
        try
        {
            if (when == StartedWhen.Launched)
                return server;
            var exited = server._process.WaitForExitAsync();
            if (await Task.WhenAny(server._listening.Task, exited).WaitAsync(TimeSpan.FromSeconds(60)) == exited)
                throw new InvalidOperationException($"{start.Assembly} exited ({server._process.ExitCode}) before it listened:\n{server.Output}");
            server._http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(15) };
            if (when == StartedWhen.Ready)
                await server.WaitReadyAsync(start.ReadyPath);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    private void Keep(string? line, bool error)
    {
        if (line is null)
            return;
        _output.Enqueue(line);
        if (error)
            _errors.Enqueue(line);
        var at = line.IndexOf(ListeningOn, StringComparison.Ordinal);
        if (at < 0)
            return;
        _addresses.Enqueue(new Uri(line[(at + ListeningOn.Length)..].Trim()));
        if (_addresses.Count == (_https ? 2 : 1))
            _listening.TrySetResult();
    }

    private Uri Address(string scheme)
    {
        if (!_listening.Task.IsCompletedSuccessfully)
            throw new InvalidOperationException("The server does not listen yet.");
        return _addresses.Single(a => a.Scheme == scheme);
    }

    /// <summary>Until <paramref name="path"/> answers with a success status; fails at once if the process exits.</summary>
    public async Task WaitReadyAsync(string path = "/readyz")
    {
        for (var attempt = 0; attempt < 300; attempt++)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"The server exited ({_process.ExitCode}) before {path} answered:\n{Output}");
            try
            {
                using var ready = await Http.GetAsync(new Uri(path, UriKind.Relative));
                if (ready.IsSuccessStatusCode)
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
        throw new TimeoutException($"{BaseAddress}{path.TrimStart('/')} never answered with a success status:\n{Output}");
    }

    /// <summary>Its exit code once it exits by itself; killed, and null, if it still runs after <paramref name="timeout"/>.</summary>
    public async Task<int?> WaitForExitAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            await KillAsync();
            return null;
        }
        return _process.ExitCode;
    }

    public double ResidentMegabytes()
    {
        _process.Refresh();
        return _process.WorkingSet64 / 1024.0 / 1024.0;
    }

    public TimeSpan ProcessorTime()
    {
        _process.Refresh();
        return _process.TotalProcessorTime;
    }

    /// <summary>
    /// SIGTERM, as a service manager or a container engine stops it: its exit code once it has shut down; killed, and
    /// null, if it still runs after <paramref name="timeout"/>.
    /// </summary>
    public async Task<int?> StopAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            // .NET sends no signal but SIGKILL; kill(1) sends the one a service manager sends.
            using var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))!;
            await kill.WaitForExitAsync();
        }
        return await WaitForExitAsync(timeout);
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

    public async ValueTask DisposeAsync()
    {
        _http?.Dispose();
        await KillAsync();
        _process.Dispose();
    }
}
