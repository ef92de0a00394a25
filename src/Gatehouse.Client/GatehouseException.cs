using System.Net;
using System.Text.Json;

namespace Gatehouse.Client;

/// <summary>
/// An error answered by Gatehouse in its envelope (<c>{"status":"error","code":…,"message":…}</c>), or a failure to
/// reach it. <see cref="Code"/> is the server's code; the subclasses name the codes an app reacts to. Without an
/// envelope the type says why: <see cref="GatehouseUnreachableException"/> (no answer at all, including
/// <see cref="GatehouseTimeoutException"/>) or <see cref="GatehouseUnexpectedResponseException"/> (an answer that is not
/// Gatehouse's, such as a proxy's page or a plain 404).
/// </summary>
public class GatehouseException : Exception
{
    /// <summary>The envelope's code (for example 400100); 0 when no envelope was received (see the exception's type).</summary>
    public int Code { get; }

    /// <summary>The HTTP status of the answer; null when the server could not be reached.</summary>
    public HttpStatusCode? StatusCode { get; }

    /// <summary>Creates an error for a code and message answered by the server.</summary>
    public GatehouseException(int code, string message, HttpStatusCode? statusCode = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Code = code;
        StatusCode = statusCode;
    }

    /// <summary>Creates an error without a server code.</summary>
    public GatehouseException() : this(0, "Gatehouse could not be reached.") { }

    /// <summary>Creates an error without a server code.</summary>
    public GatehouseException(string message) : this(0, message) { }

    /// <summary>Creates an error without a server code.</summary>
    public GatehouseException(string message, Exception innerException) : this(0, message, null, innerException) { }

    internal static async Task<GatehouseException> FromResponseAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = response.StatusCode;
        if (await ReadEnvelopeAsync(response, cancellationToken).ConfigureAwait(false) is not var (code, message))
        {
            return new GatehouseUnexpectedResponseException(
                $"{Describe(response)} answered {(int)status} without Gatehouse's error envelope: not Gatehouse, or a proxy in front of it.", status);
        }
        return code switch
        {
            ErrorCodes.Unauthorized => new GatehouseUnauthorizedException(message, status),
            ErrorCodes.GloballyBanned => new GatehouseBannedException(message, status),
            ErrorCodes.BadRequest => new GatehouseValidationException(message, status),
            ErrorCodes.NotFound => new GatehouseNotFoundException(message, status),
            ErrorCodes.Forbidden or ErrorCodes.PermissionDenied => new GatehouseForbiddenException(code, message, status),
            ErrorCodes.TooManyRequests => new GatehouseRateLimitedException(message, status, response.Headers.RetryAfter?.Delta),
            _ => new GatehouseException(code, message, status),
        };
    }

    /// <summary>
    /// The server that answered and the API it was asked (<c>https://host/…/api/v4</c>), without the rest of the path
    /// or the query, which may carry a user id.
    /// </summary>
    internal static string Describe(HttpResponseMessage response)
    {
        if (response.RequestMessage?.RequestUri is not { } uri)
            return "The server";
        var path = uri.AbsolutePath;
        var api = path.IndexOf("/api/", StringComparison.Ordinal);
        var version = api < 0 ? -1 : path.IndexOf('/', api + 5);
        return Endpoints.Display(uri) + (version < 0 ? path : path[..version] + "/…");
    }

    private static async Task<(int Code, string Message)?> ReadEnvelopeAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            using var json = JsonDocument.Parse(body);
            var root = json.RootElement;
            return root.ValueKind == JsonValueKind.Object
                && root.TryGetProperty("code", out var code) && code.TryGetInt32(out var value)
                && root.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.String
                ? (value, message.GetString()!)
                : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return null;
        }
    }
}

/// <summary>The envelope codes of the social.plus contract.</summary>
public static class ErrorCodes
{
    /// <summary>The request is malformed.</summary>
    public const int BadRequest = 400000;
    /// <summary>A credential is missing, wrong, expired or revoked; an SDK session ends on it.</summary>
    public const int Unauthorized = 400100;
    /// <summary>The action is forbidden.</summary>
    public const int Forbidden = 400300;
    /// <summary>The caller lacks a permission.</summary>
    public const int PermissionDenied = 400301;
    /// <summary>The user is globally banned; an SDK session ends on it.</summary>
    public const int GloballyBanned = 400312;
    /// <summary>No such item.</summary>
    public const int NotFound = 400400;
    /// <summary>A rate limit was reached.</summary>
    public const int TooManyRequests = 429000;
    /// <summary>An internal failure of the server.</summary>
    public const int Internal = 500000;
}

/// <summary>400100: a credential is missing, wrong, expired or revoked.</summary>
public sealed class GatehouseUnauthorizedException(string message, HttpStatusCode? statusCode = HttpStatusCode.Unauthorized)
    : GatehouseException(ErrorCodes.Unauthorized, message, statusCode);

/// <summary>400312: the user is globally banned.</summary>
public sealed class GatehouseBannedException(string message, HttpStatusCode? statusCode = HttpStatusCode.Forbidden)
    : GatehouseException(ErrorCodes.GloballyBanned, message, statusCode);

/// <summary>400000: the request was refused as malformed; the message says which field.</summary>
public sealed class GatehouseValidationException(string message, HttpStatusCode? statusCode = HttpStatusCode.BadRequest)
    : GatehouseException(ErrorCodes.BadRequest, message, statusCode);

/// <summary>400400: the item (a user, for example) does not exist.</summary>
public sealed class GatehouseNotFoundException(string message, HttpStatusCode? statusCode = HttpStatusCode.NotFound)
    : GatehouseException(ErrorCodes.NotFound, message, statusCode);

/// <summary>400300 or 400301: the action is forbidden to this caller.</summary>
public sealed class GatehouseForbiddenException(int code, string message, HttpStatusCode? statusCode = HttpStatusCode.Forbidden)
    : GatehouseException(code, message, statusCode);

/// <summary>429000: a rate limit was reached; <see cref="RetryAfter"/> says when to try again.</summary>
public sealed class GatehouseRateLimitedException(string message, HttpStatusCode? statusCode, TimeSpan? retryAfter)
    : GatehouseException(ErrorCodes.TooManyRequests, message, statusCode)
{
    /// <summary>How long the server asked to wait, when it said.</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;
}

/// <summary>
/// No answer came: the connection was refused or dropped, the name did not resolve, TLS failed (an untrusted
/// certificate, a client certificate refused in the handshake), or the call timed out. The message names the innermost
/// cause; <see cref="Exception.InnerException"/> keeps the transport's exception.
/// </summary>
public class GatehouseUnreachableException(string message, Exception? innerException = null)
    : GatehouseException(0, message, null, innerException);

/// <summary>The call did not finish within the client's <c>Timeout</c> (or the <see cref="HttpClient"/>'s own, if shorter).</summary>
public sealed class GatehouseTimeoutException(string message, Exception? innerException = null)
    : GatehouseUnreachableException(message, innerException);

/// <summary>
/// An answer came, but not in Gatehouse's form: an error status without the envelope, or a success whose body is not
/// what Gatehouse sends. Usually the endpoint is wrong (a plain 404) or a proxy answered. <see cref="GatehouseException.StatusCode"/>
/// is the status it answered; <see cref="GatehouseException.Code"/> is 0.
/// </summary>
public sealed class GatehouseUnexpectedResponseException(string message, HttpStatusCode statusCode, Exception? innerException = null)
    : GatehouseException(0, message, statusCode, innerException);
