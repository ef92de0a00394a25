using System.Collections.Concurrent;
using System.Linq.Expressions;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Storage;

/// <summary>
/// A query translated once per provider instead of on every call (the translation was a sixth of a login's CPU,
/// docs/benchmarks.md). EF binds a compiled query to the model it first ran on, and one process may hold both
/// providers' models (the test suite does), so each context type gets its own.
/// </summary>
internal sealed class CompiledQuery<TParam, TResult>(Expression<Func<GatehouseDb, TParam, CancellationToken, TResult>> query)
{
    private readonly ConcurrentDictionary<Type, Func<GatehouseDb, TParam, CancellationToken, Task<TResult>>> _byContext = new();

    public Task<TResult> RunAsync(GatehouseDb db, TParam parameter, CancellationToken ct) =>
        _byContext.GetOrAdd(db.GetType(), _ => EF.CompileAsyncQuery(query))(db, parameter, ct);
}

/// <summary>The same for a query of two parameters (EF reads a compiled query's parameters, not their members).</summary>
internal sealed class CompiledQuery<TParam1, TParam2, TResult>(Expression<Func<GatehouseDb, TParam1, TParam2, CancellationToken, TResult>> query)
{
    private readonly ConcurrentDictionary<Type, Func<GatehouseDb, TParam1, TParam2, CancellationToken, Task<TResult>>> _byContext = new();

    public Task<TResult> RunAsync(GatehouseDb db, TParam1 first, TParam2 second, CancellationToken ct) =>
        _byContext.GetOrAdd(db.GetType(), _ => EF.CompileAsyncQuery(query))(db, first, second, ct);
}

/// <summary>The same for a query of many rows, streamed as they are read.</summary>
internal sealed class CompiledListQuery<TParam1, TParam2, TResult>(Expression<Func<GatehouseDb, TParam1, TParam2, IQueryable<TResult>>> query)
{
    private readonly ConcurrentDictionary<Type, Func<GatehouseDb, TParam1, TParam2, IAsyncEnumerable<TResult>>> _byContext = new();

    public IAsyncEnumerable<TResult> Run(GatehouseDb db, TParam1 first, TParam2 second) =>
        _byContext.GetOrAdd(db.GetType(), _ => EF.CompileAsyncQuery(query))(db, first, second);
}

/// <summary>The same for a query of many rows with one parameter (a list of keys).</summary>
internal sealed class CompiledListQuery<TParam, TResult>(Expression<Func<GatehouseDb, TParam, IQueryable<TResult>>> query)
{
    private readonly ConcurrentDictionary<Type, Func<GatehouseDb, TParam, IAsyncEnumerable<TResult>>> _byContext = new();

    public IAsyncEnumerable<TResult> Run(GatehouseDb db, TParam parameter) =>
        _byContext.GetOrAdd(db.GetType(), _ => EF.CompileAsyncQuery(query))(db, parameter);
}
