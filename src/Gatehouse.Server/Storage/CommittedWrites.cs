using System.Collections.Concurrent;
using System.Data.Common;
using System.Text.RegularExpressions;
using Gatehouse.Server.Configuration;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Storage;

/// <summary>
/// Counts, per table, the committed writes that update or delete its rows, as this process makes them. Caches of
/// rows (<see cref="CommittedRowCache{TKey,TValue}"/>) use it to know that what they hold may be out of date. Only
/// exact on SQLite, where the server is the only long-running writer. The one other writer there is an operator
/// command (<c>network regenerate-api-key</c>, <c>secure-mode</c>, ...) run beside the server: it moves the
/// modification time of a signal file in the data folder after each commit, and a change of that time counts as a
/// write to every table. With PostgreSQL other nodes write too, so the caches are off there.
/// </summary>
public sealed partial class CommittedWrites(IOptions<GatehouseOptions> options)
{
    private readonly ConcurrentDictionary<string, Counter> _byTable = new(StringComparer.Ordinal);
    private readonly string _signal = Path.Combine(Path.GetFullPath(options.Value.DataDirectory), "other-process-writes");
    private readonly Lock _signalLock = new();
    private long _signalSeenTicks;
    private long _otherProcessWrites;

    /// <summary>Set by the operator commands: their writes must reach the server's caches through the signal file.</summary>
    public bool SignalsTheServer { get; set; }

    /// <summary>Moves whenever a write to any of <paramref name="tables"/> commits; compare, never interpret.</summary>
    public long VersionOf(IReadOnlyList<string> tables)
    {
        var version = OtherProcessWrites();
        foreach (var table in tables)
            version += _byTable.GetOrAdd(table, _ => new Counter()).Value;
        return version;
    }

    internal void Committed(string table)
    {
        _byTable.GetOrAdd(table, _ => new Counter()).Increment();
        if (SignalsTheServer)
            Signal();
    }

    /// <summary>
    /// The signal file is read at most this often: a stat per cached lookup was 3 % of a mint's CPU
    /// (docs/benchmarks.md). An operator command waits <see cref="SignalWait"/> after its last signal before it
    /// returns, so a request that starts after the command has returned still sees its writes.
    /// </summary>
    private static readonly TimeSpan SignalCheckInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>Twice the interval: every reading in use by then began after the signal.</summary>
    private static readonly TimeSpan SignalWait = SignalCheckInterval * 2;

    private long _signalCheckedAt;
    private bool _signalled;

    private long OtherProcessWrites()
    {
        var now = TimeProvider.System.GetTimestamp();
        if (TimeProvider.System.GetElapsedTime(Volatile.Read(ref _signalCheckedAt), now) < SignalCheckInterval)
            return Volatile.Read(ref _otherProcessWrites);
        var modified = File.GetLastWriteTimeUtc(_signal).Ticks;
        lock (_signalLock)
        {
            if (modified != _signalSeenTicks)
            {
                // The count first: whoever then sees the new time also sees the new count.
                Interlocked.Increment(ref _otherProcessWrites);
                Volatile.Write(ref _signalSeenTicks, modified);
            }
            // When this reading began, published only after its count: a reader that skips the stat because of it
            // also sees what it found.
            if (now > _signalCheckedAt)
                Volatile.Write(ref _signalCheckedAt, now);
        }
        return Volatile.Read(ref _otherProcessWrites);
    }

    /// <summary>For an operator command, before it returns: lets the server's next reading of the signal begin after the last signal.</summary>
    public Task SignalSeenAsync() => _signalled ? Task.Delay(SignalWait) : Task.CompletedTask;

    /// <summary>Strictly later each time, so two commands within one tick of the file system's clock still differ.</summary>
    private void Signal()
    {
        lock (_signalLock)
        {
            var previous = File.Exists(_signal) ? File.GetLastWriteTimeUtc(_signal) : DateTime.MinValue;
            var next = DateTime.UtcNow;
            if (next <= previous)
                next = previous.AddMilliseconds(1);
            if (!File.Exists(_signal))
                File.WriteAllBytes(_signal, []);
            File.SetLastWriteTimeUtc(_signal, next);
            _signalled = true;
        }
    }

    private sealed class Counter
    {
        private long _value;
        public long Value => Volatile.Read(ref _value);
        public void Increment() => Interlocked.Increment(ref _value);
    }

    /// <summary>
    /// Watches every command EF runs: one that updates or deletes rows marks its transaction with the table, and
    /// the table's count moves once that transaction commits (at once for a statement outside a transaction). Not
    /// before: a reader that looked in between would still see the old row and keep it as current.
    /// </summary>
    public sealed partial class Watcher(CommittedWrites writes) : DbCommandInterceptor, IDbTransactionInterceptor
    {
        [GeneratedRegex("""\b(?:UPDATE|DELETE\s+FROM)\s+"(\w+)"\s""", RegexOptions.IgnoreCase)]
        private static partial Regex UpdateOrDelete();

        /// <summary>Tables written by transactions not yet committed; one rolled back or dropped simply goes away.</summary>
        private readonly System.Runtime.CompilerServices.ConditionalWeakTable<DbTransaction, HashSet<string>> _pending = [];

        public override int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
        {
            Saw(command);
            return result;
        }

        public override ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result,
            CancellationToken cancellationToken = default)
        {
            Saw(command);
            return ValueTask.FromResult(result);
        }

        public override DbDataReader ReaderExecuted(DbCommand command, CommandExecutedEventData eventData, DbDataReader result)
        {
            Saw(command);
            return result;
        }

        public override ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData, DbDataReader result,
            CancellationToken cancellationToken = default)
        {
            Saw(command);
            return ValueTask.FromResult(result);
        }

        public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => Committed(transaction);

        public Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            Committed(transaction);
            return Task.CompletedTask;
        }

        private void Saw(DbCommand command)
        {
            for (var match = UpdateOrDelete().Match(command.CommandText); match.Success; match = match.NextMatch())
            {
                var table = match.Groups[1].Value;
                if (command.Transaction is { } transaction)
                {
                    var tables = _pending.GetOrCreateValue(transaction);
                    lock (tables)
                        tables.Add(table);
                }
                else
                {
                    writes.Committed(table);
                }
            }
        }

        private void Committed(DbTransaction transaction)
        {
            if (!_pending.TryGetValue(transaction, out var tables))
                return;
            _pending.Remove(transaction);
            lock (tables)
            {
                foreach (var table in tables)
                    writes.Committed(table);
            }
        }
    }
}

/// <summary>
/// Rows read on hot paths, kept in memory so the next request for the same key costs no database read. An entry
/// counts only while no write to its tables has committed since it was read, so a change is seen by the very next
/// request. SQLite only (<see cref="CommittedWrites"/>); with PostgreSQL it holds nothing and every request reads.
/// </summary>
public sealed class CommittedRowCache<TKey, TValue> : IDisposable
    where TKey : notnull
    where TValue : class
{
    private readonly CommittedWrites _writes;
    private readonly IReadOnlyList<string> _tables;
    private readonly MemoryCache? _entries;

    public CommittedRowCache(CommittedWrites writes, IOptions<GatehouseOptions> options, int entries, params string[] tables)
    {
        _writes = writes;
        _tables = tables;
        if (!StorageSetup.UsesPostgreSql(options.Value) && entries > 0)
            _entries = new MemoryCache(new MemoryCacheOptions { SizeLimit = entries });
    }

    /// <summary>
    /// The kept row, or the one <paramref name="read"/> returns, kept for next time unless a write committed while it
    /// was being read (the read may have seen the row before that write).
    /// </summary>
    public async Task<TValue?> GetAsync(TKey key, Func<Task<TValue?>> read)
    {
        if (_entries is null)
            return await read();
        var version = _writes.VersionOf(_tables);
        if (_entries.TryGetValue(key, out Entry? entry) && entry!.Version == version)
            return entry.Value;
        var value = await read();
        if (value is not null && _writes.VersionOf(_tables) == version)
            _entries.Set(key, new Entry(value, version), new MemoryCacheEntryOptions { Size = 1 });
        return value;
    }

    public void Dispose() => _entries?.Dispose();

    private sealed record Entry(TValue Value, long Version);
}
