namespace Gatehouse.Server.Tests;

/// <summary>
/// The values of the "Category" trait every test class carries, so a run can pick a kind: <c>dotnet test --filter
/// Category=fast</c> is the quick loop. Constants, so that a typo fails the build instead of making a new category.
/// </summary>
public static class Category
{
    public const string Name = "Category";

    /// <summary>SQLite only, in this process: no browser, no other process, no wait of seconds.</summary>
    public const string Fast = "fast";

    /// <summary>Crashes, soaks, upgrades, several nodes, outages, floods, server processes: what takes its time.</summary>
    public const string Slow = "slow";

    /// <summary>Drives Chromium (the console, and the official web SDK in a page).</summary>
    public const string Browser = "browser";

    /// <summary>Needs PostgreSQL (<see cref="SharedPostgres"/>); skipped where it is not installed.</summary>
    public const string Postgres = "postgres";

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal) { Fast, Slow, Browser, Postgres };
}

/// <summary>
/// Tests that kill processes, restart or freeze a database, load the whole machine or measure time run alone, after
/// every parallel test: beside other tests they would break them or measure them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RunsAlone
{
    public const string Name = "runs alone";
}
