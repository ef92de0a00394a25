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
                    : DatabaseUnavailable(failure) ? Errors.Unavailable
                    : Errors.Internal;
                return error.ExecuteAsync(http);
            },
            // The framework logs the exception; a client that went away is not a server failure.
            SuppressDiagnosticsCallback = context => context.Exception is OperationCanceledException or BadHttpRequestException,
        });
        app.UseStatusCodePages(context =>
        {
            if (context.HttpContext.Request.Path.StartsWithSegments("/console"))
                return ConsoleStatusPageAsync(context.HttpContext);
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

    /// <summary>A database that cannot be reached is worth a retry (503), not a "server error" (500).</summary>
    private static bool DatabaseUnavailable(Exception? failure)
    {
        for (var e = failure; e is not null; e = e.InnerException)
        {
            if (e is System.Data.Common.DbException or TimeoutException or System.Net.Sockets.SocketException)
                return true;
        }
        return false;
    }

    /// <summary>People read the console: a refusal there is a short page, not JSON.</summary>
    private static Task ConsoleStatusPageAsync(HttpContext http)
    {
        var status = http.Response.StatusCode;
        var message = status switch
        {
            403 => "You do not have the right to do this.",
            404 => "There is nothing here, or you have no access to it.",
            _ => "The request could not be completed.",
        };
        http.Response.ContentType = "text/html; charset=utf-8";
        return http.Response.WriteAsync(
            $"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{status} · Gatehouse console</title>" +
            $"<link rel=\"stylesheet\" href=\"/console/assets/console.css\"></head><body><main><h1>{status}</h1><p>{message}</p>" +
            "<p><a href=\"/console\">Back to the console</a></p></main></body></html>");
    }
}
