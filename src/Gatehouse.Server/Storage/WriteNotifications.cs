using System.Collections.Frozen;
using System.Diagnostics.Metrics;
using System.Globalization;
using Gatehouse.Server.Configuration;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Gatehouse.Server.Storage;

/// <summary>
/// Keeps this node's caches true on PostgreSQL, where other nodes and operator commands write too. Triggers on the
/// cached tables (migration <c>WriteNotifications</c>) send <c>NOTIFY gatehouse_writes, '&lt;table&gt;'</c> in the
/// transaction that updates or deletes their rows, so PostgreSQL delivers it once that transaction commits, and
/// never for one rolled back. This node listens on a connection of its own, outside the pool; each notification makes
/// that table's kept rows stale (<see cref="CommittedWrites"/>), or only the rows it names for a table in
/// <see cref="RowKeys"/>. Statement-level triggers: one notification per statement, never one per row.
/// While the connection is down nothing kept is trusted and every lookup reads; once it listens again, everything
/// kept before counts as stale, since what was missed is unknown (docs/deployment.md, "Node caches").
/// </summary>
internal sealed partial class WriteNotifications(CommittedWrites writes, IOptions<GatehouseOptions> options, IMeterFactory meters,
    ILogger<WriteNotifications> log) : BackgroundService
{
    public const string Channel = "gatehouse_writes";

    /// <summary>The tables whose rows a node keeps: the ones the migration puts the trigger on.</summary>
    public static readonly IReadOnlySet<string> Tables = new HashSet<string>(StringComparer.Ordinal)
    {
        "Networks", "ServerKeys", "Sessions", "Users", "ClientCertificates", "AdminTokens", "Admins", "AdminMemberships",
    };

    /// <summary>
    /// The tables whose notifications name the rows a statement changed (<c>Sessions:&lt;id&gt;,&lt;id&gt;</c>, migration
    /// <c>KeyedSessionNotifications</c>), with their primary key's type and how its text is read. Sessions, because
    /// refreshes and logouts change them all day long: counted per table, each one made every kept session stale on
    /// every node, and bearer checks read the database again (docs/benchmarks.md, change 46).
    /// </summary>
    public static readonly FrozenDictionary<string, RowKey> RowKeys = new Dictionary<string, RowKey>(StringComparer.Ordinal)
    {
        ["Sessions"] = new(typeof(Guid), text => Guid.TryParse(text, CultureInfo.InvariantCulture, out var id) ? id : null),
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>A keyed table's primary key: its CLR type, and its value read from a notification (null if unreadable).</summary>
    internal sealed record RowKey(Type ClrType, Func<string, object?> Parse);

    /// <summary>
    /// How long the connection may stay silent before the node proves it still hears: it notifies the channel itself
    /// and waits for its own notification to come back (within <see cref="PingTimeout"/>). A connection that died
    /// without a word (a network cut, a host that vanished) or one that cannot hear at all (behind a pooler in
    /// transaction mode, where LISTEN does not hold) would otherwise leave the caches trusted.
    /// </summary>
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Starts the payload of a node's own proof of hearing; every node ignores it, so it makes nothing stale.</summary>
    private const string PingPrefix = "ping:";

    private readonly string _pingPrefix = PingPrefix + Guid.NewGuid().ToString("n") + ":";
    /// <summary>Written by the listening loop alone; <see cref="_pingHeard"/> is written by the notification handler.</summary>
    private long _pingsSent;
    private long _pingHeard;

    /// <summary>Between attempts to listen again: the database may be restarting, and each attempt is a new connection.</summary>
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>Names the connection in pg_stat_activity, so an operator (or a test) can tell it from the pool's.</summary>
    public const string ApplicationName = "gatehouse-listener";

    private bool _toldNotListening;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!StorageSetup.UsesPostgreSql(options.Value))
            return;
        meters.Create(Observability.SecurityMetrics.MeterName).CreateObservableGauge("gatehouse.caches.trusted", () => writes.HearsOtherWriters ? 1 : 0,
            "{state}", "1 while this node hears other nodes' writes and keeps rows in memory; 0 while every lookup reads the database.");
        var connectionString = new NpgsqlConnectionStringBuilder(StorageSetup.PostgreSqlConnectionString(options.Value))
        {
            Pooling = false,
            Multiplexing = false,
            ApplicationName = ApplicationName,
        }.ConnectionString;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ListenAsync(connectionString, stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // Said once per outage, not every second: the node serves on, only slower.
                if (writes.StopTrusting())
                    LogStopped(log, e.Message);
                else if (!_toldNotListening)
                    LogStillNot(log, e.Message);
                _toldNotListening = true;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                await Task.Delay(RetryDelay, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task ListenAsync(string connectionString, CancellationToken stoppingToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        connection.Notification += (_, notification) => Heard(notification.Payload);
        await connection.OpenAsync(stoppingToken);
        await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection))
            await listen.ExecuteNonQueryAsync(stoppingToken);
        // After LISTEN: a write committed from now on is delivered, one committed before is covered by starting afresh.
        writes.TrustAgain();
        LogListening(log);
        _toldNotListening = false;
        await using var ping = new NpgsqlCommand("SELECT pg_notify(@channel, @payload)", connection);
        ping.Parameters.AddWithValue("channel", Channel);
        var payload = ping.Parameters.AddWithValue("payload", "");
        while (true)
        {
            if (await connection.WaitAsync(Heartbeat, stoppingToken))
                continue;
            var sent = ++_pingsSent;
            payload.Value = _pingPrefix + sent.ToString(CultureInfo.InvariantCulture);
            await ping.ExecuteNonQueryAsync(stoppingToken);
            var waiting = System.Diagnostics.Stopwatch.StartNew();
            while (Volatile.Read(ref _pingHeard) < sent)
            {
                var left = PingTimeout - waiting.Elapsed;
                if (left <= TimeSpan.Zero)
                    throw new TimeoutException($"a notification sent on the listening connection did not come back within {PingTimeout.TotalSeconds:0} s");
                await connection.WaitAsync(left, stoppingToken);
            }
        }
    }

    private void Heard(string payload)
    {
        if (!payload.StartsWith(PingPrefix, StringComparison.Ordinal))
        {
            writes.CommittedElsewhere(payload);
            return;
        }
        if (payload.StartsWith(_pingPrefix, StringComparison.Ordinal) && long.TryParse(payload.AsSpan(_pingPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var heard))
            Volatile.Write(ref _pingHeard, heard);
    }

    [LoggerMessage(EventId = 2010, Level = LogLevel.Information,
        Message = "Listening for other nodes' writes: rows are kept in memory and made stale by the database's notifications")]
    private static partial void LogListening(ILogger log);

    [LoggerMessage(EventId = 2011, Level = LogLevel.Warning,
        Message = "Stopped hearing other nodes' writes ({Reason}): every lookup reads the database until listening again")]
    private static partial void LogStopped(ILogger log, string reason);

    [LoggerMessage(EventId = 2012, Level = LogLevel.Warning,
        Message = "Cannot listen for other nodes' writes yet ({Reason}): every lookup reads the database; retrying every second")]
    private static partial void LogStillNot(ILogger log, string reason);
}
