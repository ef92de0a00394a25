using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Gatehouse.Server.Operations;
using Xunit.Abstractions;

namespace Gatehouse.Server.Tests;

/// <summary>
/// Sixty seconds of mixed load at 64 connections (session creation, refresh, bearer validation, auth-token mint)
/// against a server process. Figures: requests, errors (must be 0), memory growth, p99 latency. Bounded by time
/// and by a request cap.
/// </summary>
[Collection(RunsAlone.Name)]
[Trait(Category.Name, Category.Slow)]
public sealed class SoakTests(ITestOutputHelper output) : IDisposable
{
    private const int Connections = 64;
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(60);
    private readonly string _work = Directory.CreateTempSubdirectory("gatehouse-soak").FullName;

    public void Dispose() => GatehouseServer.DeleteDataDirectory(_work);

    [Fact]
    public async Task Sixty_seconds_of_mixed_load_at_64_connections_without_an_error()
    {
        var data = Path.Combine(_work, "data");
        await using var server = await ServerNode.StartAsync(null, data);
        var open = await OperatorAsync(data, "network", "create", "soak-open");
        var openKey = Field(open, "API key:");
        var secureId = (await OperatorAsync(data, "network", "create", "soak-secure")).Split(' ')[1];
        await OperatorAsync(data, "secure-mode", secureId, "on");
        var serverKey = Field(await OperatorAsync(data, "server-key", "generate", secureId), "Server key:");
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Connections }) { BaseAddress = server.BaseAddress };

        async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, object? body = null, (string Name, string Value)? header = null)
        {
            using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
            if (header is { } h)
                request.Headers.TryAddWithoutValidation(h.Name, h.Value);
            return await client.SendAsync(request);
        }

        var latencies = new ConcurrentBag<double>();
        var errors = new ConcurrentBag<string>();
        var memoryAtStart = 0.0;
        using var stop = new CancellationTokenSource(Duration);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Connections).Select(worker => Task.Run(async () =>
        {
            string? accessToken = null;
            string? refreshToken = null;
            for (var i = 0; i < 200_000 && !stop.IsCancellationRequested; i++)
            {
                if (worker == 0 && memoryAtStart == 0 && clock.Elapsed > TimeSpan.FromSeconds(5))
                    memoryAtStart = server.ResidentMegabytes();
                var started = Stopwatch.GetTimestamp();
                HttpResponseMessage response;
                var operation = accessToken is null ? 0 : i % 4;
                try
                {
                    response = operation switch
                    {
                        0 => await SendAsync(HttpMethod.Post, "/api/v5/sessions", new { userId = $"soak-{worker}-{i}", deviceId = $"soak-device-{worker}" }, ("x-api-key", openKey)),
                        1 => await SendAsync(HttpMethod.Post, "/api/v4/sessions/refresh", new { refreshToken }, ("x-api-key", openKey)),
                        2 => await SendAsync(HttpMethod.Get, "/api/v3/users/me", null, ("Authorization", "Bearer " + accessToken)),
                        _ => await SendAsync(HttpMethod.Get, $"/api/v3/authentication/token?userId=soak-{worker}", null, ("x-server-key", serverKey)),
                    };
                }
                catch (HttpRequestException e)
                {
                    errors.Add(e.Message);
                    continue;
                }
                using (response)
                {
                    var text = await response.Content.ReadAsStringAsync();
                    latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    if (!response.IsSuccessStatusCode)
                    {
                        errors.Add($"{operation}: {(int)response.StatusCode} {text}");
                        continue;
                    }
                    if (operation is 0 or 1)
                    {
                        var body = JsonNode.Parse(text)!;
                        accessToken = body["accessToken"]!.GetValue<string>();
                        refreshToken = body["refreshToken"]!.GetValue<string>();
                    }
                }
            }
        })));
        var memoryAtEnd = server.ResidentMegabytes();

        var sorted = latencies.Order().ToArray();
        var p99 = sorted.Length == 0 ? double.NaN : sorted[(int)(sorted.Length * 0.99)];
        output.WriteLine($"requests: {sorted.Length}; errors: {errors.Count}; memory: {memoryAtStart:0} MiB after warm-up, {memoryAtEnd:0} MiB at the end " +
            $"(growth {memoryAtEnd - memoryAtStart:0} MiB); p99 latency: {p99:0.0} ms");
        Assert.True(errors.IsEmpty, string.Join('\n', errors.Take(5)));
        Assert.True(sorted.Length > 1000, $"only {sorted.Length} requests completed");
    }

    private static async Task<string> OperatorAsync(string data, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await OperatorCommands.RunAsync(args, output, error,
            builder => builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Gatehouse:DataDirectory"] = data }));
        Assert.True(exit == 0, error.ToString());
        return output.ToString();
    }

    private static string Field(string text, string label) =>
        text.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith(label, StringComparison.Ordinal))[label.Length..].Trim();
}
