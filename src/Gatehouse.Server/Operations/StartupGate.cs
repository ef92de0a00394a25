using Gatehouse.Server.Api;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using System.Runtime;

namespace Gatehouse.Server.Operations;

/// <summary>
/// A node listens before its start-up steps (migrations, signing keys, first start) have run, so that it can be started
/// before its database, or while the database is down: until they have, <c>/healthz</c> says it lives, <c>/readyz</c>
/// and every other request answer 503, and the steps are tried again until the database answers.
/// </summary>
internal sealed partial class StartupGate(ILogger<StartupGate> log)
{
    private static readonly TimeSpan FirstPause = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LongestPause = TimeSpan.FromSeconds(5);

    private readonly TaskCompletionSource _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsOpen => _opened.Task.IsCompleted;

    /// <summary>Completes when the start-up steps have run, for background work that needs the schema they migrate.</summary>
    public Task Opened => _opened.Task;

    /// <summary>The start-up steps have run: requests are served from now on.</summary>
    public void Open() => _opened.TrySetResult();

    /// <summary>
    /// Runs <paramref name="steps"/> until they succeed: a database outage is one warning line and another try after a
    /// pause that grows from 1 s to 5 s. Any other failure (a database a newer release upgraded, say) is thrown for the
    /// caller to end the process, as it always was. Stops trying, without throwing, when <paramref name="ct"/> fires.
    /// </summary>
    public async Task RetryAsync(Func<Task> steps, CancellationToken ct)
    {
        var pause = FirstPause;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await steps();
                return;
            }
            catch (Exception e) when (DatabaseOutage.Is(e))
            {
                LogNotYet(DatabaseOutage.Describe(e), pause.TotalSeconds);
            }
            try
            {
                // Real time, not the application's clock: this waits for a database, whatever a test does to the clock.
                await Task.Delay(pause, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            pause = pause * 2 < LongestPause ? pause * 2 : LongestPause;
        }
    }

    /// <summary>Until the gate opens, only the liveness and readiness probes get through.</summary>
    public Task HandleAsync(HttpContext http, RequestDelegate next) =>
        IsOpen || http.Request.Path.StartsWithSegments("/healthz") || http.Request.Path.StartsWithSegments("/readyz")
            ? next(http)
            : Errors.Starting.ExecuteAsync(http);

    /// <summary>
    /// Names the garbage collector the node runs with, the setting that moves its memory most: workstation unless
    /// <c>DOTNET_gcServer=1</c> chose the server GC (docs/operations.md#memory).
    /// </summary>
    public void ReportGarbageCollector() =>
        LogGarbageCollector(GCSettings.IsServerGC ? "server" : "workstation", GCSettings.LatencyMode);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Information,
        Message = "Garbage collector: {Kind}, latency mode {LatencyMode} (DOTNET_gcServer=1 chooses the server GC; docs/operations.md#memory)")]
    private partial void LogGarbageCollector(string kind, GCLatencyMode latencyMode);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning,
        Message = "Gatehouse is starting: the database does not answer yet ({Failure}); trying again in {Pause} s")]
    private partial void LogNotYet(string failure, double pause);
}
