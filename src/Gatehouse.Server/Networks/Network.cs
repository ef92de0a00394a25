namespace Gatehouse.Server.Networks;

/// <summary>An application: what one API key opens, with its own users, keys and settings.</summary>
internal sealed class Network
{
    public required string Id { get; init; }
    public required string Name { get; set; }
    public required string Region { get; init; }

    /// <summary>Public by design (it ships inside apps), so it is stored as is and shown in the console.</summary>
    public required string ApiKey { get; set; }

    public bool SecureMode { get; set; }

    /// <summary>When on, the server-key and admin-token endpoints demand one of the network's client certificates.</summary>
    public bool MtlsEnabled { get; set; }

    /// <summary>When on, each auth token opens one session only (the hosted product accepts one until it expires).</summary>
    public bool SingleUseAuthTokens { get; set; }

    /// <summary>Whether anonymous visitors may open read-only sessions (<c>POST /api/v5/sessions/visitor</c>); off by default.</summary>
    public bool VisitorsAllowed { get; set; }

    /// <summary>Whether crawlers may open read-only sessions (<c>POST /api/v5/sessions/bot</c>); off by default.</summary>
    public bool BotsAllowed { get; set; }

    public ChatSettings Chat { get; set; } = new();
    public DateTimeOffset CreatedAt { get; init; }
}

/// <summary>What <c>GET /api/v3/network-settings/chat</c> answers; the SDK refuses to log in without it.</summary>
internal sealed class ChatSettings
{
    public bool Enabled { get; set; } = true;
    public bool AllowMentionedChannel { get; set; }
    public bool MessagePreviewEnabled { get; set; }
    public bool MessagePreviewIncludeDeleted { get; set; }
    public bool MarkerEnabled { get; set; }
}
