using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Microsoft.AspNetCore.Diagnostics;

namespace Gatehouse.Server.Api;

/// <summary>Whatever goes wrong, the answer is the contract's envelope, never a stack trace.</summary>
internal static partial class ApiPipeline
{
    public static void UseEnvelopeForEveryError(this WebApplication app)
    {
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ApiPipeline));
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            ExceptionHandler = http =>
            {
                var handled = http.Features.Get<IExceptionHandlerFeature>();
                var failure = handled?.Error;
                // A database that does not answer is worth a retry (503), not a "server error" (500); during an outage
                // every request fails the same way, so each is one line, not a stack trace.
                if (failure is not null && DatabaseOutage.Is(failure))
                {
                    LogUnavailable(log, DatabaseOutage.Describe(failure), http.Request.Method,
                        (handled!.Endpoint as RouteEndpoint)?.RoutePattern.RawText ?? "(no endpoint)");
                    return Errors.Unavailable.ExecuteAsync(http);
                }
                var error = failure is BadHttpRequestException bad
                    ? new Refusal(bad.StatusCode, 400000, "bad_http_request", "The request could not be read.")
                    : Errors.Internal;
                return error.ExecuteAsync(http);
            },
            // The framework logs any other exception; a client that went away is not a server failure.
            SuppressDiagnosticsCallback = context => context.Exception is OperationCanceledException or BadHttpRequestException
                || DatabaseOutage.Is(context.Exception),
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
                _ => new Refusal(status, status == 401 ? 400100 : 400000, "http_status", "The request was refused."),
            };
            return error.ExecuteAsync(context.HttpContext);
        });
    }

    // The route's template, never its values: a path can hold a user id.
    [LoggerMessage(EventId = 4000, Level = LogLevel.Warning, Message = "The database does not answer ({Failure}): 503 to {Method} {Route}")]
    private static partial void LogUnavailable(ILogger log, string failure, string method, string route);

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
