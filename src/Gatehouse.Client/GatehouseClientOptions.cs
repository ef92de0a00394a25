namespace Gatehouse.Client;

/// <summary>Settings of <see cref="GatehouseClient"/>.</summary>
public sealed class GatehouseClientOptions
{
    /// <summary>The longest period a timer takes (2^32 − 2 ms).</summary>
    private static readonly TimeSpan MaxCheckInterval = TimeSpan.FromDays(49);

    /// <summary>The network's API key (public; it ships in apps).</summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// The address of your Gatehouse, for example <c>https://gatehouse.example/</c>; a path is kept
    /// (<c>https://example.com/gatehouse</c> calls <c>https://example.com/gatehouse/api/…</c>). Required unless
    /// <see cref="Region"/> is set.
    /// </summary>
    public Uri? Endpoint { get; set; }

    /// <summary>
    /// The hosted social.plus service's region, for an app that calls the hosted service instead of a Gatehouse: its
    /// API key then goes to social.plus. Set either this or <see cref="Endpoint"/>; there is no default, so that a
    /// forgotten endpoint never sends a key to a third party.
    /// </summary>
    public GatehouseRegion? Region { get; set; }

    /// <summary>
    /// This device's identifier. Keep it across restarts: when another user logs in with the same device identifier,
    /// the previous user's sessions on it end. Default: a new <c>dotnetSdk#&lt;uuid&gt;</c> for each client.
    /// </summary>
    public string? DeviceId { get; set; }

    /// <summary>Where the session is kept (default in memory).</summary>
    public ITokenStore TokenStore { get; set; } = new InMemoryTokenStore();

    /// <summary>How often the access token's age is checked for renewal (default 10 minutes, as the official SDKs; at most 49 days).</summary>
    public TimeSpan RenewalCheckInterval { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>The longest a call may take before it fails with <see cref="GatehouseTimeoutException"/> (default 30 s).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The clock (default the system's); tests move a fake one.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>What is wrong with these settings, each said so that it can be fixed; empty when they are usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(ApiKey))
            problems.Add("ApiKey is required: the network's API key from the console.");
        if (Endpoint is not null && Region is not null)
            problems.Add("Set Endpoint (your Gatehouse) or Region (the hosted social.plus service), not both.");
        else if (Region is { } region && !Enum.IsDefined(region))
            problems.Add($"Region '{region}' is not one of eu, sg, us.");
        else if (Region is null && Endpoints.Check(Endpoint, nameof(Endpoint)).Problem is { } endpoint)
            problems.Add(endpoint + " To call the hosted social.plus service instead, set Region.");
        if (RenewalCheckInterval <= TimeSpan.Zero || RenewalCheckInterval > MaxCheckInterval)
            problems.Add("RenewalCheckInterval must be more than zero and at most 49 days.");
        if (Timeout <= TimeSpan.Zero || Timeout > ServerClientOptions.MaxTimeout)
            problems.Add($"Timeout must be more than zero and at most {ServerClientOptions.MaxTimeout.TotalMinutes:0} minutes.");
        if (TokenStore is null)
            problems.Add("TokenStore cannot be null.");
        if (TimeProvider is null)
            problems.Add("TimeProvider cannot be null.");
        return problems;
    }

    /// <summary>Where calls go: the endpoint with its path kept, or the hosted region's host.</summary>
    internal Uri BaseAddress() => Region is { } region ? GatehouseEndpoints.ForRegion(region) : Endpoints.Check(Endpoint, nameof(Endpoint)).Endpoint!;
}
