using System.Diagnostics;

namespace Gatehouse.Server.Tests;

/// <summary>
/// One of the solution's executables run as a user runs it: <c>dotnet &lt;assembly&gt; args…</c>, as its own process; an
/// <c>assembly</c> that is not a <c>.dll</c> is an executable run itself (a single-file publish).
/// </summary>
public static class ExecutableRun
{
    /// <summary>
    /// Its exit code and what it wrote to standard output and standard error. A process still running after
    /// <paramref name="timeout"/> is killed and the test fails: the arguments were meant to end it.
    /// </summary>
    public static async Task<(int Exit, string Output, string Error)> RunAsync(string assembly, IEnumerable<string> args,
        IReadOnlyDictionary<string, string> environment, TimeSpan timeout)
    {
        var start = assembly.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
            ? new ProcessStartInfo("dotnet", [assembly, .. args])
            : new ProcessStartInfo(assembly, args);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
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
            Assert.Fail($"{start.FileName} {string.Join(' ', start.ArgumentList)} still ran after {timeout}:\n{await output}\n{await error}");
        }
        return (process.ExitCode, await output, await error);
    }
}
