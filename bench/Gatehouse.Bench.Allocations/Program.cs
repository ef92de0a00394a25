using System.Globalization;
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

// Where a server's bytes are allocated: reads a trace taken with `dotnet-trace collect --profile gc-verbose` (the
// runtime samples an allocation about every 100 KB, with its type and stack) and prints the share of the sampled
// bytes by type, then by type and the innermost frames. docs/benchmarks.md, "Where a request's bytes are made".
if (args.Length is 0 or > 2 || !File.Exists(args[0]))
{
    Console.Error.WriteLine("Usage: Gatehouse.Bench.Allocations <trace.nettrace> [frames per stack, default 8]");
    return 2;
}
var framesShown = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 8;

using var trace = new TraceLog(TraceLog.CreateFromEventPipeDataFile(args[0]));
var byType = new Dictionary<string, long>(StringComparer.Ordinal);
var byStack = new Dictionary<string, long>(StringComparer.Ordinal);
long total = 0;
foreach (var traceEvent in trace.Events)
{
    if (traceEvent is not GCAllocationTickTraceData tick)
        continue;
    total += tick.AllocationAmount64;
    byType[tick.TypeName] = byType.GetValueOrDefault(tick.TypeName) + tick.AllocationAmount64;
    var frames = new List<string> { tick.TypeName };
    for (var frame = traceEvent.CallStack(); frame is not null && frames.Count <= framesShown; frame = frame.Caller)
    {
        var method = frame.CodeAddress.FullMethodName;
        frames.Add(string.IsNullOrEmpty(method) ? "?" + frame.CodeAddress.ModuleName : method);
    }
    var stack = string.Join("\n        ", frames);
    byStack[stack] = byStack.GetValueOrDefault(stack) + tick.AllocationAmount64;
}
if (total == 0)
{
    Console.Error.WriteLine("No allocation samples: was the trace taken with --profile gc-verbose?");
    return 1;
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{total / 1024:N0} KB sampled. By type:"));
foreach (var (type, bytes) in byType.OrderByDescending(pair => pair.Value).Take(30))
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{100.0 * bytes / total,6:F1} %  {type}"));
Console.WriteLine();
Console.WriteLine("By type and where it was allocated:");
foreach (var (stack, bytes) in byStack.OrderByDescending(pair => pair.Value).Take(40))
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{100.0 * bytes / total,6:F1} %  {stack}"));
return 0;
