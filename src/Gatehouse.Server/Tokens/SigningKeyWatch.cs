namespace Gatehouse.Server.Tokens;

/// <summary>
/// Re-reads the signing keys every <see cref="SigningKeys.ReReadInterval"/>, so a rotation or a retirement made on
/// another node (or by an operator command) takes effect here within seconds, without a restart. A poll rather than
/// a notification: nothing to lose while the database is away, and the same on SQLite and PostgreSQL.
/// </summary>
internal sealed partial class SigningKeyWatch(SigningKeys keys, ILogger<SigningKeyWatch> log) : BackgroundService
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
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // The keys in memory keep serving. A database outage is already told by /readyz and each failed
                // request; anything else is said once when re-reading starts failing, not every interval.
                if (!failing && Storage.DatabaseOutage.Is(e))
                    LogOutage(log);
                else if (!failing)
                    LogFailed(log, e);
                failing = true;
            }
        }
    }

    [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "Signing keys changed in the database; re-read")]
    private static partial void LogChanged(ILogger log);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Debug, Message = "Cannot re-read the signing keys while the database does not answer; the keys in memory keep serving")]
    private static partial void LogOutage(ILogger log);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Error, Message = "Cannot re-read the signing keys; the keys in memory keep serving")]
    private static partial void LogFailed(ILogger log, Exception exception);
}
