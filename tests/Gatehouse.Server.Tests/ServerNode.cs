namespace Gatehouse.Server.Tests;

/// <summary>
/// A Gatehouse node as its own process (<see cref="ServerProcess"/>): the build the tests reference, or another release's
/// server assembly (UpgradeTests), on SQLite in <c>dataDirectory</c> or on the PostgreSQL database given.
/// </summary>
public static class ServerNode
{
    /// <summary>A started node; with <paramref name="waitReady"/> false, returned once it listens, ready or not.</summary>
    public static Task<ServerProcess> StartAsync(string? postgresConnectionString, string dataDirectory, string? serverAssembly = null,
        bool waitReady = true) =>
        ServerProcess.StartAsync(Start(postgresConnectionString, dataDirectory, serverAssembly), waitReady ? StartedWhen.Ready : StartedWhen.Listening);

    /// <summary>
    /// A node expected to refuse to start: its exit code and what it said on standard error. It is killed, and the test
    /// fails, if it still runs after a minute.
    /// </summary>
    public static async Task<(int Exit, string Error)> RunUntilExitAsync(string? postgresConnectionString, string dataDirectory, string? serverAssembly = null)
    {
        await using var node = await ServerProcess.StartAsync(Start(postgresConnectionString, dataDirectory, serverAssembly), StartedWhen.Launched);
        var exit = await node.WaitForExitAsync(TimeSpan.FromMinutes(1));
        Assert.True(exit is not null, $"The server started on a database it must refuse:\n{node.Output}");
        return (exit.Value, node.ErrorOutput);
    }

    private static ServerStart Start(string? postgresConnectionString, string dataDirectory, string? serverAssembly)
    {
        var environment = new Dictionary<string, string>
        {
            ["Gatehouse__DataDirectory"] = dataDirectory,
            // The load in these tests is one client address far above the per-address limit; durability is measured.
            ["Gatehouse__RateLimits__Enabled"] = "false",
        };
        if (postgresConnectionString is not null)
        {
            environment["Gatehouse__Database__Provider"] = "PostgreSQL";
            environment["Gatehouse__Database__ConnectionString"] = postgresConnectionString;
            environment["Gatehouse__KeyEncryption__Key"] = PostgresServer.KeyEncryptionKey;
        }
        return new ServerStart(serverAssembly ?? typeof(GatehouseApp).Assembly.Location, dataDirectory, environment);
    }
}
