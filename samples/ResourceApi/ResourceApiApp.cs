using Gatehouse.AspNetCore;

namespace Gatehouse.Samples.ResourceApi;

/// <summary>
/// A customer's own API that the app calls with its Gatehouse access token: the token is checked against Gatehouse's
/// keys and, with the server key, against revocation, before any endpoint runs.
/// </summary>
public static class ResourceApiApp
{
    public sealed record CurrentUser(string UserId, string NetworkId, string UserType);

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        configure?.Invoke(builder);
        var gatehouse = builder.Configuration.GetSection("Gatehouse");
        builder.Services.AddAuthentication(GatehouseAuthentication.DefaultScheme).AddGatehouse(options =>
        {
            options.Authority = Uri.TryCreate(gatehouse["Authority"], UriKind.Absolute, out var authority) ? authority : null;
            options.ServerKey = gatehouse["ServerKey"] is { Length: > 0 } key ? key : null;
            if (TimeSpan.TryParse(gatehouse["RevocationCheckWindow"], System.Globalization.CultureInfo.InvariantCulture, out var window))
                options.RevocationCheckWindow = window;
            if (TimeSpan.TryParse(gatehouse["KeyRefreshInterval"], System.Globalization.CultureInfo.InvariantCulture, out var refresh))
                options.KeyRefreshInterval = refresh;
            options.RequireHttpsMetadata = gatehouse.GetValue("RequireHttpsMetadata", true);
        });
        builder.Services.AddAuthorization();

        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/me", (HttpContext http) => TypedResults.Ok(new CurrentUser(
                http.User.FindFirst(GatehouseClaims.UserId)!.Value,
                http.User.FindFirst(GatehouseClaims.NetworkId)!.Value,
                http.User.FindFirst(GatehouseClaims.UserType)!.Value)))
            .RequireAuthorization();
        return app;
    }
}
