using BenchmarkDotNet.Running;

// Usage: dotnet run -c Release --project bench/Gatehouse.Bench.Micro -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Gatehouse.Bench.Micro.TokenBenchmarks).Assembly).Run(args);
