using System.Diagnostics;

namespace Gatehouse.Server.Tests;

/// <summary>One of the solution's executables run as a user runs it: <c>dotnet &lt;assembly&gt; args…</c>, as its own process.</summary>
public static class ExecutableRun
{
    /// <summary>
    /// Its exit code and what it wrote to standard output and standard error. A process still running after
    /// <paramref name="timeout"/> is killed and the test fails: the arguments were meant to end it.
    /// </summary>
    public static async Task<(int Exit, string Output, string Error)> RunAsync(string assembly, IEnumerable<string> args,
        IReadOnlyDictionary<string, string> environment, TimeSpan timeout)
    {
        var start = new ProcessStartInfo("dotnet", [assembly, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (name, value) in environment)
            start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            Assert.Fail($"dotnet {assembly} {string.Join(' ', args)} still ran after {timeout}:\n{await output}\n{await error}");
        }
        return (process.ExitCode, await output, await error);
    }
}
