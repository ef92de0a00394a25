using System.Collections.Concurrent;

namespace Gatehouse.Server.Tests;

public sealed record LogLine(string Category, LogLevel Level, string Message, Exception? Exception)
{
    public override string ToString() => $"{Level} {Category}: {Message}{(Exception is null ? "" : $" [{Exception.GetType().Name}]")}";

    /// <summary>Everything the line holds, the exception's whole text included (to search it for secrets).</summary>
    public string Everything => $"{Category} {Level} {Message} {Exception}";
}

/// <summary>Every line the server logs at the levels its appsettings.json lets through, as the console would show them.</summary>
public sealed class LogRecorder(ConcurrentQueue<LogLine> lines) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Recorder(categoryName, lines);

    public void Dispose()
    {
    }

    private sealed class Recorder(string category, ConcurrentQueue<LogLine> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue(new LogLine(category, logLevel, formatter(state, exception), exception));
    }
}
