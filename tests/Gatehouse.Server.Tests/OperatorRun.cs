using Gatehouse.Server.Operations;

namespace Gatehouse.Server.Tests;

/// <summary>The operator commands as an operator runs them, with the settings a test gives (keys as in appsettings).</summary>
public static class OperatorRun
{
    public static async Task<(int Exit, string Output, string Error)> RunAsync(IDictionary<string, string?> settings, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await OperatorCommands.RunAsync(args, output, error, builder => builder.Configuration.AddInMemoryCollection(settings));
        return (exit, output.ToString(), error.ToString());
    }

    /// <summary>A node's settings on a PostgreSQL database of the suite (its key-encryption key included).</summary>
    public static Dictionary<string, string?> OnPostgres(string connectionString, string dataDirectory) => new()
    {
        ["Gatehouse:Database:Provider"] = "PostgreSQL",
        ["Gatehouse:Database:ConnectionString"] = connectionString,
        ["Gatehouse:KeyEncryption:Key"] = PostgresServer.KeyEncryptionKey,
        ["Gatehouse:DataDirectory"] = dataDirectory,
    };
}
