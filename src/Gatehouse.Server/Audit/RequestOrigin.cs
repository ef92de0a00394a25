namespace Gatehouse.Server.Audit;

/// <summary>
/// Where a request came from, as the audit log records it: the client's address (after any trusted proxy) and the
/// trace id that ties its log lines together. Taken from the request at the edge, so the rules never see HTTP.
/// </summary>
internal readonly record struct RequestOrigin(string? ClientAddress, string? TraceId);
