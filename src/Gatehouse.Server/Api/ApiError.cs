using System.Globalization;
using Gatehouse.Server.Refusals;

namespace Gatehouse.Server.Api;

/// <summary>The contract's error envelope: <c>{"status":"error","code":…,"message":"…"}</c>.</summary>
internal sealed record ErrorEnvelope(string Status, int Code, string Message);

/// <summary>
/// A <see cref="Refusal"/> written as the SDKs read it: its status, Retry-After where it has one, and the envelope. The
/// OpenAPI document lists the refusals each endpoint really gives (<c>ApiDocumentation</c>), not every status this could be.
/// </summary>
internal sealed class ApiError(Refusal refusal) : IResult, IStatusCodeHttpResult
{
    public Refusal Refusal { get; } = refusal;

    int? IStatusCodeHttpResult.StatusCode => Refusal.Status;

    public static implicit operator ApiError(Refusal refusal) => new(refusal);

    public Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = Refusal.Status;
        if (Refusal.Status is StatusCodes.Status429TooManyRequests or StatusCodes.Status503ServiceUnavailable)
            httpContext.Response.Headers.RetryAfter = Refusal.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        return httpContext.Response.WriteAsJsonAsync(new ErrorEnvelope("error", Refusal.Code, Refusal.Message), ApiJson.Default.ErrorEnvelope);
    }

    public override string ToString() => Refusal.ToString();
}

internal static class RefusalResults
{
    /// <summary>The refusal as an endpoint's answer.</summary>
    public static ApiError AsResult(this Refusal refusal) => new(refusal);

    public static Task ExecuteAsync(this Refusal refusal, HttpContext http) => new ApiError(refusal).ExecuteAsync(http);
}
