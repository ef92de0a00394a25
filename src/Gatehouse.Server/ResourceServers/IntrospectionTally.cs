using System.Collections.Concurrent;
using Gatehouse.Server.Audit;

namespace Gatehouse.Server.ResourceServers;

/// <summary>
/// Introspections counted per network and written to the audit log as one row a minute (active and inactive answers),
/// not one per call: a resource server may ask for every request it serves, and the log is for people.
/// </summary>
internal sealed class IntrospectionTally(AuditLog audit, TimeProvider clock) : BackgroundService
{
    private static readonly TimeSpan Period = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<string, Counts> _counts = new(StringComparer.Ordinal);

    private sealed class Counts
    {
        public long Active;
        public long Inactive;
    }

    public void Count(string networkId, bool active)
    {
        var counts = _counts.GetOrAdd(networkId, _ => new Counts());
        if (active)
            Interlocked.Increment(ref counts.Active);
        else
            Interlocked.Increment(ref counts.Inactive);
    }

    /// <summary>Writes what was counted since the last time (the stop writes the rest).</summary>
    public void Flush()
    {
        foreach (var (networkId, counts) in _counts)
        {
            var active = Interlocked.Exchange(ref counts.Active, 0);
            var inactive = Interlocked.Exchange(ref counts.Inactive, 0);
            if (active + inactive > 0)
                audit.Record(SecurityEvents.TokensIntrospected(networkId, active, inactive));
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period, clock);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
                Flush();
        }
        catch (OperationCanceledException)
        {
            // Stopping: the rest is written below.
        }
        Flush();
    }
}
