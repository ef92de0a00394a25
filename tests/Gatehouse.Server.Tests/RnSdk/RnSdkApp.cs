using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gatehouse.Client;
using Gatehouse.Server.Tests.WebSdk;

namespace Gatehouse.Server.Tests.RnSdk;

/// <summary>
/// One React Native app on one device: a Node process running the official 7.x SDK unchanged (tests/rnsdk, installed
/// by ./test.sh), driven one command at a time. A new app has a new device id (the SDK keeps it in its storage).
/// </summary>
public sealed class RnSdkApp : IAsyncDisposable
{
    private const string AnswerPrefix = "@@gatehouse ";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly Process _node;
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonElement>> _pending = new();
    private readonly ConcurrentQueue<string> _output = new();
    private int _nextId;

    private RnSdkApp(Process node)
    {
        _node = node;
        node.OutputDataReceived += (_, line) => Receive(line.Data);
        node.ErrorDataReceived += (_, line) =>
        {
            if (line.Data is not null)
                _output.Enqueue(line.Data);
        };
        node.BeginOutputReadLine();
        node.BeginErrorReadLine();
    }

    public static string Harness => Repository.PathOf("tests", "rnsdk", "harness", "app.js");

    public static async Task<RnSdkApp> StartAsync(GatehouseServer server, TestNetwork network)
    {
        if (!Directory.Exists(Repository.PathOf("tests", "rnsdk", "node_modules", "@amityco", "ts-sdk-react-native")))
            throw new InvalidOperationException("The React Native SDK is not installed: run `npm ci --prefix tests/rnsdk` (./test.sh does).");
        var start = new ProcessStartInfo("node", [Harness])
        {
            WorkingDirectory = Repository.PathOf("tests", "rnsdk"),
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // The app's clock starts where the server's (a test clock) stands, as a phone's and a server's agree.
        start.Environment["GATEHOUSE_CLOCK_MS"] = server.Clock.GetUtcNow().ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var node = Process.Start(start)!;
        var app = new RnSdkApp(node);
        await app.CallAsync("create", network.ApiKey, server.BaseAddress.ToString().TrimEnd('/'));
        return app;
    }

    private void Receive(string? line)
    {
        if (line is null)
            return;
        if (!line.StartsWith(AnswerPrefix, StringComparison.Ordinal))
        {
            _output.Enqueue(line);
            return;
        }
        var answer = JsonNode.Parse(line[AnswerPrefix.Length..])!;
        if (_pending.TryRemove(answer["id"]!.GetValue<int>(), out var waiting))
        {
            if (answer["failure"] is { } failure)
                waiting.SetException(new InvalidOperationException($"The harness failed: {failure.ToJsonString()}"));
            else
                waiting.SetResult(JsonSerializer.SerializeToElement(answer["result"], Json));
        }
    }

    public async Task<JsonElement> CallAsync(string operation, params object?[] args)
    {
        var id = Interlocked.Increment(ref _nextId);
        var answer = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = answer;
        await _node.StandardInput.WriteLineAsync(JsonSerializer.Serialize(new { id, op = operation, args }, Json));
        await _node.StandardInput.FlushAsync();
        try
        {
            return await answer.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"The SDK did not answer {operation} in 30 s. Its output:\n{string.Join('\n', _output)}");
        }
    }

    private async Task<SdkResult> ResultAsync(string operation, params object?[] args) => (await CallAsync(operation, args)).Deserialize<SdkResult>(Json)!;

    public Task<SdkResult> LoginAsync(string userId, string? authToken = null) => ResultAsync("login", userId, authToken);

    public Task<SdkResult> LoginAsVisitorAsync(string? authSignature = null, string? authSignatureExpiresAt = null) =>
        ResultAsync("loginAsVisitor", authSignature, authSignatureExpiresAt);

    public Task<SdkResult> LoginAsBotAsync() => ResultAsync("loginAsBot");

    public Task<SdkResult> LoginWithAccessTokenAsync(string accessToken) => ResultAsync("loginWithAccessToken", accessToken);

    public Task<SdkResult> SecureLogoutAsync() => ResultAsync("secureLogout");

    public Task<SdkResult> MeAsync() => ResultAsync("me");

    public async Task<string?> CurrentUserTypeAsync() => (await CallAsync("currentUserType")).GetString();

    public async Task<string?> AccessTokenAsync() => (await CallAsync("accessToken")).GetString();

    /// <summary>The device id the SDK made for itself and keeps in its storage (what an app would send its backend).</summary>
    public async Task<string?> DeviceIdAsync() => (await CallAsync("deviceId")).GetString();

    public async Task<string[]> RenewalsAskedAsync() => (await CallAsync("renewalsAsked")).Deserialize<string[]>(Json)!;

    public Task SetNextAccessTokenAsync(string token) => CallAsync("setNextAccessToken", token);

    /// <summary>What the app's session handler passes to <c>renewWithAuthSignature</c> when the SDK asks a visitor to renew.</summary>
    public Task SetNextSignatureAsync(VisitorSignature signature) => CallAsync("setNextSignature", signature.AuthSignature, signature.AuthSignatureExpiresAt);

    /// <summary>Moves the SDK's clock on, then lets its token watcher run once.</summary>
    public Task AdvanceAsync(TimeSpan by) => CallAsync("advance", (long)by.TotalMilliseconds);

    public async ValueTask DisposeAsync()
    {
        try
        {
            _node.StandardInput.Close();
            using var exited = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _node.WaitForExitAsync(exited.Token);
        }
        catch (OperationCanceledException)
        {
            _node.Kill(entireProcessTree: true);
        }
        _node.Dispose();
    }
}
