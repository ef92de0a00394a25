namespace Gatehouse.Server.Refusals;

/// <summary>
/// Why Gatehouse said no, as the protocol rules decide it, with nothing of HTTP in it: endpoints write it as the
/// contract's envelope (<c>{"status":"error","code":…,"message":"…"}</c>) with <see cref="Status"/>, console pages
/// and operator commands show <see cref="Message"/>. <see cref="Reason"/> is a stable machine word kept for the audit
/// log and metrics; it never reaches the wire, so a message can be reworded without breaking dashboards.
/// </summary>
internal sealed class Refusal(int status, int code, string reason, string message)
{
    /// <summary>The HTTP status the contract gives this refusal.</summary>
    public int Status { get; } = status;
    public int Code { get; } = code;
    public string Reason { get; } = reason;
    public string Message { get; } = message;

    /// <summary>How long to wait before trying again; sent as Retry-After on 429 and 503 answers.</summary>
    public int RetryAfterSeconds { get; init; } = 1;

    public override string ToString() => $"{Code} {Reason}: {Message}";
}
