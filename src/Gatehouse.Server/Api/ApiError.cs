using System.Reflection;
using Microsoft.AspNetCore.Http.Metadata;

namespace Gatehouse.Server.Api;

/// <summary>The contract's error envelope: <c>{"status":"error","code":…,"message":"…"}</c>.</summary>
public sealed record ErrorEnvelope(string Status, int Code, string Message);

/// <summary>
/// A refusal as the SDKs read it. <see cref="Reason"/> is a stable machine word kept for the audit log
/// and metrics; it never reaches the wire, so the message can be reworded without breaking dashboards.
/// </summary>
public sealed class ApiError(int statusCode, int code, string reason, string message)
    : IResult, IStatusCodeHttpResult, IEndpointMetadataProvider
{
    public int StatusCode { get; } = statusCode;
    public int Code { get; } = code;
    public string Reason { get; } = reason;
    public string Message { get; } = message;

    int? IStatusCodeHttpResult.StatusCode => StatusCode;

    public ErrorEnvelope Envelope => new("error", Code, Message);

    /// <summary>Sent as Retry-After on 429 and 503 answers.</summary>
    public int RetryAfterSeconds { get; init; } = 1;

    public Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = StatusCode;
        if (StatusCode is StatusCodes.Status429TooManyRequests or StatusCodes.Status503ServiceUnavailable)
            httpContext.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return httpContext.Response.WriteAsJsonAsync(Envelope, GatehouseJson.Default.ErrorEnvelope);
    }

    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder)
    {
        foreach (var status in new[] { 400, 401, 403, 404 })
            builder.Metadata.Add(new ProducesResponseTypeMetadata(status, typeof(ErrorEnvelope), ["application/json"]));
    }

    public override string ToString() => $"{Code} {Reason}: {Message}";
}
