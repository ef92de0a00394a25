using System.Data.Common;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace Gatehouse.Server.Sessions;

/// <summary>
/// Ends many sessions in one statement, for an admin or an operator: a user's (its sessions revoked, the user banned),
/// a network's opened without an auth token (secure mode turned on), its visitors' or bots' (their logins turned off).
/// On PostgreSQL the statement locks the rows in key order before it changes them, as the session writer's groups do
/// (<see cref="SessionService"/>). An UPDATE alone locks its rows in the order its plan meets them (the device index's,
/// the table's), so it could hold a session a group wanted next while it waited for one the group held, and the two
/// waited for each other until PostgreSQL's deadlock check failed one of them a second later: a failed group is
/// written again, a failed admin's request was a 500 (docs/benchmarks.md, change 87).
/// </summary>
internal static class SessionEnds
{
    /// <param name="live">The sessions to end, none of them ended: the query's own filter says so.</param>
    /// <returns>How many sessions ended.</returns>
    public static async Task<int> EndAsync(GatehouseDb db, IQueryable<Session> live, string reason, DateTimeOffset at, CancellationToken ct)
    {
        // SQLite's transaction holds the database's only write lock: there is no order to get wrong.
        if (db.Database.IsSqlite())
            return await live.ExecuteUpdateAsync(s => s.SetProperty(x => x.RevokedAt, at).SetProperty(x => x.RevokedReason, reason), ct);

        var entity = db.Model.FindEntityType(typeof(Session))!;
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        var sql = db.GetService<ISqlGenerationHelper>();
        IProperty Property(string name) => entity.FindProperty(name)!;
        string Column(string property) => sql.DelimitIdentifier(Property(property).GetColumnName(table)!);

        // EF writes the selection, with the caller's filter and its parameters; the lock is added to it, since EF has
        // no way to ask for one. One statement: the rows it locks are the rows it ends, and a session committed
        // meanwhile is left as the plain UPDATE would have left it.
        await using var command = live.OrderBy(s => s.Id).Select(s => s.Id).CreateDbCommand();
        command.CommandText = $"UPDATE {sql.DelimitIdentifier(table.Name, table.Schema)} "
            + $"SET {Column(nameof(Session.RevokedAt))} = @__ended_at, {Column(nameof(Session.RevokedReason))} = @__ended_reason "
            + $"WHERE {Column(nameof(Session.Id))} IN ({command.CommandText} FOR NO KEY UPDATE)";
        DbParameter Parameter(string property, string name, object value) =>
            Property(property).GetRelationalTypeMapping().CreateParameter(command, name, value, nullable: true);
        command.Parameters.Add(Parameter(nameof(Session.RevokedAt), "__ended_at", at));
        command.Parameters.Add(Parameter(nameof(Session.RevokedReason), "__ended_reason", reason));

        await db.Database.OpenConnectionAsync(ct);
        try
        {
            command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
            var ended = await command.ExecuteNonQueryAsync(ct);
            CommittedWrites.Watcher.Wrote(db, table.Name);
            return ended;
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }
}
