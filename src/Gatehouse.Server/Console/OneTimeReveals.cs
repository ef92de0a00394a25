using System.Text.Json;
using Gatehouse.Server.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Console;

/// <summary>A secret waiting, encrypted, for the one page that shows it (see <see cref="OneTimeReveals"/>).</summary>
internal sealed class OneTimeReveal
{
    public Guid Id { get; init; }
    public Guid AdminId { get; init; }
    public required string Kind { get; init; }
    public required string ProtectedValues { get; init; }
    public DateTimeOffset ExpiresAt { get; init; }
}

/// <summary>
/// How the console shows a new secret once without answering a POST with it: the POST puts the secret in a slot on the
/// server (the database, so the GET may reach any node) and redirects to the page with the slot's id; that GET takes
/// the slot, which deletes it. A reload, the back button or a second tab then finds nothing, and no second secret is
/// made. A slot opens only for the admin who made it and only as the kind it was made for, and lives five minutes.
/// </summary>
internal sealed class OneTimeReveals(GatehouseDb db, IDataProtectionProvider dataProtection, TimeProvider clock)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
    private readonly IDataProtector _protector = dataProtection.CreateProtector("Gatehouse.Console.OneTimeReveals.v1");

    public async Task<Guid> PutAsync(Guid adminId, string kind, IReadOnlyDictionary<string, string> values, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var slot = new OneTimeReveal
        {
            Id = Guid.CreateVersion7(now),
            AdminId = adminId,
            Kind = kind,
            ProtectedValues = _protector.Protect(JsonSerializer.Serialize(values)),
            ExpiresAt = now + Lifetime,
        };
        db.OneTimeReveals.Add(slot);
        await db.SaveChangesAsync(ct);
        return slot.Id;
    }

    /// <summary>The values, the first time this admin asks for this slot as this kind; null ever after.</summary>
    public async Task<IReadOnlyDictionary<string, string>?> TakeAsync(Guid id, Guid adminId, string kind, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var slot = await db.OneTimeReveals.AsNoTracking()
            .FirstOrDefaultAsync(r => r.Id == id && r.AdminId == adminId && r.Kind == kind && r.ExpiresAt > now, ct);
        // Deleted before it is shown, and only by the request whose delete succeeded: two tabs racing show it once.
        if (slot is null || await db.OneTimeReveals.Where(r => r.Id == id).ExecuteDeleteAsync(ct) != 1)
            return null;
        return JsonSerializer.Deserialize<Dictionary<string, string>>(_protector.Unprotect(slot.ProtectedValues));
    }
}
