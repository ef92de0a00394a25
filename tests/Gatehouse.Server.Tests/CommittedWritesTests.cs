using System.Linq.Expressions;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Query;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Tests;

/// <summary>
/// The SQLite caches serve a row only while no committed write has touched its table, so the watcher that learns
/// those writes from EF must name every table EF changes: a table it missed would leave a revoked key or a changed
/// network served from memory. Writes it cannot name must count as writes to every table.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class CommittedWritesTests(SqliteServer server) : IClassFixture<SqliteServer>
{
    /// <summary>Not a table: its version moves only when a write counted for every table.</summary>
    private static readonly string[] NoTable = ["NoSuchTable"];

    [Fact]
    public async Task ExecuteUpdate_and_ExecuteDelete_on_every_table_of_the_model_are_counted_for_that_table_alone()
    {
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var writes = server.Services.GetRequiredService<CommittedWrites>();
        var tables = db.Model.GetEntityTypes().Where(e => e.GetTableName() is not null && !e.IsOwned()).ToList();
        Assert.True(tables.Count >= 10, "the model's tables");

        foreach (var entity in tables)
        {
            foreach (var statement in new[] { nameof(DeleteNoneAsync), nameof(UpdateNoneAsync) })
            {
                var table = entity.GetTableName()!;
                var before = writes.VersionOf([table]);
                var everyTableBefore = writes.VersionOf(NoTable);
                await (Task)typeof(CommittedWritesTests).GetMethod(statement, System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
                    .MakeGenericMethod(entity.ClrType).Invoke(null, [db, entity])!;
                Assert.True(writes.VersionOf([table]) > before, $"{statement} on {table} was not counted");
                Assert.True(writes.VersionOf(NoTable) == everyTableBefore, $"{statement} on {table} was counted as a write to every table");
            }
        }
    }

    [Fact]
    public async Task SaveChanges_counts_the_tables_of_modified_and_deleted_rows_when_its_transaction_commits_and_not_if_it_rolls_back()
    {
        var network = await server.CreateNetworkAsync();
        var writes = server.Services.GetRequiredService<CommittedWrites>();
        string[] networks = ["Networks"];
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();

        var before = writes.VersionOf(networks);
        (await db.Networks.SingleAsync(n => n.Id == network.Id)).Name = "renamed outside a transaction";
        await db.SaveChangesAsync();
        Assert.True(writes.VersionOf(networks) > before, "a SaveChanges of its own");

        before = writes.VersionOf(networks);
        await using (var tx = await db.Database.BeginTransactionAsync())
        {
            (await db.Networks.SingleAsync(n => n.Id == network.Id)).Name = "renamed in a transaction";
            await db.SaveChangesAsync();
            Assert.Equal(before, writes.VersionOf(networks));
            await tx.CommitAsync();
        }
        Assert.True(writes.VersionOf(networks) > before, "committed");

        db.ChangeTracker.Clear();
        before = writes.VersionOf(networks);
        await using (var tx = await db.Database.BeginTransactionAsync())
        {
            (await db.Networks.SingleAsync(n => n.Id == network.Id)).Name = "rolled back";
            await db.SaveChangesAsync();
            await tx.RollbackAsync();
        }
        Assert.Equal(before, writes.VersionOf(networks));
    }

    [Fact]
    public void A_notification_naming_sessions_makes_those_alone_stale_and_one_it_cannot_read_makes_more_stale_never_less()
    {
        var writes = new CommittedWrites(Options.Create(new GatehouseOptions { DataDirectory = server.DataDirectory }));
        string[] tables = ["Sessions", "Users"];
        var named = Guid.NewGuid();
        var other = Guid.NewGuid();
        while (CommittedWrites.Stripe(other) == CommittedWrites.Stripe(named))
            other = Guid.NewGuid();
        long Named() => writes.VersionOf(tables, "Sessions", named);
        long Other() => writes.VersionOf(tables, "Sessions", other);

        var (named0, other0) = (Named(), Other());
        // PostgreSQL spells a uuid in lower case; another case must be read as the same session.
        writes.CommittedElsewhere($"Sessions:{Guid.NewGuid()},{named.ToString().ToUpperInvariant()}");
        Assert.True(Named() > named0, "the session named was not made stale");
        Assert.Equal(other0, Other());

        foreach (var unreadable in new[] { $"Sessions:{named},not-a-uuid", "Sessions:", "Sessions", "Users", "NoSuchTable", $"NoSuchTable:{other}" })
        {
            (named0, other0) = (Named(), Other());
            writes.CommittedElsewhere(unreadable);
            Assert.True(Named() > named0 && Other() > other0, $"{unreadable} left a session current");
        }
    }

    [Fact]
    public async Task SaveChanges_of_a_session_counts_its_row_alone_and_an_unnamed_statement_on_sessions_counts_them_all()
    {
        var network = await server.CreateNetworkAsync();
        var writes = server.Services.GetRequiredService<CommittedWrites>();
        string[] sessionsTable = ["Sessions"];
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var now = DateTimeOffset.UtcNow;
        var user = new User { Id = Secrets.NewId(now), NetworkId = network.Id, UserId = "saved-session", CreatedAt = now, UpdatedAt = now };
        var session = new Session { Id = Guid.NewGuid(), NetworkId = network.Id, UserRef = user.Id, DeviceId = "saved", CreatedAt = now, ExpiresAt = now.AddHours(1) };
        db.AddRange(user, session);
        await db.SaveChangesAsync();
        var other = Guid.NewGuid();
        while (CommittedWrites.Stripe(other) == CommittedWrites.Stripe(session.Id))
            other = Guid.NewGuid();

        var (saved0, other0) = (writes.VersionOf(sessionsTable, "Sessions", session.Id), writes.VersionOf(sessionsTable, "Sessions", other));
        session.ExpiresAt = now.AddHours(2);
        await db.SaveChangesAsync();
        Assert.True(writes.VersionOf(sessionsTable, "Sessions", session.Id) > saved0, "the saved session was not counted");
        Assert.Equal(other0, writes.VersionOf(sessionsTable, "Sessions", other));

        other0 = writes.VersionOf(sessionsTable, "Sessions", other);
        await db.Sessions.Where(s => s.UserRef == user.Id).ExecuteUpdateAsync(set => set.SetProperty(s => s.RevokedReason, "unnamed"));
        Assert.True(writes.VersionOf(sessionsTable, "Sessions", other) > other0, "a statement that names no session left one current");
    }

    [Fact]
    public async Task A_full_cache_lets_the_least_recently_used_go_and_keeps_serving_the_rows_in_use()
    {
        var writes = new CommittedWrites(Options.Create(new GatehouseOptions { DataDirectory = server.DataDirectory }));
        using var cache = new CommittedRowCache<Guid, string>(writes, 100, ["Sessions"], keyedBy: "Sessions");
        var reads = 0;
        Task<string?> Read(Guid key)
        {
            Interlocked.Increment(ref reads);
            return Task.FromResult<string?>(key.ToString());
        }
        var inUse = Enumerable.Range(0, 20).Select(_ => Guid.NewGuid()).ToList();

        // Ten times its capacity of rows read once, the rows in use read between them.
        for (var i = 0; i < 1_000; i++)
        {
            var once = Guid.NewGuid();
            Assert.Equal(once.ToString(), await cache.GetAsync(once, once, Read));
            var used = inUse[i % inUse.Count];
            Assert.Equal(used.ToString(), await cache.GetAsync(used, used, Read));
            if (i % 50 == 0)
                await Task.Delay(10);
        }
        await Task.Delay(200);

        Assert.InRange(cache.Count, 1, 100);
        reads = 0;
        foreach (var used in inUse)
            Assert.Equal(used.ToString(), await cache.GetAsync(used, used, Read));
        Assert.True(reads <= 2, $"{reads} of the {inUse.Count} rows in use were read again");
    }

    [Fact]
    public async Task A_bounded_cache_serves_an_entry_until_its_expiry_and_stays_within_its_capacity()
    {
        using var cache = new BoundedCache<int, string>(50);
        cache.Set(-1, "expiring", DateTimeOffset.UtcNow.AddMilliseconds(300));
        cache.Set(-2, "kept");
        Assert.True(cache.TryGet(-1, out var expiring));
        Assert.Equal("expiring", expiring);

        await Task.Delay(400);
        Assert.False(cache.TryGet(-1, out _), "an entry was served after its expiry");
        Assert.True(cache.TryGet(-2, out _));

        // Replacing what it holds fills nothing: the replacement is kept.
        for (var i = 0; i < 1_000; i++)
            cache.Set(-2, $"kept {i}");
        Assert.True(cache.TryGet(-2, out var replaced));
        Assert.Equal("kept 999", replaced);

        for (var i = 0; i < 5_000; i++)
            cache.Set(i, "filler");
        await Task.Delay(200);
        Assert.InRange(cache.Count, 1, 50);
    }

    [Theory]
    [InlineData("UPDATE \"Networks\" SET \"Name\" = 'x'", "ExecuteSqlRaw")]
    [InlineData("DELETE FROM \"Sessions\"", "ExecuteSqlRaw")]
    [InlineData("UPDATE \"NotInTheModel\" AS \"n\" SET \"x\" = 1", "ExecuteUpdate")]
    [InlineData("WITH d AS (SELECT 1) DELETE FROM \"Sessions\" AS \"s\"", "ExecuteDelete")]
    public async Task A_write_whose_table_cannot_be_named_counts_for_every_table(string sql, string source)
    {
        await using var scope = server.Services.CreateAsyncScope();
        var model = scope.ServiceProvider.GetRequiredService<GatehouseDb>().Model;
        Assert.Equal(CommittedWrites.Watcher.AnyTable,
            CommittedWrites.Watcher.TableWrittenBy(sql, Enum.Parse<Microsoft.EntityFrameworkCore.Diagnostics.CommandSource>(source), model));
    }

    [Fact]
    public async Task Raw_reads_the_server_runs_count_for_no_table()
    {
        await using var scope = server.Services.CreateAsyncScope();
        var model = scope.ServiceProvider.GetRequiredService<GatehouseDb>().Model;
        foreach (var sql in new[] { "SELECT pg_advisory_xact_lock(4711002)", "PRAGMA journal_mode=WAL;", "VACUUM INTO '/tmp/x'" })
            Assert.Null(CommittedWrites.Watcher.TableWrittenBy(sql, Microsoft.EntityFrameworkCore.Diagnostics.CommandSource.ExecuteSqlRaw, model));
    }

    private static Task<int> DeleteNoneAsync<T>(GatehouseDb db, IEntityType _)
        where T : class => db.Set<T>().Where(_ => false).ExecuteDeleteAsync();

    /// <summary>Sets one column to itself on no row: the statement EF generates, without changing anything.</summary>
    private static Task<int> UpdateNoneAsync<T>(GatehouseDb db, IEntityType entity)
        where T : class
    {
        var property = entity.GetProperties().First(p => !p.IsPrimaryKey() && p.PropertyInfo is not null);
        var row = Expression.Parameter(typeof(T), "row");
        var column = Expression.Lambda(Expression.Property(row, property.PropertyInfo!), row);
        var setter = typeof(UpdateSettersBuilder<T>).GetMethods()
            .Single(m => m.Name == nameof(UpdateSettersBuilder<T>.SetProperty)
                && m.GetParameters().All(p => p.ParameterType.IsGenericType && p.ParameterType.GetGenericTypeDefinition() == typeof(Expression<>)))
            .MakeGenericMethod(property.ClrType);
        return db.Set<T>().Where(_ => false).ExecuteUpdateAsync(builder => setter.Invoke(builder, [column, column]));
    }
}

[Trait(Category.Name, Category.Fast)]
public sealed class BulkWriteRefusalTests
{
    private sealed class Address
    {
        public string Street { get; set; } = "";
    }

    private sealed class WithComplexProperty
    {
        public int Id { get; set; }
        public Address Home { get; set; } = new();
    }

    private sealed class WithShadowColumn
    {
        public int Id { get; set; }
    }

    private sealed class WithClientKey
    {
        public Guid Id { get; set; }
    }

    private sealed class Plain
    {
        public int Id { get; set; }
        public string Name { get; set; } = "";
    }

    private sealed class WithToken
    {
        public int Id { get; set; }
        public string Name { get; set; } = "";
        public int Version { get; set; }
    }

    private sealed class Shapes(DbContextOptions options) : DbContext(options)
    {
        protected override void OnModelCreating(ModelBuilder model)
        {
            model.Entity<WithToken>().Property(e => e.Version).IsConcurrencyToken();
            model.Entity<WithComplexProperty>().ComplexProperty(e => e.Home);
            model.Entity<WithShadowColumn>().Property<string>("Note");
            model.Entity<WithClientKey>();
            model.Entity<Plain>();
        }
    }

    [Fact]
    public async Task Rows_it_cannot_write_completely_are_refused_before_anything_is_written()
    {
        var path = Path.Combine(Path.GetTempPath(), $"gatehouse-bulk-{Guid.NewGuid():n}.db");
        try
        {
            await using var db = new Shapes(new DbContextOptionsBuilder().UseSqlite($"Data Source={path};Pooling=false").Options);
            await db.Database.EnsureCreatedAsync();

            var complex = await Assert.ThrowsAsync<NotSupportedException>(() => BulkInsert.InsertAsync(db, [new WithComplexProperty { Id = 1 }]));
            Assert.Contains("complex property Home", complex.Message, StringComparison.Ordinal);
            var shadow = await Assert.ThrowsAsync<NotSupportedException>(() => BulkInsert.InsertAsync(db, [new WithShadowColumn { Id = 1 }]));
            Assert.Contains("Note", shadow.Message, StringComparison.Ordinal);
            var clientKey = await Assert.ThrowsAsync<NotSupportedException>(() => BulkInsert.InsertAsync(db, [new WithClientKey()]));
            Assert.Contains("leaves its Id for EF to generate", clientKey.Message, StringComparison.Ordinal);
            Assert.Equal(0, await db.Set<WithComplexProperty>().CountAsync());
            Assert.Equal(0, await db.Set<WithClientKey>().CountAsync());
            await BulkInsert.InsertAsync(db, [new WithClientKey { Id = Guid.NewGuid() }]);
            Assert.Equal(1, await db.Set<WithClientKey>().CountAsync());

            // The control: a plain row goes in.
            await BulkInsert.InsertAsync(db, [new Plain { Name = "written" }]);
            Assert.Equal("written", (await db.Set<Plain>().SingleAsync()).Name);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            File.Delete(path);
        }
    }

    [Fact]
    public async Task An_update_SaveChanges_would_check_against_a_concurrency_token_is_refused()
    {
        var path = Path.Combine(Path.GetTempPath(), $"gatehouse-bulk-{Guid.NewGuid():n}.db");
        try
        {
            await using var db = new Shapes(new DbContextOptionsBuilder().UseSqlite($"Data Source={path};Pooling=false").Options);
            await db.Database.EnsureCreatedAsync();
            db.AddRange(new WithToken { Id = 1, Name = "kept", Version = 1 }, new Plain { Id = 1, Name = "before" });
            await db.SaveChangesAsync();
            db.ChangeTracker.Clear();

            var token = await Assert.ThrowsAsync<NotSupportedException>(() =>
                BulkUpdate.UpdateAsync(db, [new WithToken { Id = 1, Name = "overwritten", Version = 1 }], nameof(WithToken.Id), [nameof(WithToken.Name)]));
            Assert.Contains("Version is a concurrency token", token.Message, StringComparison.Ordinal);
            Assert.Equal("kept", (await db.Set<WithToken>().SingleAsync()).Name);

            // The control: a plain row is written.
            Assert.Equal(1, await BulkUpdate.UpdateAsync(db, [new Plain { Id = 1, Name = "after" }], nameof(Plain.Id), [nameof(Plain.Name)]));
            Assert.Equal("after", (await db.Set<Plain>().AsNoTracking().SingleAsync()).Name);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            File.Delete(path);
        }
    }
}
