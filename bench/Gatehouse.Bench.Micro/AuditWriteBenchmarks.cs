using BenchmarkDotNet.Attributes;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Bench.Micro;

/// <summary>
/// One batch of the audit writer, as it stores it under the mint's load (about a fifth of a mint's CPU, docs/benchmarks.md,
/// change 72): a transaction of mint events through <see cref="UnsyncedCommit"/> and <see cref="BulkInsert.AppendAsync{T}"/>
/// into a real SQLite file. Divide by <see cref="Rows"/> for the cost of one event.
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class AuditWriteBenchmarks
{
    private MicroServer _server = null!;
    private IDbContextFactory<GatehouseDb> _dbs = null!;
    private List<AuditEvent> _batch = null!;

    /// <summary>A batch at about 29,000 mints a second gathered for 2 ms, and for 10 ms.</summary>
    [Params(60, 300)]
    public int Rows { get; set; }

    [GlobalSetup]
    public async Task SetUpAsync()
    {
        _server = await MicroServer.StartAsync(new Dictionary<string, string?>());
        _dbs = _server.Services.GetRequiredService<IDbContextFactory<GatehouseDb>>();
        var now = DateTimeOffset.UtcNow;
        _batch = Enumerable.Range(0, Rows)
            .Select(i => AuditLog.Row(SecurityEvents.AuthTokenMinted("server-key:0196f3c2-7a1b-7c3d-9e4f-5a6b7c8d9e0f", "0196f3c2-network", $"user-{i}", mtls: false),
                now, "127.0.0.1"))
            .ToList();
    }

    [GlobalCleanup]
    public async Task CleanUpAsync() => await _server.DisposeAsync();

    /// <summary>What a batch costs before its rows: a context, a pooled connection, the pragmas and an empty commit.</summary>
    [Benchmark]
    public async Task EmptyTransaction()
    {
        await using var db = await _dbs.CreateDbContextAsync();
        await UnsyncedCommit.RunAsync(db, _ => Task.CompletedTask);
    }

    [Benchmark]
    public async Task WriteBatch()
    {
        await using var db = await _dbs.CreateDbContextAsync();
        await UnsyncedCommit.RunAsync(db, context => BulkInsert.AppendAsync(context, _batch));
    }
}
