using Microsoft.AspNetCore.Diagnostics;

namespace Gatehouse.Server.Api;

/// <summary>Whatever goes wrong, the answer is the contract's envelope, never a stack trace.</summary>
public static class ApiPipeline
{
    public static void UseEnvelopeForEveryError(this WebApplication app)
    {
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            ExceptionHandler = http =>
            {
                var failure = http.Features.Get<IExceptionHandlerFeature>()?.Error;
                var error = failure is BadHttpRequestException bad
                    ? new ApiError(bad.StatusCode, 400000, "bad_http_request", "The request could not be read.")
                    : Errors.Internal;
                return error.ExecuteAsync(http);
            },
            // The framework logs the exception; a client that went away is not a server failure.
            SuppressDiagnosticsCallback = context => context.Exception is OperationCanceledException or BadHttpRequestException,
        });
        app.UseStatusCodePages(context =>
        {
            var status = context.HttpContext.Response.StatusCode;
            var error = status switch
            {
                404 => Errors.NotFound,
                405 => Errors.MethodNotAllowed,
                >= 500 => Errors.Internal,
                _ => new ApiError(status, status == 401 ? 400100 : 400000, "http_status", "The request was refused."),
            };
            return error.ExecuteAsync(context.HttpContext);
        });
    }
}
