using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Gatehouse.Server.Storage;

/// <summary>A change waiting for its group's commit; its result is handed out only once that commit is durable.</summary>
internal abstract class GroupWork(CancellationToken requestAborted)
{
    public CancellationToken RequestAborted { get; } = requestAborted;
    internal abstract void Deliver();
    internal abstract void Fail(Exception failure);
    internal abstract void Cancel();

    /// <summary>Before each attempt to write it: a result set by an attempt that was rolled back must not reach the caller.</summary>
    internal abstract void ClearResult();
}

internal abstract class GroupWork<T>(CancellationToken requestAborted) : GroupWork(requestAborted)
{
    internal TaskCompletionSource<T> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set while the group is written; handed out only once the group is committed.</summary>
    public T Result { get; set; } = default!;

    internal override void Deliver() => Outcome.TrySetResult(Result);
    internal override void Fail(Exception failure) => Outcome.TrySetException(failure);
    internal override void Cancel() => Outcome.TrySetCanceled(RequestAborted);
    internal override void ClearResult() => Result = default!;
}

/// <summary>
/// Group commit: the changes that arrive while one commit is on its way to disk are written together in the next
/// transaction, and each is answered only once that transaction is durable. One fsync then serves many requests
/// instead of one (docs/benchmarks.md). How a group is written is the caller's (<paramref name="writeGroup"/>, inside
/// the transaction); this class owns the queue, the transaction, the retries and the answers. If a group fails, each
/// of its changes is tried again alone, so one change's conflict never fails the others; a change alone is retried
/// when it lost a race on a unique index or a foreign key (another node's insert or delete) or the database dropped its
/// connection (nothing was committed).
/// </summary>
internal sealed class GroupCommit<TDb>(IDbContextFactory<TDb> dbs, Func<int> maxPerGroup, Func<TDb, IReadOnlyList<GroupWork>, Task> writeGroup,
    Action<int>? committed = null)
    where TDb : DbContext
{
    private const int RetriesAlone = 3;

    private readonly Channel<GroupWork> _queue = Channel.CreateUnbounded<GroupWork>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Queues the change and waits for its group's commit (or, once stopping, writes it as a group of its own).</summary>
    public async Task<T> SubmitAsync<T>(GroupWork<T> work)
    {
        if (!_queue.Writer.TryWrite(work))
            await WriteAloneAsync(work);
        return await work.Outcome.Task.WaitAsync(work.RequestAborted);
    }

    /// <summary>No new change joins a group from now on; <see cref="RunAsync"/> ends once the queued ones are written.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    /// <summary>The single writer. Not cancellable: changes already queued are written before the process stops.</summary>
    public async Task RunAsync()
    {
        var group = new List<GroupWork>();
        while (await _queue.Reader.WaitToReadAsync(CancellationToken.None))
        {
            var max = maxPerGroup();
            while (group.Count < max && _queue.Reader.TryRead(out var work))
            {
                if (!work.RequestAborted.IsCancellationRequested)
                    group.Add(work);
                else
                    work.Cancel();
            }
            await WriteGroupAsync(group);
            group.Clear();
        }
    }

    private async Task WriteGroupAsync(List<GroupWork> group)
    {
        if (group.Count <= 1)
        {
            if (group.Count == 1)
                await WriteAloneAsync(group[0]);
            return;
        }
        try
        {
            await WriteAsync(group);
        }
        catch (Exception)
        {
            foreach (var work in group)
                await WriteAloneAsync(work);
            return;
        }
        foreach (var work in group)
            work.Deliver();
    }

    private async Task WriteAloneAsync(GroupWork work)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await WriteAsync([work]);
                work.Deliver();
                return;
            }
            catch (Exception e) when (attempt < RetriesAlone && (e is DbUpdateException || IsTransient(e) || LostARace(e)))
            {
                // Nothing was committed: read again and write again.
            }
            catch (Exception e)
            {
                work.Fail(e);
                return;
            }
        }
    }

    private static bool IsTransient(Exception failure)
    {
        for (var e = failure; e is not null; e = e.InnerException)
        {
            if (e is System.Data.Common.DbException { IsTransient: true })
                return true;
        }
        return false;
    }

    /// <summary>
    /// Written without EF (<see cref="WriteBatch"/>), a change that lost a race on PostgreSQL fails with the server's
    /// own error, not EF's DbUpdateException: a row another node inserted meanwhile under the same unique key (a new
    /// user's first login on two nodes at once), or a row it references deleted meanwhile (a visitor the retention
    /// service deleted while its login went in). Read again, the change finds what is there now.
    /// </summary>
    private static bool LostARace(Exception failure) =>
        failure is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.ForeignKeyViolation };

    private async Task WriteAsync(List<GroupWork> group)
    {
        // A revocation that a failed group counted as ending its session, and that finds it ended by another node when
        // written again alone, would otherwise report the group's rolled-back result.
        foreach (var work in group)
            work.ClearResult();
        await using var db = await dbs.CreateDbContextAsync();
        await using var tx = await db.Database.BeginTransactionAsync();
        await writeGroup(db, group);
        await tx.CommitAsync();
        committed?.Invoke(group.Count);
    }
}
