using System.Globalization;
using Gatehouse.Testing;

namespace Gatehouse.Bench;

/// <summary>
/// The .NET runtime's own figures, read from Gatehouse's /metrics (the System.Runtime meter). The baseline serves no
/// /metrics, so every figure is null for it.
/// </summary>
public static class RuntimeMetrics
{
    public const string AllocatedBytes = "dotnet_gc_heap_total_allocated_bytes_total";

    /// <summary>Each metric's value, summed over its series (labels); null when the server serves no /metrics.</summary>
    public static async Task<Func<string, double>?> ReadAsync(ServerProcess server)
    {
        using var client = Load.Client(server.BaseAddress, 1);
        using var response = await client.GetAsync(new Uri("/metrics", UriKind.Relative));
        if (!response.IsSuccessStatusCode)
            return null;
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n');
        return metric => lines
            .Where(line => line.StartsWith(metric, StringComparison.Ordinal) && line.Length > metric.Length && line[metric.Length] is '{' or ' ')
            // The value follows the labels; a timestamp may follow the value.
            .Sum(line => double.Parse(line[(line.LastIndexOf('}') + 1 is var end and > 0 ? end : metric.Length)..].Trim().Split(' ')[0],
                CultureInfo.InvariantCulture));
    }

    /// <summary>What the server allocated so far, in bytes; null for a server without /metrics.</summary>
    public static async Task<double?> AllocatedAsync(ServerProcess server) => (await ReadAsync(server))?.Invoke(AllocatedBytes);
}
