using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

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

/// <summary>Sends one call, reads the answer or the envelope, and retries what is worth retrying.</summary>
internal sealed class Transport(HttpClient http, RetryOptions? retry, TimeProvider time)
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public HttpClient Http => http;

    public async Task<T> SendAsync<T>(Func<HttpRequestMessage> request, CancellationToken cancellationToken)
    {
        using var response = await SendForResponseAsync(request, cancellationToken).ConfigureAwait(false);
        try
        {
            return await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken).ConfigureAwait(false)
                ?? throw new GatehouseException("Gatehouse answered an empty body.");
        }
        catch (JsonException e)
        {
            // Not Gatehouse, or a proxy's page: the caller gets the SDK's own error type, not a parser's.
            throw new GatehouseException($"The answer from {response.RequestMessage?.RequestUri?.GetLeftPart(UriPartial.Path)} is not what Gatehouse sends.", e);
        }
    }

    public async Task<HttpResponseMessage> SendForResponseAsync(Func<HttpRequestMessage> request, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var retriesLeft = retry is not null && attempt < retry.MaxRetries;
            HttpResponseMessage response;
            try
            {
                using var message = request();
                response = await http.SendAsync(message, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException) when (retriesLeft)
            {
                await DelayAsync(attempt, null, cancellationToken).ConfigureAwait(false);
                continue;
            }
            catch (HttpRequestException e)
            {
                throw new GatehouseException($"Gatehouse could not be reached: {e.Message}", e);
            }
            catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                // HttpClient's own timeout, not the caller's cancellation.
                if (retriesLeft)
                {
                    await DelayAsync(attempt, null, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                throw new GatehouseException("Gatehouse did not answer in time.", e);
            }

            if (response.IsSuccessStatusCode)
                return response;
            using (response)
            {
                if (retriesLeft && IsTransient(response.StatusCode))
                {
                    await DelayAsync(attempt, response.Headers.RetryAfter?.Delta, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                throw await GatehouseException.FromResponseAsync(response, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>A server-side failure that may pass; a 4xx (429 included) is the caller's to handle and never retried.</summary>
    private static bool IsTransient(HttpStatusCode status) =>
        status is HttpStatusCode.InternalServerError or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    private Task DelayAsync(int attempt, TimeSpan? retryAfter, CancellationToken cancellationToken)
    {
        var backoff = retry!.BaseDelay * Math.Pow(2, attempt) * (1 + Random.Shared.NextDouble() / 2);
        var wait = retryAfter is { } asked && asked > backoff ? asked : backoff;
        return Task.Delay(wait < retry.MaxDelay ? wait : retry.MaxDelay, time, cancellationToken);
    }

    public static HttpRequestMessage WithJson<T>(HttpMethod method, string path, T body) =>
        new(method, path) { Content = JsonContent.Create(body, options: Json) };
}
