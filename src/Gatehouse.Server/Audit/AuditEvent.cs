namespace Gatehouse.Server.Audit;

/// <summary>One security event. Append-only; holds identifiers and reasons, never a secret.</summary>
internal sealed class AuditEvent
{
    public long Id { get; init; }
    public string? NetworkId { get; init; }
    public DateTimeOffset OccurredAt { get; init; }
    public required string Kind { get; init; }
    public required string Outcome { get; init; }
    public required string Actor { get; init; }
    public string? UserId { get; init; }
    public string? Reason { get; init; }
    public string? Detail { get; init; }
    public string? ClientAddress { get; init; }
}
