using System.Net.Sockets;
using Gatehouse.Client;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Gatehouse.Server.Tests.Client;

/// <summary>
/// The backend clients' retries, against a stand-in on 127.0.0.1 that fails on purpose (a real Gatehouse does not
/// fail on demand): transient failures are retried with backoff, a 4xx never.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class RetryTests : IAsyncLifetime
{
    private WebApplication _flaky = null!;
    private readonly Queue<(int Status, string Body)> _answers = new();
    private readonly List<string> _paths = [];
    private int _calls;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        _flaky = builder.Build();
        _flaky.Run(async context =>
        {
            Interlocked.Increment(ref _calls);
            lock (_paths)
                _paths.Add(context.Request.Path + context.Request.QueryString);
            var (status, body) = _answers.Count > 0 ? _answers.Dequeue() : (500, "");
            context.Response.StatusCode = status;
            if (status == 429)
                context.Response.Headers.RetryAfter = "1";
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(body);
        });
        await _flaky.StartAsync();
    }

    public async Task DisposeAsync() => await _flaky.DisposeAsync();

    private Uri Address => new(_flaky.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());

    private AuthTokenClient Client(Uri? endpoint = null, Microsoft.Extensions.Logging.ILogger? logger = null) => new(new HttpClient(), new AuthTokenClientOptions
    {
        Endpoint = endpoint ?? Address,
        ServerKey = "gsk_test",
        Retry = new RetryOptions { MaxRetries = 3, BaseDelay = TimeSpan.FromMilliseconds(10) },
    }, logger: logger);

    private const string Minted = """{"authToken":"eyJ.test","expiresAt":"2026-11-24T10:10:00Z"}""";
    private const string Unavailable = """{"status":"error","code":500000,"message":"The database cannot be reached."}""";

    [Fact]
    public async Task Transient_failures_are_retried_until_an_answer()
    {
        _answers.Enqueue((503, Unavailable));
        _answers.Enqueue((502, ""));
        _answers.Enqueue((200, Minted));

        var token = await Client().MintAsync("alice");

        Assert.Equal("eyJ.test", token.Token);
        Assert.Equal(3, _calls);
    }

    [Fact]
    public async Task Retries_stop_after_the_limit_with_the_servers_error()
    {
        for (var i = 0; i < 5; i++)
            _answers.Enqueue((503, Unavailable));

        var error = await Assert.ThrowsAsync<GatehouseException>(() => Client().MintAsync("alice"));

        Assert.Equal((500000, HttpStatusCode.ServiceUnavailable), (error.Code, error.StatusCode));
        Assert.Equal(4, _calls);
    }

    [Theory]
    [InlineData(400, """{"status":"error","code":400000,"message":"userId is required."}""", typeof(GatehouseValidationException))]
    [InlineData(401, """{"status":"error","code":400100,"message":"The server key is not valid."}""", typeof(GatehouseUnauthorizedException))]
    [InlineData(429, """{"status":"error","code":429000,"message":"Too many requests."}""", typeof(GatehouseRateLimitedException))]
    public async Task A_4xx_is_never_retried_and_comes_back_typed(int status, string body, Type expected)
    {
        _answers.Enqueue((status, body));
        _answers.Enqueue((200, Minted));

        var error = await Assert.ThrowsAnyAsync<GatehouseException>(() => Client().MintAsync("alice"));

        Assert.IsType(expected, error);
        Assert.Equal(1, _calls);
        if (error is GatehouseRateLimitedException limited)
            Assert.Equal(TimeSpan.FromSeconds(1), limited.RetryAfter);
    }

    [Fact]
    public async Task An_answer_that_is_not_gatehouses_comes_back_as_a_gatehouse_error()
    {
        _answers.Enqueue((200, "<html>a proxy's login page</html>"));

        var error = await Assert.ThrowsAsync<GatehouseUnexpectedResponseException>(() => Client().MintAsync("alice"));

        Assert.Contains("is not what Gatehouse sends", error.Message, StringComparison.Ordinal);
        Assert.Equal((0, HttpStatusCode.OK), (error.Code, error.StatusCode));
    }

    [Fact]
    public async Task A_plain_404_is_an_answer_without_the_envelope_not_an_unreachable_server()
    {
        _answers.Enqueue((404, "Not Found"));

        var error = await Assert.ThrowsAsync<GatehouseUnexpectedResponseException>(() => Client().MintAsync("alice"));

        Assert.Equal((0, HttpStatusCode.NotFound), (error.Code, error.StatusCode));
        Assert.Contains("answered 404 without Gatehouse's error envelope", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _calls);
    }

    [Fact]
    public async Task An_unreachable_server_is_retried_then_reported()
    {
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var closedPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var error = await Assert.ThrowsAsync<GatehouseUnreachableException>(() => Client(new Uri($"http://127.0.0.1:{closedPort}/")).MintAsync("alice"));

        // The cause itself, not HttpClient's "see inner exception".
        Assert.EndsWith("could not be reached: Connection refused", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, error.Code);
        Assert.Null(error.StatusCode);
        Assert.IsType<HttpRequestException>(error.InnerException);
    }

    [Fact]
    public async Task An_endpoint_with_a_path_keeps_it_with_or_without_the_trailing_slash()
    {
        _answers.Enqueue((200, Minted));
        _answers.Enqueue((200, Minted));

        await Client(new Uri(Address, "gatehouse")).MintAsync("alice");
        await Client(new Uri(Address, "gatehouse/")).MintAsync("alice");

        Assert.Equal(["/gatehouse/api/v4/authentication/token", "/gatehouse/api/v4/authentication/token"], _paths);
    }

    [Fact]
    public async Task Retries_are_logged_with_their_cause_and_never_the_server_key()
    {
        _answers.Enqueue((503, Unavailable));
        _answers.Enqueue((200, Minted));
        var logs = new Recorder();

        await Client(logger: logs.Logger).MintAsync("alice");

        Assert.Contains(logs.Lines, line => line.StartsWith("Warning: Gatehouse auth_token.mint: answered 503; retry 1 of 3 in ", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Lines, line => line.Contains("gsk_test", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(null, null, "Endpoint is required: the address of your Gatehouse")]
    [InlineData("ftp://gatehouse.example/", null, "Endpoint must be an absolute http or https address")]
    [InlineData("https://gatehouse.example/", GatehouseRegion.Eu, "Set Endpoint (your Gatehouse) or Region (the hosted social.plus service), not both.")]
    public void The_app_client_refuses_settings_that_would_send_its_key_nowhere_or_to_a_third_party_unasked(string? endpoint, GatehouseRegion? region,
        string expected)
    {
        var refused = Assert.Throws<ArgumentException>(() => new GatehouseClient(new GatehouseClientOptions
        {
            ApiKey = "sg_key",
            Endpoint = endpoint is null ? null : new Uri(endpoint),
            Region = region,
        }));

        Assert.Contains(expected, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_hosted_service_is_called_only_when_its_region_is_chosen()
    {
        var options = new GatehouseClientOptions { ApiKey = "sg_key", Region = GatehouseRegion.Eu };
        Assert.Empty(options.Problems());
        await using var client = new GatehouseClient(options);
        Assert.Equal(SessionState.NotLoggedIn, client.State);
    }

    /// <summary>The suite's <see cref="LogRecorder"/>, its lines as "Level: message".</summary>
    private sealed class Recorder
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<LogLine> _lines = new();

        public Recorder() => Logger = new LogRecorder(_lines).CreateLogger("Gatehouse.Client");

        public Microsoft.Extensions.Logging.ILogger Logger { get; }

        public IReadOnlyList<string> Lines => [.. _lines.Select(line => $"{line.Level}: {line.Message}")];
    }
}
