using System.Collections.Concurrent;
using System.Linq.Expressions;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Storage;

/// <summary>
/// A query translated once per provider instead of on every call (the translation was a sixth of a login's CPU,
/// docs/benchmarks.md). EF binds a compiled query to the model it first ran on, and one process may hold both
/// providers' models (the test suite does), so each context type gets its own.
/// </summary>
public sealed class CompiledQuery<TParam, TResult>(Expression<Func<GatehouseDb, TParam, CancellationToken, TResult>> query)
{
    private readonly ConcurrentDictionary<Type, Func<GatehouseDb, TParam, CancellationToken, Task<TResult>>> _byContext = new();

    public Task<TResult> RunAsync(GatehouseDb db, TParam parameter, CancellationToken ct) =>
        _byContext.GetOrAdd(db.GetType(), _ => EF.CompileAsyncQuery(query))(db, parameter, ct);
}
