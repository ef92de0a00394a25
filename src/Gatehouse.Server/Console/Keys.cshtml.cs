using Gatehouse.Server.Tokens;
using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Server.Console;

/// <summary>Portal → Signing keys: the keys that sign every network's tokens, for super admins to rotate and retire.</summary>
internal sealed class KeysModel(SigningKeys keys, TimeProvider clock, ConsoleAccess access) : ConsolePage(access)
{
    public const string Here = "/console/keys";

    [BindProperty(SupportsGet = true)]
    public string? Confirm { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Kid { get; set; }

    public IReadOnlyList<SigningKeyState> Keys { get; private set; } = [];
    public DateTimeOffset Now => clock.GetUtcNow();

    /// <summary>The key a retirement is being confirmed for, when it may be retired.</summary>
    public SigningKeyState? Retiring => Confirm == "retire" ? Keys.FirstOrDefault(k => k.Id == Kid && k.Use is SigningKeyUse.Verifying or SigningKeyUse.Expired) : null;

    public bool DialogOpen => Confirm == "rotate" || Retiring is not null;

    protected override bool SuperAdminsOnly => true;

    public async Task<IActionResult> OnGetAsync()
    {
        Keys = await keys.ListAsync(HttpContext.RequestAborted);
        return Page();
    }

    public async Task<IActionResult> OnPostRotateAsync()
    {
        var kid = await keys.RotateAsync(Actor, HttpContext.RequestAborted);
        Status = $"Key {Abbreviated(kid)} signs new tokens now (every node within {SigningKeys.ReReadInterval.TotalSeconds:0} seconds). Tokens signed before stay valid.";
        return Redirect(Here);
    }

    public async Task<IActionResult> OnPostRetireAsync(string? kid)
    {
        switch (await keys.RetireAsync(kid ?? "", Actor, HttpContext.RequestAborted))
        {
            case RetireOutcome.Ended:
                Status = $"Key {Abbreviated(kid!)} is retired: every token it signed is refused; apps renew theirs with their refresh tokens.";
                break;
            case RetireOutcome.StillSigning:
                Problem = "That key signs new tokens: rotate first, then retire it.";
                break;
            case RetireOutcome.AlreadyEnded:
                Problem = "That key was already retired.";
                break;
            default:
                Problem = "No such key.";
                break;
        }
        return Redirect(Here);
    }

    /// <summary>Key ids are 43-character thumbprints; the start is enough to tell them apart on screen.</summary>
    public static string Abbreviated(string kid) => kid.Length > 12 ? kid[..12] + "…" : kid;

    public string Age(DateTimeOffset at)
    {
        var age = Now - at;
        return age.TotalDays >= 2 ? $"{(int)age.TotalDays} days ago"
            : age.TotalHours >= 2 ? $"{(int)age.TotalHours} hours ago"
            : age.TotalMinutes >= 2 ? $"{(int)age.TotalMinutes} minutes ago"
            : "just now";
    }
}
