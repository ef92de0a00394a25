using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Gatehouse.Server.Sessions;

/// <summary>
/// The bearer check's read of a session with its user, on PostgreSQL, for the checks the session cache cannot answer
/// (a token first seen on this node: after a restart, on another node, a logout long after its login). One read is
/// in flight at a time; the checks that arrive meanwhile wait for it and then go together, as one statement for all
/// their ids. Read one statement per check through EF, each check took a pooled context and connection and woke a
/// PostgreSQL backend for its own round trip, on the cores the server shares with it: the logout of such sessions
/// measured 1.5–2.0× faster this way (docs/benchmarks.md, change 80). The statement and its columns come from the
/// model (<see cref="PostgresGroupReads"/>); SessionReadsTests compares what it reads with what EF reads.
/// </summary>
internal sealed class PostgresSessionReads
{
    /// <summary>
    /// Ids in one statement at most: enough for every connection a busy node serves to wait in one read, small enough
    /// that a burst (a node's cache gone cold) is read in several statements, each answered as soon as it is read.
    /// </summary>
    internal const int MostPerRead = 256;

    private readonly string _connectionString;
    private readonly TimeSpan _longest;
    private readonly string _sql;
    private readonly Lock _gate = new();
    private List<Waiting> _waiting = [];
    private bool _reading;
    private long _readsStarted;

    /// <param name="db">The model the statement is built from, and the connection string.</param>
    /// <param name="connectionString">Another than EF's (the tests: a pool of their own, with longer timeouts).</param>
    public PostgresSessionReads(GatehouseDb db, string? connectionString = null)
    {
        // By default EF's connection string, so the reads take connections from the same pool as every other query
        // (EF opens its connections from the string too: no data source of its own), with Gatehouse's timeouts.
        _connectionString = connectionString ?? db.Database.GetConnectionString()
            ?? throw new InvalidOperationException("The PostgreSQL context has no connection string.");
        // Every check a node cannot answer from memory waits for this read: it must end even where the operator
        // lifted the command timeout (Command Timeout=0), and a read cut short is a database that does not answer.
        var timeouts = new NpgsqlConnectionStringBuilder(_connectionString);
        _longest = TimeSpan.FromSeconds((timeouts.CommandTimeout is > 0 and var command ? command : 30) + 2 * Math.Max(timeouts.Timeout, 1));
        _sql = PostgresGroupReads.SessionStatesSql(db);
    }

    /// <summary>Reads started so far, failed ones included (for the tests: checks that arrive together share one).</summary>
    internal long ReadsStarted => Interlocked.Read(ref _readsStarted);

    /// <summary>
    /// The session with its user, or null if there is none. <paramref name="ct"/> ends this check's wait alone: the
    /// read it shares with others goes on (and ends within Gatehouse's timeouts).
    /// </summary>
    public Task<SessionState?> ReadAsync(Guid sessionId, CancellationToken ct)
    {
        if (ct.IsCancellationRequested)
            return Task.FromCanceled<SessionState?>(ct);
        var waiting = new Waiting(sessionId);
        if (ct.CanBeCanceled)
            waiting.Cancellation = ct.UnsafeRegister(static (w, token) => ((Waiting)w!).TrySetCanceled(token), waiting);
        bool start;
        lock (_gate)
        {
            _waiting.Add(waiting);
            start = !_reading;
            _reading = true;
        }
        // Not in the caller's execution context: the reads serve every request waiting, not the one that started them.
        if (start)
            ThreadPool.UnsafeQueueUserWorkItem(static reads => _ = reads.ReadWhileWaitingAsync(), this, preferLocal: false);
        return waiting.Task;
    }

    private async Task ReadWhileWaitingAsync()
    {
        while (Take() is { } taken)
        {
            try
            {
                var found = await ReadAsync(taken.Select(w => w.SessionId).Distinct().ToArray());
                foreach (var waiting in taken)
                    waiting.Complete(found.GetValueOrDefault(waiting.SessionId));
            }
            catch (Exception e)
            {
                // Each check fails as its own read would have: an outage is a 503 (DatabaseOutage), anything else a
                // 500. In an outage (a pool with no connection free within its timeout included) the checks that
                // arrived meanwhile fail with it, now: each read waits out the timeouts, and taking them one read
                // after another would keep them past the 5 s a request on a database that does not answer is bounded
                // by (docs/operations.md).
                var failed = DatabaseOutage.Is(e) ? taken.Concat(TakeAll()) : taken;
                foreach (var waiting in failed)
                    waiting.Fail(e);
            }
        }
    }

    /// <summary>Up to <see cref="MostPerRead"/> waiting checks, oldest first, or none; with none, the next check starts a read.</summary>
    private List<Waiting>? Take()
    {
        lock (_gate)
        {
            // A check whose request went away no longer needs its row.
            _waiting.RemoveAll(w => w.Task.IsCompleted);
            if (_waiting.Count == 0)
            {
                _reading = false;
                return null;
            }
            if (_waiting.Count <= MostPerRead)
            {
                var all = _waiting;
                _waiting = [];
                return all;
            }
            var first = _waiting.GetRange(0, MostPerRead);
            _waiting.RemoveRange(0, MostPerRead);
            return first;
        }
    }

    /// <summary>Every check still waiting, without ending the loop that reads for them (only <see cref="Take"/> does).</summary>
    private List<Waiting> TakeAll()
    {
        lock (_gate)
        {
            var all = _waiting;
            _waiting = [];
            return all;
        }
    }

    private async Task<Dictionary<Guid, SessionState>> ReadAsync(Guid[] sessionIds)
    {
        Interlocked.Increment(ref _readsStarted);
        using var cutOff = new CancellationTokenSource(_longest);
        try
        {
            await using var connection = new NpgsqlConnection(_connectionString);
            await connection.OpenAsync(cutOff.Token);
            await using var command = new NpgsqlCommand(_sql, connection);
            command.Parameters.Add(new NpgsqlParameter { Value = sessionIds });
            await using var reader = await command.ExecuteReaderAsync(cutOff.Token);
            var found = new Dictionary<Guid, SessionState>(sessionIds.Length);
            while (await reader.ReadAsync(cutOff.Token))
            {
                found[reader.GetGuid(0)] = new SessionState(
                    reader.GetString(1),
                    reader.IsDBNull(2) ? null : reader.GetFieldValue<DateTimeOffset>(2),
                    reader.GetFieldValue<DateTimeOffset>(3),
                    PostgresGroupReads.ReadUser(reader, first: 4));
            }
            return found;
        }
        catch (OperationCanceledException e) when (cutOff.IsCancellationRequested)
        {
            throw new TimeoutException($"The database did not answer a read of sessions within {_longest.TotalSeconds:0} s.", e);
        }
    }

    /// <summary>
    /// A check waiting for its row. Its continuation runs on the thread pool, not on the reading loop, which would
    /// otherwise carry on each request in turn before reading for the next ones.
    /// </summary>
    private sealed class Waiting(Guid sessionId) : TaskCompletionSource<SessionState?>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public Guid SessionId { get; } = sessionId;
        public CancellationTokenRegistration Cancellation { get; set; }

        public void Complete(SessionState? state)
        {
            TrySetResult(state);
            Cancellation.Dispose();
        }

        /// <summary>
        /// One exception for every check of the read (as Task.WhenAll hands one to each awaiter): the stack trace a 500
        /// logs with it may carry frames of another request that rethrew it.
        /// </summary>
        public void Fail(Exception failure)
        {
            TrySetException(failure);
            Cancellation.Dispose();
        }
    }
}
