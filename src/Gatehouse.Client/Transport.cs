using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Client;

/// <summary>How a server-to-server client retries: on transient failures only, never on a 4xx answer.</summary>
public sealed class RetryOptions
{
    /// <summary>Retries after the first attempt (default 3; 0 turns retries off).</summary>
    public int MaxRetries { get; set; } = 3;

    /// <summary>The first wait; each next one doubles, with up to 50 % random jitter (default 200 ms).</summary>
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The longest single wait, also for a server's <c>Retry-After</c> (default 5 s).</summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// Sends one call to one endpoint, reads the answer or the envelope, retries what is worth retrying, and bounds the
/// whole call by a timeout. Each call is an activity of <see cref="GatehouseTelemetry.ActivitySourceName"/>.
/// </summary>
internal sealed partial class Transport(HttpClient http, Uri endpoint, RetryOptions? retry, TimeSpan timeout, TimeProvider time, ILogger logger)
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<T> SendAsync<T>(string operation, Func<HttpRequestMessage> request, CancellationToken cancellationToken)
    {
        using var activity = GatehouseTelemetry.Source.StartActivity("gatehouse " + operation, ActivityKind.Client);
        using var deadline = Deadline(cancellationToken);
        try
        {
            using var response = await SendWithRetriesAsync(operation, request, activity, deadline.Token).ConfigureAwait(false);
            T? answer;
            try
            {
                answer = await response.Content.ReadFromJsonAsync<T>(Json, deadline.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                // Not Gatehouse, or a proxy's page (or a charset nobody knows): the SDK's own error type, not a parser's.
                throw new GatehouseUnexpectedResponseException(
                    $"The answer from {GatehouseException.Describe(response)} is not what Gatehouse sends.", response.StatusCode, e);
            }
            return answer is null or IAnswer { IsComplete: false }
                ? throw new GatehouseUnexpectedResponseException(
                    $"The answer from {GatehouseException.Describe(response)} lacks what Gatehouse sends.", response.StatusCode)
                : answer;
        }
        catch (Exception e) when (Failed(operation, activity, e, deadline, cancellationToken) is { } translated)
        {
            throw translated;
        }
    }

    public async Task SendAsync(string operation, Func<HttpRequestMessage> request, CancellationToken cancellationToken)
    {
        using var activity = GatehouseTelemetry.Source.StartActivity("gatehouse " + operation, ActivityKind.Client);
        using var deadline = Deadline(cancellationToken);
        try
        {
            using var _ = await SendWithRetriesAsync(operation, request, activity, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (Failed(operation, activity, e, deadline, cancellationToken) is { } translated)
        {
            throw translated;
        }
    }

    private CancellationTokenSource Deadline(CancellationToken cancellationToken)
    {
        var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        return deadline;
    }

    /// <summary>
    /// Records the failure on the activity and says what the caller sees: the SDK's timeout for a deadline that passed,
    /// a cancellation that carries the caller's token for the caller's, the exception itself otherwise (null rethrows it
    /// unchanged, stack and all).
    /// </summary>
    private Exception? Failed(string operation, Activity? activity, Exception e, CancellationTokenSource deadline, CancellationToken cancellationToken)
    {
        Exception? translated = null;
        if (e is OperationCanceledException cancelled && cancellationToken.IsCancellationRequested)
        {
            // Carrying the caller's own token, which a caller compares, not the linked one the deadline made.
            translated = cancelled.CancellationToken == cancellationToken ? null : new OperationCanceledException(e.Message, e, cancellationToken);
        }
        else if (e is OperationCanceledException && deadline.IsCancellationRequested)
        {
            translated = new GatehouseTimeoutException(
                $"Gatehouse at {Endpoints.Display(endpoint)} did not answer within {timeout.TotalSeconds:0.###} s (the client's Timeout).", e);
        }
        var seen = translated ?? e;
        var errorType = seen.GetType().Name;
        activity?.SetStatus(ActivityStatusCode.Error, seen.Message);
        activity?.SetTag("error.type", errorType);
        if (seen is GatehouseException { Code: not 0 } answered)
            activity?.SetTag("gatehouse.error_code", answered.Code);
        if (seen is not OperationCanceledException)
            LogFailed(logger, operation, errorType, seen.Message);
        return translated;
    }

    private async Task<HttpResponseMessage> SendWithRetriesAsync(string operation, Func<HttpRequestMessage> request, Activity? activity,
        CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var retriesLeft = retry is not null && attempt < retry.MaxRetries;
            activity?.SetTag("gatehouse.attempts", attempt + 1);
            HttpResponseMessage response;
            var started = time.GetTimestamp();
            try
            {
                using var message = request();
                if (message.RequestUri is { IsAbsoluteUri: false } relative)
                    message.RequestUri = new Uri(endpoint, relative);
                response = await http.SendAsync(message, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e) when (retriesLeft)
            {
                await RetryAsync(operation, attempt, Innermost(e), null, cancellationToken).ConfigureAwait(false);
                continue;
            }
            catch (HttpRequestException e)
            {
                throw new GatehouseUnreachableException($"Gatehouse at {Endpoints.Display(endpoint)} could not be reached: {Innermost(e)}", e);
            }
            catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                // The HttpClient's own timeout, shorter than ours: a passing failure like a dropped connection.
                if (retriesLeft)
                {
                    await RetryAsync(operation, attempt, "the HttpClient's timeout", null, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                throw new GatehouseTimeoutException($"Gatehouse at {Endpoints.Display(endpoint)} did not answer within the HttpClient's timeout.", e);
            }

            var elapsed = time.GetElapsedTime(started);
            LogAnswered(logger, operation, (int)response.StatusCode, elapsed);
            activity?.SetTag("http.response.status_code", (int)response.StatusCode);
            if (response.IsSuccessStatusCode)
                return response;
            using (response)
            {
                if (retriesLeft && IsTransient(response.StatusCode))
                {
                    await RetryAsync(operation, attempt, $"answered {(int)response.StatusCode}", response.Headers.RetryAfter?.Delta, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                throw await GatehouseException.FromResponseAsync(response, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The message that says what went wrong: HttpClient wraps TLS and socket failures in "see inner exception", the
    /// cause (an untrusted certificate, a refused connection) sits at the bottom.
    /// </summary>
    private static string Innermost(Exception e)
    {
        while (e.InnerException is not null)
            e = e.InnerException;
        return e.Message;
    }

    /// <summary>A server-side failure that may pass; a 4xx (429 included) is the caller's to handle and never retried.</summary>
    private static bool IsTransient(HttpStatusCode status) =>
        status is HttpStatusCode.InternalServerError or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    private Task RetryAsync(string operation, int attempt, string cause, TimeSpan? retryAfter, CancellationToken cancellationToken)
    {
        var backoff = retry!.BaseDelay * Math.Pow(2, attempt) * (1 + Random.Shared.NextDouble() / 2);
        var wait = retryAfter is { } asked && asked > backoff ? asked : backoff;
        wait = wait < retry.MaxDelay ? wait : retry.MaxDelay;
        LogRetrying(logger, operation, cause, attempt + 1, retry.MaxRetries, wait.TotalMilliseconds);
        return Task.Delay(wait, time, cancellationToken);
    }

    public static HttpRequestMessage WithJson<T>(HttpMethod method, string path, T body) =>
        new(method, new Uri(path, UriKind.Relative)) { Content = JsonContent.Create(body, options: Json) };

    public static HttpRequestMessage Without(HttpMethod method, string path) => new(method, new Uri(path, UriKind.Relative));

    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "Gatehouse {Operation} answered {Status} in {Elapsed}")]
    private static partial void LogAnswered(ILogger logger, string operation, int status, TimeSpan elapsed);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Gatehouse {Operation}: {Cause}; retry {Retry} of {MaxRetries} in {DelayMs:0} ms")]
    private static partial void LogRetrying(ILogger logger, string operation, string cause, int retry, int maxRetries, double delayMs);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Gatehouse {Operation} failed with {ErrorType}: {Reason}")]
    private static partial void LogFailed(ILogger logger, string operation, string errorType, string reason);
}

/// <summary>What the SDK gives OpenTelemetry.</summary>
public static class GatehouseTelemetry
{
    /// <summary>
    /// The <see cref="ActivitySource"/> every call to Gatehouse is an activity of (<c>gatehouse login</c>,
    /// <c>gatehouse auth_token.mint</c>, …): add it to a tracer with <c>AddSource(GatehouseTelemetry.ActivitySourceName)</c>.
    /// </summary>
    public const string ActivitySourceName = "Gatehouse.Client";

    internal static readonly ActivitySource Source = new(ActivitySourceName,
        typeof(GatehouseTelemetry).Assembly.GetName().Version?.ToString(3));
}

/// <summary>Where the clients send their calls: checked once, the same way for every client.</summary>
internal static class Endpoints
{
    /// <summary>
    /// The endpoint as a base for relative paths, or why it cannot be one. A path is kept: <c>https://host/gatehouse</c>
    /// means <c>https://host/gatehouse/api/…</c>, as it would with the trailing slash.
    /// </summary>
    public static (Uri? Endpoint, string? Problem) Check(Uri? endpoint, string what)
    {
        if (endpoint is null)
            return (null, $"{what} is required: the address of your Gatehouse, for example https://gatehouse.example/.");
        if (!endpoint.IsAbsoluteUri || endpoint.Scheme is not ("http" or "https"))
            return (null, $"{what} must be an absolute http or https address, for example https://gatehouse.example/.");
        // A password in the address would be repeated in every error, log line and trace that names the endpoint.
        if (endpoint.UserInfo.Length > 0)
            return (null, $"{what} cannot carry a user name or password; Gatehouse's credentials go in their own settings.");
        if (endpoint.Query.Length > 0 || endpoint.Fragment.Length > 0)
            return (null, $"{what} cannot have a query or a fragment.");
        return endpoint.AbsolutePath.EndsWith('/') ? (endpoint, null) : (new Uri(endpoint.AbsoluteUri + "/"), null);
    }

    /// <summary>How an endpoint is named in messages: its scheme, host and port.</summary>
    public static string Display(Uri endpoint) => $"{endpoint.Scheme}://{endpoint.Authority}";
}
