using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.EntityFrameworkCore.Migrations.Operations;

namespace Gatehouse.Server.Tests;

/// <summary>
/// The rules that keep upgrades safe, checked on the migrations themselves (no database): the model never drifts
/// from them, a shipped migration is never edited, and while <see cref="StorageCompatibility.CurrentOldestServingLevel"/>
/// says the previous release still serves the schema, every migration since only adds.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed partial class MigrationTests
{
    /// <summary>
    /// The last migration (SQLite|PostgreSQL) of the last release of each storage level: release 0.1.0 is level 1.
    /// A release that keeps an older level serving adds that level's entry when it ships.
    /// </summary>
    private static readonly Dictionary<int, string> LastMigrationOfLevel = new()
    {
        [1] = "20261124071210_Initial|20261124071222_Initial",
    };

    /// <summary>Read at run time: the rule to apply depends on it, and a constant would make the other branch dead code.</summary>
    private static int OldestServingLevel { get; } = StorageCompatibility.CurrentOldestServingLevel;

    public static TheoryData<string> Providers => new() { StorageSetup.Sqlite, StorageSetup.PostgreSql };

    private static GatehouseDb DesignTimeContext(string provider) => provider == StorageSetup.Sqlite
        ? new SqliteDesignTimeFactory().CreateDbContext([])
        : new PostgresDesignTimeFactory().CreateDbContext([]);

    [Theory]
    [MemberData(nameof(Providers))]
    public void The_model_has_no_change_that_a_migration_does_not_carry(string provider)
    {
        using var db = DesignTimeContext(provider);

        Assert.False(db.Database.HasPendingModelChanges(),
            $"The model differs from the {provider} migrations: add a migration for both providers (docs/deployment.md, \"Changing the schema\").");
    }

    [Fact]
    public void Both_providers_have_the_same_migrations_by_name()
    {
        using var sqlite = DesignTimeContext(StorageSetup.Sqlite);
        using var postgres = DesignTimeContext(StorageSetup.PostgreSql);

        Assert.Equal(sqlite.Database.GetMigrations().Select(Name), postgres.Database.GetMigrations().Select(Name));
    }

    [Fact]
    public void A_shipped_migration_is_never_edited_or_removed()
    {
        var lockFile = Repository.PathOf("src", "Gatehouse.Server", "Storage", "Migrations", "shipped-migrations.txt");
        var recorded = File.ReadAllLines(lockFile)
            .Where(line => line.Length > 0 && !line.StartsWith('#'))
            .Select(line => line.Split(' '))
            .ToDictionary(parts => $"{parts[0]} {parts[1]}", parts => parts[2]);
        var actual = new Dictionary<string, string>();
        foreach (var provider in new[] { StorageSetup.Sqlite, StorageSetup.PostgreSql })
        {
            using var db = DesignTimeContext(provider);
            foreach (var (id, sql) in ScriptPerMigration(db))
                actual[$"{provider} {id}"] = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sql)));
        }

        var edited = recorded.Where(r => actual.TryGetValue(r.Key, out var hash) && hash != r.Value).Select(r => r.Key).ToList();
        var removed = recorded.Keys.Except(actual.Keys).ToList();
        var unrecorded = actual.Keys.Except(recorded.Keys).Select(k => $"{k} {actual[k]}").ToList();
        Assert.True(edited.Count == 0, $"Shipped migrations were edited: {string.Join(", ", edited)}. Add a new migration instead.");
        Assert.True(removed.Count == 0, $"Shipped migrations were removed: {string.Join(", ", removed)}.");
        Assert.True(unrecorded.Count == 0,
            $"New migrations are not in {lockFile}; once reviewed, append:{Environment.NewLine}{string.Join(Environment.NewLine, unrecorded)}");
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public void While_the_previous_release_still_serves_the_schema_every_new_migration_only_adds(string provider)
    {
        if (OldestServingLevel == StorageCompatibility.CurrentLevel)
        {
            // No older release serves beside this one: its upgrade stops every node, and the release notes must say so.
            var changelog = File.ReadAllText(Repository.PathOf("CHANGELOG.md"));
            var thisRelease = changelog[changelog.IndexOf($"## {StorageCompatibility.ReleaseVersion}", StringComparison.Ordinal)..];
            Assert.Contains($"storage level {StorageCompatibility.CurrentLevel}", thisRelease, StringComparison.Ordinal);
            Assert.Contains("stop every node", thisRelease, StringComparison.Ordinal);
            return;
        }
        Assert.True(LastMigrationOfLevel.TryGetValue(OldestServingLevel, out var lastOfOldest),
            $"Record the last migration of storage level {StorageCompatibility.CurrentOldestServingLevel} in LastMigrationOfLevel.");
        using var db = DesignTimeContext(provider);
        var migrations = db.GetService<IMigrationsAssembly>();
        var since = migrations.Migrations.Keys.SkipWhile(id => !lastOfOldest.Split('|').Contains(id)).Skip(1).ToList();
        Assert.NotEmpty(since);

        var subtractive = (
            from id in since
            let operations = migrations.CreateMigration(migrations.Migrations[id], db.Database.ProviderName!).UpOperations
            let newTables = operations.OfType<CreateTableOperation>().Select(t => t.Name).ToHashSet()
            from operation in operations
            where !OnlyAdds(operation, newTables)
            select $"{id}: {operation.GetType().Name} {Describe(operation)}").ToList();

        Assert.True(subtractive.Count == 0,
            $"These migrations change or remove what storage level {StorageCompatibility.CurrentOldestServingLevel} reads, so its nodes could not serve beside this release. " +
            "Split them (add now, remove in a later release) or raise StorageCompatibility.CurrentOldestServingLevel and document " +
            $"the stop-the-world upgrade: {string.Join("; ", subtractive)}");
    }

    [Fact]
    public void The_additive_rule_refuses_a_dropped_column_and_a_required_column_without_a_default()
    {
        HashSet<string> none = [];
        Assert.False(OnlyAdds(new DropColumnOperation { Name = "ApiKey", Table = "Networks" }, none));
        Assert.False(OnlyAdds(new AddColumnOperation { Name = "Kek", Table = "Networks", ClrType = typeof(string), IsNullable = false }, none));
        Assert.False(OnlyAdds(new RenameColumnOperation { Name = "ApiKey", NewName = "Key", Table = "Networks" }, none));
        Assert.False(OnlyAdds(new CreateIndexOperation { Name = "IX_Networks_Name", Table = "Networks", Columns = ["Name"], IsUnique = true }, none));
        Assert.True(OnlyAdds(new CreateIndexOperation { Name = "IX_Keks_Name", Table = "Keks", Columns = ["Name"], IsUnique = true }, ["Keks"]));
        Assert.True(OnlyAdds(new AddColumnOperation { Name = "Kek", Table = "Networks", ClrType = typeof(string), IsNullable = true }, none));
        Assert.True(OnlyAdds(new AddColumnOperation { Name = "Flag", Table = "Networks", ClrType = typeof(bool), IsNullable = false, DefaultValue = false }, none));
    }

    /// <summary>
    /// What an older node tolerates: it never selects a column it does not know and inserts rows without one, so
    /// new tables, nullable or defaulted columns and indexes are safe (a unique index only on a new table: on an
    /// old one it could refuse an older node's insert); anything that drops, renames or alters is not.
    /// </summary>
    private static bool OnlyAdds(MigrationOperation operation, HashSet<string> newTables) => operation switch
    {
        CreateTableOperation or EnsureSchemaOperation or CreateSequenceOperation => true,
        AddColumnOperation column => column.IsNullable || column.DefaultValue is not null || column.DefaultValueSql is not null || column.ComputedColumnSql is not null,
        CreateIndexOperation index => !index.IsUnique || newTables.Contains(index.Table),
        InsertDataOperation => true,
        _ => false,
    };

    private static string Describe(MigrationOperation operation) => operation switch
    {
        ColumnOperation column => $"{column.Table}.{column.Name}",
        TableOperation table => table.Name,
        DropTableOperation table => table.Name,
        DropColumnOperation column => $"{column.Table}.{column.Name}",
        RenameColumnOperation column => $"{column.Table}.{column.Name}",
        CreateIndexOperation index => $"{index.Table}.{index.Name}",
        _ => "",
    };

    /// <summary>Each migration's own SQL, without the EF version that the history row records (it changes with EF, not with the migration).</summary>
    private static IEnumerable<(string Id, string Sql)> ScriptPerMigration(GatehouseDb db)
    {
        var migrator = db.GetService<IMigrator>();
        var previous = Migration.InitialDatabase;
        foreach (var id in db.Database.GetMigrations())
        {
            var script = migrator.GenerateScript(previous, id, MigrationsSqlGenerationOptions.NoTransactions);
            yield return (id, ProductVersion().Replace(script, "'$1', ''").ReplaceLineEndings("\n"));
            previous = id;
        }
    }

    private static string Name(string migrationId) => migrationId[(migrationId.IndexOf('_', StringComparison.Ordinal) + 1)..];

    [GeneratedRegex(@"'(\d{14}_\w+)', '[^']*'")]
    private static partial Regex ProductVersion();
}
