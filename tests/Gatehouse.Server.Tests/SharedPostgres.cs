namespace Gatehouse.Server.Tests;

/// <summary>
/// The PostgreSQL server the suite's PostgreSQL tests share: the one ./test.sh starts (its admin connection string in
/// GATEHOUSE_TEST_POSTGRES), or else a throwaway cluster of this test run's own, started at first use and removed
/// once the test process exits, so a plain <c>dotnet test</c> runs them too. Where PostgreSQL is not installed and
/// GATEHOUSE_TEST_POSTGRES is not set, the tests that need it are skipped (they are [SkippableFact]s).
/// </summary>
public static class SharedPostgres
{
    private static readonly Lazy<PostgresCluster> Own = new(StartOwn, LazyThreadSafetyMode.ExecutionAndPublication);

    private static string? Given => Environment.GetEnvironmentVariable("GATEHOUSE_TEST_POSTGRES");

    /// <summary>Its postgres database as the superuser, with the timeouts tests/postgres.sh gives.</summary>
    public static string AdminConnectionString => Given ?? Own.Value.ConnectionString + ";Timeout=5;Command Timeout=10";

    /// <summary>A clean restart (fast shutdown) on the same port, under the tests' load.</summary>
    public static async Task RestartAsync()
    {
        if (Given is null)
        {
            await Own.Value.RestartAsync();
            return;
        }
        var command = Environment.GetEnvironmentVariable("GATEHOUSE_TEST_POSTGRES_RESTART")
            ?? throw new InvalidOperationException("GATEHOUSE_TEST_POSTGRES is set but GATEHOUSE_TEST_POSTGRES_RESTART is not: run the tests with ./test.sh.");
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("bash", ["-c", command])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        await output;
        Assert.True(process.ExitCode == 0, $"'{command}' failed: {errors}");
    }

    private static PostgresCluster StartOwn() =>
        // Off the test's synchronization context: blocking on work queued to it could wait forever.
        Task.Run(async () =>
        {
            var cluster = await PostgresCluster.CreateAsync();
            try
            {
                await cluster.StartAsync();
            }
            catch
            {
                await cluster.DisposeAsync();
                throw;
            }
            cluster.RemoveWhenThisProcessEnds();
            return cluster;
        }).GetAwaiter().GetResult();
}
