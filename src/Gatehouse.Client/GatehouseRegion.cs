namespace Gatehouse.Client;

/// <summary>The regions of the social.plus contract; each maps to its public host.</summary>
public enum GatehouseRegion
{
    /// <summary>Europe: <c>https://apix.eu.amity.co/</c>.</summary>
    Eu,
    /// <summary>Singapore: <c>https://apix.sg.amity.co/</c>.</summary>
    Sg,
    /// <summary>United States: <c>https://apix.us.amity.co/</c>.</summary>
    Us,
}

/// <summary>Where a region's API answers.</summary>
public static class GatehouseEndpoints
{
    /// <summary>The public host of a region, as the official SDKs use it.</summary>
    public static Uri ForRegion(GatehouseRegion region) => region switch
    {
        GatehouseRegion.Eu => new Uri("https://apix.eu.amity.co/"),
        GatehouseRegion.Sg => new Uri("https://apix.sg.amity.co/"),
        GatehouseRegion.Us => new Uri("https://apix.us.amity.co/"),
        _ => throw new ArgumentOutOfRangeException(nameof(region), region, "Unknown region; use eu, sg or us, or give an endpoint."),
    };
}
