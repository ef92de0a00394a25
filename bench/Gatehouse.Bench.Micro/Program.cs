using BenchmarkDotNet.Running;

// Usage: dotnet run -c Release --project bench/Gatehouse.Bench.Micro -- --filter '*'
//        dotnet run -c Release --project bench/Gatehouse.Bench.Micro -- footprint [entries]
//        bench/retention.sh [scale]   (runs the `retention` mode below)
if (args is ["footprint", ..])
{
    await Gatehouse.Bench.Micro.CacheFootprint.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20_000);
    return;
}
if (args is ["retention", ..])
{
    await Gatehouse.Bench.Micro.RetentionPass.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1);
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Gatehouse.Bench.Micro.TokenBenchmarks).Assembly).Run(args);
