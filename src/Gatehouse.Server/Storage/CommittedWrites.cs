using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Data.Common;
using System.Text.RegularExpressions;
using Gatehouse.Server.Configuration;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Storage;

/// <summary>
/// Counts, per table, the committed writes that update or delete its rows; for a table whose rows a cache keeps by
/// primary key (<see cref="WriteNotifications.RowKeys"/>), a write that names its rows counts for those rows alone
/// (by stripe: a row's count is shared with the few others whose key hashes alike). Caches of rows
/// (<see cref="CommittedRowCache{TKey,TValue}"/>) use the counts to know that what they hold may be out of date. This
/// process's own writes count as they commit (<see cref="Watcher"/>). Other writers count as they are heard of: on
/// PostgreSQL, other nodes and operator commands, through the notifications the database sends in the writing
/// transaction (<see cref="WriteNotifications"/>); on SQLite, an operator command run beside the server, which moves
/// the modification time of a signal file in the data folder after each commit (a change of that time counts as a
/// write to every table). On PostgreSQL nothing is trusted while this node does not listen: every lookup reads.
/// </summary>
internal sealed partial class CommittedWrites(IOptions<GatehouseOptions> options)
{
    private readonly ConcurrentDictionary<string, Counter> _byTable = new(StringComparer.Ordinal);

    /// <summary>
    /// Per keyed table, the count of each stripe of its rows. So many that a refresh or a logout leaves a busy node's
    /// other kept sessions current (one in 4,096 shares its stripe), so few that the counts take 32 KiB a table.
    /// </summary>
    private readonly FrozenDictionary<string, long[]> _byRow =
        WriteNotifications.RowKeys.Keys.ToFrozenDictionary(table => table, _ => new long[RowStripes], StringComparer.Ordinal);

    private const int RowStripes = 4096;
    private readonly string _signal = Path.Combine(Path.GetFullPath(options.Value.DataDirectory), "other-process-writes");
    private readonly Lock _signalLock = new();
    private long _signalSeenTicks;
    private long _otherProcessWrites;

    /// <summary>
    /// Whether writes made elsewhere reach this process: always on SQLite (the signal file), on PostgreSQL only while
    /// <see cref="WriteNotifications"/> listens.
    /// </summary>
    private volatile bool _hearsOtherWriters = !StorageSetup.UsesPostgreSql(options.Value);

    /// <summary>What <see cref="VersionOf"/> gives while other writers' changes may go unheard: no kept row is current.</summary>
    public const long Unknown = -1;

    /// <summary>Set by the operator commands: their writes must reach the server's caches through the signal file.</summary>
    public bool SignalsTheServer { get; set; }

    /// <summary>Moves whenever a write to any of <paramref name="tables"/> commits; compare, never interpret.</summary>
    public long VersionOf(IReadOnlyList<string> tables)
    {
        if (!_hearsOtherWriters)
            return Unknown;
        var version = OtherProcessWrites() + _byTable.GetOrAdd(Watcher.AnyTable, _ => new Counter()).Value;
        foreach (var table in tables)
            version += _byTable.GetOrAdd(table, _ => new Counter()).Value;
        return version;
    }

    /// <summary>
    /// As <see cref="VersionOf(IReadOnlyList{string})"/>, but a write that names its rows in <paramref name="keyedTable"/>
    /// (one of <paramref name="tables"/>, and of <see cref="WriteNotifications.RowKeys"/>) moves it only if it names
    /// <paramref name="key"/>, or a key in its stripe.
    /// </summary>
    public long VersionOf<TKey>(IReadOnlyList<string> tables, string keyedTable, TKey key)
        where TKey : notnull
    {
        var version = VersionOf(tables);
        return version == Unknown ? Unknown : version + Volatile.Read(ref _byRow[keyedTable][Stripe(key)]);
    }

    /// <summary>Which of a keyed table's counts stands for the row with this key (the tests choose keys apart by it).</summary>
    internal static int Stripe<TKey>(TKey key)
        where TKey : notnull => key.GetHashCode() & (RowStripes - 1);

    /// <summary>Whether kept rows may be trusted now (for the metric and the tests).</summary>
    public bool HearsOtherWriters => _hearsOtherWriters;

    /// <summary>Other writers' changes may go unheard from now on; true if they were heard until now.</summary>
    internal bool StopTrusting()
    {
        var was = _hearsOtherWriters;
        _hearsOtherWriters = false;
        return was;
    }

    /// <summary>
    /// Other writers are heard again: everything kept before counts as stale (what was missed is unknown), then kept
    /// rows count again. In that order, so no reader sees the old version as current in between.
    /// </summary>
    internal void TrustAgain()
    {
        _byTable.GetOrAdd(Watcher.AnyTable, _ => new Counter()).Increment();
        _hearsOtherWriters = true;
    }

    /// <summary>
    /// A write another process committed, as its notification names it: <c>table</c>, or <c>table:key,key,…</c> for
    /// rows of a keyed table. A name or key it cannot read counts more widely (the table, or every table), never less.
    /// </summary>
    internal void CommittedElsewhere(string payload)
    {
        var colon = payload.IndexOf(':', StringComparison.Ordinal);
        var table = colon < 0 ? payload : payload[..colon];
        if (!WriteNotifications.Tables.Contains(table))
        {
            _byTable.GetOrAdd(Watcher.AnyTable, _ => new Counter()).Increment();
            return;
        }
        if (colon < 0 || !WriteNotifications.RowKeys.TryGetValue(table, out var rowKey))
        {
            _byTable.GetOrAdd(table, _ => new Counter()).Increment();
            return;
        }
        var keys = new List<object>();
        foreach (var text in payload[(colon + 1)..].Split(','))
        {
            if (rowKey.Parse(text) is not { } key)
            {
                _byTable.GetOrAdd(table, _ => new Counter()).Increment();
                return;
            }
            keys.Add(key);
        }
        foreach (var key in keys)
            Interlocked.Increment(ref _byRow[table][Stripe(key)]);
    }

    internal void Committed(string table) => Committed([table], []);

    /// <summary>
    /// Writes of one unit of work this process committed: to whole tables, and to rows of keyed tables by primary key
    /// (for that row alone where the key is of the type the table's notifications carry, else for its whole table).
    /// An operator command signals the server once for all of them.
    /// </summary>
    internal void Committed(IEnumerable<string> tables, IEnumerable<(string Table, object Key)> rows)
    {
        foreach (var table in tables)
            _byTable.GetOrAdd(table, _ => new Counter()).Increment();
        foreach (var (table, key) in rows)
        {
            if (_byRow.TryGetValue(table, out var stripes) && WriteNotifications.RowKeys[table].ClrType == key.GetType())
                Interlocked.Increment(ref stripes[Stripe(key)]);
            else
                _byTable.GetOrAdd(table, _ => new Counter()).Increment();
        }
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
    /// Learns which tables a unit of work changed from EF itself, and moves their counts once it commits (at once for
    /// work outside a transaction). Not before: a reader that looked in between would still see the old row and keep
    /// it as current. SaveChanges names its tables through the change tracker (modified and deleted entries).
    /// ExecuteUpdate and ExecuteDelete name theirs in the statement EF generated, which is checked against the
    /// model's tables; a write whose table cannot be named (one of those statements not recognised, or raw SQL that
    /// is not a plain read) counts as a write to every table, so an unforeseen statement can cost a cache its
    /// entries, never make it serve a changed row. Inserts move nothing: no cache keeps a row it did not find.
    /// </summary>
    public sealed partial class Watcher(CommittedWrites writes) : DbCommandInterceptor, IDbTransactionInterceptor, ISaveChangesInterceptor
    {
        /// <summary>Stands for every table: a write that could not be named.</summary>
        internal const string AnyTable = "*";

        [GeneratedRegex("""^\s*(?:UPDATE|DELETE\s+FROM)\s+"(\w+)"\s""", RegexOptions.IgnoreCase)]
        private static partial Regex BulkStatementTable();

        [GeneratedRegex("""^\s*(?:SELECT|PRAGMA|VACUUM)\b""", RegexOptions.IgnoreCase)]
        private static partial Regex PlainRead();

        /// <summary>What transactions not yet committed wrote; one rolled back or dropped simply goes away.</summary>
        private readonly System.Runtime.CompilerServices.ConditionalWeakTable<DbTransaction, Written> _pending = [];

        /// <summary>What a SaveChanges in progress is about to change, by context: read before EF accepts the entries.</summary>
        private readonly System.Runtime.CompilerServices.ConditionalWeakTable<DbContext, Written> _saving = [];

        public InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
        {
            Saving(eventData.Context);
            return result;
        }

        public ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result,
            CancellationToken cancellationToken = default)
        {
            Saving(eventData.Context);
            return ValueTask.FromResult(result);
        }

        public int SavedChanges(SaveChangesCompletedEventData eventData, int result)
        {
            Saved(eventData.Context);
            return result;
        }

        public ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
        {
            Saved(eventData.Context);
            return ValueTask.FromResult(result);
        }

        public void SaveChangesFailed(DbContextErrorEventData eventData) => Forget(eventData.Context);

        public Task SaveChangesFailedAsync(DbContextErrorEventData eventData, CancellationToken cancellationToken = default)
        {
            Forget(eventData.Context);
            return Task.CompletedTask;
        }

        public void SaveChangesCanceled(DbContextEventData eventData) => Forget(eventData.Context);

        public Task SaveChangesCanceledAsync(DbContextEventData eventData, CancellationToken cancellationToken = default)
        {
            Forget(eventData.Context);
            return Task.CompletedTask;
        }

        private void Saving(DbContext? context)
        {
            if (context is null)
                return;
            var written = new Written();
            foreach (var entry in context.ChangeTracker.Entries())
            {
                if (entry.State is not (EntityState.Modified or EntityState.Deleted))
                    continue;
                var table = entry.Metadata.GetTableName() ?? AnyTable;
                if (WriteNotifications.RowKeys.ContainsKey(table) && entry.Metadata.FindPrimaryKey()?.Properties is [var key])
                    written.Rows.Add((table, entry.Property(key.Name).OriginalValue!));
                else
                    written.Tables.Add(table);
            }
            _saving.AddOrUpdate(context, written);
        }

        /// <summary>
        /// Without a transaction of the caller's, SaveChanges committed its own before this point; inside one, its
        /// tables wait for that transaction.
        /// </summary>
        private void Saved(DbContext? context)
        {
            if (context is null || !_saving.TryGetValue(context, out var written))
                return;
            _saving.Remove(context);
            if (context.Database.CurrentTransaction?.GetDbTransaction() is { } transaction)
            {
                Pending(transaction, written);
                return;
            }
            written.CountIn(writes);
        }

        private void Forget(DbContext? context)
        {
            if (context is not null)
                _saving.Remove(context);
        }

        public override int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
        {
            Saw(command, eventData);
            return result;
        }

        public override ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result,
            CancellationToken cancellationToken = default)
        {
            Saw(command, eventData);
            return ValueTask.FromResult(result);
        }

        public override DbDataReader ReaderExecuted(DbCommand command, CommandExecutedEventData eventData, DbDataReader result)
        {
            Saw(command, eventData);
            return result;
        }

        public override ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData, DbDataReader result,
            CancellationToken cancellationToken = default)
        {
            Saw(command, eventData);
            return ValueTask.FromResult(result);
        }

        public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => Committed(transaction);

        public Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            Committed(transaction);
            return Task.CompletedTask;
        }

        /// <summary>The table a statement EF ran outside SaveChanges changed, <see cref="AnyTable"/> if unknown, null if it changed none.</summary>
        internal static string? TableWrittenBy(string commandText, CommandSource source, IModel? model) => source switch
        {
            CommandSource.ExecuteUpdate or CommandSource.ExecuteDelete =>
                BulkStatementTable().Match(commandText) is { Success: true } match && IsTable(model, match.Groups[1].Value) ? match.Groups[1].Value : AnyTable,
            CommandSource.ExecuteSqlRaw => PlainRead().IsMatch(commandText) ? null : AnyTable,
            _ => null,
        };

        private static bool IsTable(IModel? model, string name) =>
            model is not null && model.GetEntityTypes().Any(e => string.Equals(e.GetTableName(), name, StringComparison.Ordinal));

        private void Saw(DbCommand command, CommandExecutedEventData eventData)
        {
            if (TableWrittenBy(command.CommandText, eventData.CommandSource, eventData.Context?.Model) is { } table)
                Wrote(command.Transaction, new Written { Tables = { table } });
        }

        /// <summary>
        /// A write to <paramref name="table"/> made on the context's connection without EF (<see cref="BulkUpdate"/>),
        /// counted as EF's own statements are: when the context's transaction commits, or at once outside one. With
        /// <paramref name="primaryKeys"/> (the keys of the rows it changed, all of them), for those rows alone where
        /// the table is keyed.
        /// </summary>
        internal static void Wrote(DbContext db, string table, IEnumerable<object>? primaryKeys = null)
        {
            var watcher = db.GetService<IDbContextOptions>().FindExtension<CoreOptionsExtension>()?.Interceptors?.OfType<Watcher>().FirstOrDefault();
            if (watcher is null)
                return;
            var written = new Written();
            if (primaryKeys is not null && WriteNotifications.RowKeys.ContainsKey(table))
                written.Rows.AddRange(primaryKeys.Select(key => (table, key)));
            else
                written.Tables.Add(table);
            watcher.Wrote(db.Database.CurrentTransaction?.GetDbTransaction(), written);
        }

        private void Wrote(DbTransaction? transaction, Written written)
        {
            if (transaction is not null)
                Pending(transaction, written);
            else
                written.CountIn(writes);
        }

        private void Pending(DbTransaction transaction, Written written)
        {
            var pending = _pending.GetOrCreateValue(transaction);
            lock (pending)
                pending.Add(written);
        }

        private void Committed(DbTransaction transaction)
        {
            if (!_pending.TryGetValue(transaction, out var written))
                return;
            _pending.Remove(transaction);
            lock (written)
                written.CountIn(writes);
        }

        /// <summary>Whole tables, and rows of keyed tables by primary key, that one unit of work wrote.</summary>
        private sealed class Written
        {
            public HashSet<string> Tables { get; } = new(StringComparer.Ordinal);

            public List<(string Table, object Key)> Rows { get; } = [];

            public void Add(Written other)
            {
                Tables.UnionWith(other.Tables);
                Rows.AddRange(other.Rows);
            }

            public void CountIn(CommittedWrites writes) => writes.Committed(Tables, Rows);
        }
    }
}

/// <summary>
/// Rows read on hot paths, kept in memory so the next request for the same key costs no database read. An entry
/// counts only while no write to its tables has committed since it was read (<see cref="CommittedWrites"/>; in a table
/// the cache is keyed by, a write that names its rows counts for those rows' entries alone), so this
/// node's own change is seen by its very next request, another node's once its notification arrives (milliseconds,
/// docs/deployment.md), and while this node cannot hear other writers every request reads.
/// </summary>
internal sealed class CommittedRowCache<TKey, TValue> : IDisposable
    where TKey : notnull
    where TValue : class
{
    private readonly CommittedWrites _writes;
    private readonly IReadOnlyList<string> _tables;
    private readonly string? _keyedBy;
    private readonly BoundedCache<TKey, Entry>? _entries;

    /// <param name="writes">The committed writes.</param>
    /// <param name="entries">How many rows to keep; 0 keeps none.</param>
    /// <param name="tables">The tables a kept row was read from: a committed write to any of them makes it stale.</param>
    /// <param name="keyedBy">
    /// One of <paramref name="tables"/> whose primary key is this cache's key: a write to that table that names its
    /// rows makes only their entries stale (<see cref="WriteNotifications.RowKeys"/>).
    /// </param>
    public CommittedRowCache(CommittedWrites writes, int entries, string[] tables, string? keyedBy = null)
    {
        // Another node's write to a table without the trigger would never reach this cache.
        if (tables.FirstOrDefault(t => !WriteNotifications.Tables.Contains(t)) is { } unheard)
            throw new ArgumentException($"Writes to {unheard} are not notified to other nodes (WriteNotifications.Tables)", nameof(tables));
        if (keyedBy is not null && (!tables.Contains(keyedBy) || !WriteNotifications.RowKeys.TryGetValue(keyedBy, out var rowKey) || rowKey.ClrType != typeof(TKey)))
            throw new ArgumentException($"{keyedBy} is not one of this cache's tables whose notifications name its rows by a {typeof(TKey).Name}", nameof(keyedBy));
        _writes = writes;
        _tables = tables;
        _keyedBy = keyedBy;
        if (entries > 0)
            _entries = new BoundedCache<TKey, Entry>(entries);
    }

    /// <summary>
    /// The kept row, or the one <paramref name="read"/> returns, kept for next time unless a write committed while it
    /// was being read (the read may have seen the row before that write). What the read needs is handed to it in
    /// <paramref name="state"/>, so that with a static lambda a lookup that finds its row allocates neither a closure
    /// nor a task (docs/benchmarks.md, changes 61 and 63).
    /// </summary>
    public ValueTask<TValue?> GetAsync<TState>(TKey key, TState state, Func<TState, Task<TValue?>> read)
    {
        if (_entries is null)
            return new(read(state));
        var version = VersionOf(key);
        if (version == CommittedWrites.Unknown)
            return new(read(state));
        if (_entries.TryGet(key, out var entry) && entry!.Version == version)
            return new(entry.Value);
        return ReadAndKeepAsync(key, version, read(state));
    }

    private async ValueTask<TValue?> ReadAndKeepAsync(TKey key, long version, Task<TValue?> reading)
    {
        var value = await reading;
        if (value is not null && VersionOf(key) == version)
            _entries!.Set(key, new Entry(value, version));
        return value;
    }

    /// <summary>The kept row if it is still current; never reads (for a path that must stay cheap, such as a 429).</summary>
    public TValue? Peek(TKey key) =>
        _entries is not null && _entries.TryGet(key, out var entry) && entry!.Version == VersionOf(key) ? entry.Value : null;

    private long VersionOf(TKey key) => _keyedBy is null ? _writes.VersionOf(_tables) : _writes.VersionOf(_tables, _keyedBy, key);

    /// <summary>How many rows are kept now (for the tests).</summary>
    internal int Count => _entries?.Count ?? 0;

    public void Dispose() => _entries?.Dispose();

    private sealed record Entry(TValue Value, long Version);
}
