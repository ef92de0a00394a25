using System.Net.Sockets;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Gatehouse.Server.Storage;

/// <summary>
/// Tells a database that does not answer (down, starting, restarting, hung, unreachable, too busy to take a connection)
/// from a query that failed. The first is worth a retry: a 503, a start-up that waits. The second is a bug or a broken
/// database, and stays a failure with its stack trace.
/// </summary>
internal static class DatabaseOutage
{
    // SQLite's busy, locked and cannot-open result codes.
    private const int SqliteBusy = 5;
    private const int SqliteLocked = 6;
    private const int SqliteCannotOpen = 14;

    /// <summary>Whether the failure, or one it wraps (EF Core wraps the provider's), is the database not answering.</summary>
    public static bool Is(Exception failure) => Find(failure) is not null;

    private static Exception? Find(Exception failure)
    {
        for (var e = failure; e is not null; e = e.InnerException)
        {
            var unavailable = e switch
            {
                // Judged by its code, not IsTransient: a deadlock or a serialization failure is transient too, but the
                // database answered.
                PostgresException postgres => (bool?)IsUnavailable(postgres.SqlState),
                // Npgsql's own: no connection, a broken one, a connect or command timeout, an exhausted pool.
                NpgsqlException { IsTransient: true } or SocketException or TimeoutException => true,
                SqliteException sqlite => sqlite.SqliteErrorCode is SqliteBusy or SqliteLocked or SqliteCannotOpen,
                _ => null,
            };
            if (unavailable is not null)
                return unavailable.Value ? e : null;
        }
        return null;
    }

    /// <summary>
    /// Class 08 (the connection failed or was lost), 57P (the server is shutting down, crashed or still starting up:
    /// 57P01 to 57P05) and 53300 (too many connections: a refused connection, as the pools are sized against).
    /// </summary>
    private static bool IsUnavailable(string sqlState) =>
        sqlState.StartsWith("08", StringComparison.Ordinal) || sqlState.StartsWith("57P", StringComparison.Ordinal) || sqlState == "53300";

    /// <summary>
    /// What failed and its innermost cause, in one line, for a log that says what happened without a stack trace:
    /// "NpgsqlException: Failed to connect to 10.0.0.5:5432 (SocketException: Connection refused)". Npgsql's messages
    /// name the host and port, never the password.
    /// </summary>
    public static string Describe(Exception failure)
    {
        var found = Find(failure) ?? failure;
        var cause = found.GetBaseException();
        var described = $"{found.GetType().Name}: {found.Message}";
        if (cause != found)
            described += $" ({cause.GetType().Name}: {cause.Message})";
        return described.ReplaceLineEndings(" ");
    }
}
