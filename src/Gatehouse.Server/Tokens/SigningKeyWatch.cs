namespace Gatehouse.Server.Tokens;

/// <summary>
/// Re-reads the signing keys every <see cref="SigningKeys.ReReadInterval"/>, so a rotation or a retirement made on
/// another node (or by an operator command) takes effect here within seconds, without a restart. A poll rather than
/// a notification: nothing to lose while the database is away, and the same on SQLite and PostgreSQL.
/// </summary>
public sealed partial class SigningKeyWatch(SigningKeys keys, ILogger<SigningKeyWatch> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(SigningKeys.ReReadInterval);
        var failing = false;
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (!keys.Loaded)
                continue;
            try
            {
                if (await keys.ReloadIfChangedAsync(stoppingToken))
                    LogChanged(log);
                failing = false;
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The keys in memory keep serving; one line when re-reading starts failing, not one every interval.
                if (!failing)
                    LogFailed(log, e.GetType().Name, e.Message);
                failing = true;
            }
        }
    }

    [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "Signing keys changed in the database; re-read")]
    private static partial void LogChanged(ILogger log);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "Cannot re-read the signing keys ({Error}: {Message}); the keys in memory keep serving")]
    private static partial void LogFailed(ILogger log, string error, string message);
}
