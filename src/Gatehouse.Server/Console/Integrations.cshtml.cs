using Gatehouse.Server.Api;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Networks;
using Gatehouse.Server.ServerKeys;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Users;
using Gatehouse.Server.Visitors;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Console;

/// <summary>Settings → Integrations: the seed, step by step.</summary>
internal sealed class IntegrationsModel(
    NetworkAdministration networks,
    ServerKeyService serverKeys,
    VisitorSecrets visitorSecrets,
    UserAdministration users,
    OneTimeReveals reveals,
    GatehouseDb db,
    AuditLog audit,
    TimeProvider clock,
    IOptions<GatehouseOptions> options, ConsoleAccess access) : ConsolePage(access)
{
    /// <summary>Which confirmation dialog is open (from ?confirm=…), if any.</summary>
    [BindProperty(SupportsGet = true)]
    public string? Confirm { get; set; }

    public IReadOnlyList<ServerKey> Keys { get; private set; } = [];

    /// <summary>The one-time slot (<see cref="OneTimeReveals"/>) a generation redirected here with.</summary>
    [BindProperty(SupportsGet = true)]
    public Guid? Reveal { get; set; }

    /// <summary>A new server key or visitor secret, taken from its slot: shown by this GET only.</summary>
    public string? NewServerKey { get; private set; }
    public string? NewVisitorSecret { get; private set; }

    /// <summary>The slot was already taken (a reload): the page says the secret is not shown again.</summary>
    public bool RevealGone { get; private set; }

    public IReadOnlyList<VisitorSecret> VisitorSecrets { get; private set; } = [];

    public int Visitors { get; private set; }
    public int Bots { get; private set; }

    /// <summary>While a dialog is open the page behind it is inert: Tab and clicks reach only the dialog.</summary>
    public bool DialogOpen => NewServerKey is not null || NewVisitorSecret is not null
        || (Confirm is "api-key" && Access.CanManageSettings)
        || (Confirm is "secure-mode" && Access.CanChangeSecurity)
        || (Confirm is "server-key" && Access.CanGenerateServerKey)
        || (Confirm is "visitor-secret" && Access.CanChangeSecurity);

    public TimeSpan GracePeriod => options.Value.ServerKeyGracePeriod;

    public DateTimeOffset Now => clock.GetUtcNow();

    /// <summary>For the confirmation of turning secure mode on: the sessions it would end.</summary>
    public int SessionsWithoutAuthToken { get; private set; }

    public bool HasServerKey => Keys.Any(k => k.ExpiresAt is null || k.ExpiresAt > Now);

    public static string Sessions(int count) => count == 1 ? "1 session" : $"{count} sessions";

    public async Task OnGetAsync()
    {
        if (Reveal is { } slot)
        {
            var values = await reveals.TakeAsync(slot, CurrentAdmin.Id, RevealKind, HttpContext.RequestAborted);
            NewServerKey = values?.GetValueOrDefault("serverKey");
            NewVisitorSecret = values?.GetValueOrDefault("visitorSecret");
            RevealGone = values is null;
        }
        Keys = await serverKeys.ListAsync(Access.Network.Id, HttpContext.RequestAborted);
        VisitorSecrets = await visitorSecrets.ListAsync(Access.Network.Id, HttpContext.RequestAborted);
        var kinds = await users.CountByKindAsync(Access.Network.Id, HttpContext.RequestAborted);
        Visitors = kinds.GetValueOrDefault(UserKind.Visitor);
        Bots = kinds.GetValueOrDefault(UserKind.Bot);
        if (Confirm is "secure-mode" && !Access.Network.SecureMode)
            SessionsWithoutAuthToken = await networks.CountSessionsWithoutAuthTokenAsync(Access.Network.Id, HttpContext.RequestAborted);
    }

    public async Task<IActionResult> OnPostRegenerateApiKeyAsync()
    {
        if (!Access.CanManageSettings)
            return Refused();
        await networks.RegenerateApiKeyAsync(Access.Network, Actor, HttpContext.RequestAborted);
        Status = "A new API key was generated. The previous key no longer works.";
        return Redirect(Here);
    }

    public async Task<IActionResult> OnPostSecureModeAsync(bool on, bool keepSessions)
    {
        if (!Access.CanChangeSecurity)
        {
            audit.Record(SecurityEvents.NotPermitted(AuditKinds.SecureModeChanged, Actor, Access.Network.Id), HttpContext.Origin());
            return Refused();
        }
        var wasOn = Access.Network.SecureMode;
        var (refused, sessions) = await networks.SetSecureModeAsync(Access.Network, on, Actor, keepSessions, HttpContext.RequestAborted);
        if (refused is not null)
        {
            Problem = refused;
            return Redirect(Here);
        }
        Status = !on ? "Secure mode is off: clients log in with the API key alone."
            : wasOn ? "Secure mode is on."
            : sessions == 0 ? "Secure mode is on: every new session needs an auth token."
            : keepSessions ? $"Secure mode is on: every new session needs an auth token. {Sessions(sessions)} opened without one {(sessions == 1 ? "was" : "were")} kept."
            : $"Secure mode is on: every new session needs an auth token. {Sessions(sessions)} opened without one {(sessions == 1 ? "was" : "were")} ended.";
        return Redirect(Here);
    }

    public async Task<IActionResult> OnPostAuthTokenUseAsync(bool singleUse)
    {
        if (!Access.CanChangeSecurity)
        {
            audit.Record(SecurityEvents.NotPermitted(AuditKinds.AuthTokenUseChanged, Actor, Access.Network.Id), HttpContext.Origin());
            return Refused();
        }
        await networks.SetSingleUseAuthTokensAsync(Access.Network, singleUse, Actor, HttpContext.RequestAborted);
        Status = singleUse ? "Each auth token now opens one session only." : "Auth tokens now open sessions until they expire.";
        return Redirect(Here);
    }

    public async Task<IActionResult> OnPostAnonymousModesAsync(bool visitors, bool bots)
    {
        if (!Access.CanChangeSecurity)
        {
            audit.Record(SecurityEvents.NotPermitted(AuditKinds.VisitorModeChanged, Actor, Access.Network.Id), HttpContext.Origin());
            return Refused();
        }
        var network = Access.Network;
        var (visitorsWere, botsWere) = (network.VisitorsAllowed, network.BotsAllowed);
        var endedVisitors = await networks.SetAnonymousModeAsync(network, UserKind.Visitor, visitors, Actor, HttpContext.RequestAborted);
        var endedBots = await networks.SetAnonymousModeAsync(network, UserKind.Bot, bots, Actor, HttpContext.RequestAborted);
        Status = (visitorsWere, botsWere) == (visitors, bots) ? "Nothing changed."
            : $"Visitors are {(visitors ? "allowed" : "refused")}, bots are {(bots ? "allowed" : "refused")}."
              + (endedVisitors + endedBots > 0 ? $" {Sessions(endedVisitors + endedBots)} of theirs ended." : "");
        return Redirect(Here);
    }

    public async Task<IActionResult> OnPostGenerateVisitorSecretAsync()
    {
        if (!Access.CanChangeSecurity)
        {
            audit.Record(SecurityEvents.NotPermitted(AuditKinds.VisitorSecretGenerated, Actor, Access.Network.Id), HttpContext.Origin());
            return Refused();
        }
        var secret = await visitorSecrets.GenerateAsync(Access.Network, Actor, HttpContext.RequestAborted);
        return await RevealAsync("visitorSecret", secret);
    }

    public async Task<IActionResult> OnPostGenerateServerKeyAsync()
    {
        if (!Access.CanGenerateServerKey)
        {
            audit.Record(SecurityEvents.NotPermitted(AuditKinds.ServerKeyGenerated, Actor, Access.Network.Id), HttpContext.Origin());
            return Refused();
        }
        var (key, error) = await serverKeys.GenerateAsync(Access.Network, Actor, HttpContext.RequestAborted);
        if (error is not null)
        {
            Problem = error.Message;
            return Redirect(Here);
        }
        return await RevealAsync("serverKey", key!);
    }

    private string RevealKind => "integrations:" + Access.Network.Id;

    private async Task<IActionResult> RevealAsync(string name, string secret)
    {
        var slot = await reveals.PutAsync(CurrentAdmin.Id, RevealKind, new Dictionary<string, string> { [name] = secret }, HttpContext.RequestAborted);
        return Redirect($"{Here}?reveal={slot}");
    }

    public async Task<IActionResult> OnPostChatSettingsAsync(bool enabled, bool allowMentionedChannel, bool messagePreviewEnabled,
        bool messagePreviewIncludeDeleted, bool markerEnabled)
    {
        if (!Access.CanManageSettings)
            return Refused();
        var chat = Access.Network.Chat;
        chat.Enabled = enabled;
        chat.AllowMentionedChannel = allowMentionedChannel;
        chat.MessagePreviewEnabled = messagePreviewEnabled;
        chat.MessagePreviewIncludeDeleted = messagePreviewIncludeDeleted;
        chat.MarkerEnabled = markerEnabled;
        await db.SaveChangesAsync(HttpContext.RequestAborted);
        audit.Record(SecurityEvents.ChatSettingsChanged(Actor, Access.Network.Id,
            $"enabled={enabled} mention={allowMentionedChannel} preview={messagePreviewEnabled} preview_deleted={messagePreviewIncludeDeleted} marker={markerEnabled}"),
            HttpContext.Origin());
        Status = "Chat settings saved.";
        return Redirect(Here);
    }

    public string Here => $"/console/n/{Access.Network.Id}/integrations";

    /// <summary>A server key's or visitor secret's state, from the end of its grace (null while it is the newest).</summary>
    public string State(DateTimeOffset? expiresAt) => expiresAt switch
    {
        null => "Active",
        { } end when end > Now => $"Replaced; works until {end:yyyy-MM-dd HH:mm} UTC",
        { } end => $"Stopped {end:yyyy-MM-dd HH:mm} UTC",
    };

    /// <summary>How long something lasts: "for 1 hour" (or "no longer" when the grace is zero).</summary>
    public static string During(TimeSpan span) => span == TimeSpan.Zero ? "no longer" : "for " + Amount(span);

    private static string Amount(TimeSpan span) =>
        span.TotalHours >= 1 && span.Minutes == 0 ? $"{span.TotalHours:0} hour{(span.TotalHours == 1 ? "" : "s")}" : $"{span.TotalMinutes:0} minutes";
}
