using System.Security.Claims;
using Gatehouse.Server.Admins;
using Gatehouse.Server.Configuration;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Console;

/// <summary>The web console: Razor Pages under /console, cookie sign-in, headers that keep the pages to themselves.</summary>
public static class ConsoleSetup
{
    public const string Scheme = "console";
    public const string StampClaim = "gatehouse:stamp";

    public static IServiceCollection AddGatehouseConsole(this IServiceCollection services)
    {
        services.AddRazorPages(pages =>
        {
            pages.RootDirectory = "/Console";
            pages.Conventions.AuthorizeFolder("/");
            pages.Conventions.AllowAnonymousToPage("/SignIn");
        });
        services.AddScoped<ConsoleAccess>();
        services.AddAuthentication(Scheme).AddCookie(Scheme, cookie =>
        {
            cookie.Cookie.Name = "gatehouse_console";
            cookie.Cookie.Path = "/console";
            cookie.Cookie.HttpOnly = true;
            cookie.Cookie.SameSite = SameSiteMode.Strict;
            cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            cookie.LoginPath = "/console/signin";
            cookie.SlidingExpiration = true;
            cookie.Events.OnValidatePrincipal = ValidateAsync;
            cookie.Events.OnRedirectToAccessDenied = context =>
            {
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                return Task.CompletedTask;
            };
        });
        services.AddOptions<CookieAuthenticationOptions>(Scheme)
            .Configure<IOptions<GatehouseOptions>>((cookie, gatehouse) => cookie.ExpireTimeSpan = gatehouse.Value.Console.SessionIdleTimeout);
        services.AddAuthorization();
        services.AddAntiforgery(antiforgery =>
        {
            antiforgery.Cookie.Name = "gatehouse_console_af";
            antiforgery.Cookie.Path = "/console";
            antiforgery.Cookie.SameSite = SameSiteMode.Strict;
            antiforgery.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        });
        return services;
    }

    public static void UseGatehouseConsole(this WebApplication app)
    {
        // WebApplication puts authentication and authorization in front of every request unless the app has placed
        // them itself. Only the console has users to authenticate (its cookie), so they run in its branch alone: an
        // API call no longer looks for a console cookie (a twentieth of a mint's CPU, docs/benchmarks.md), and a
        // console request checks its cookie once rather than twice. An endpoint outside /console that asked for
        // authorization would fail closed (ASP.NET Core refuses to run it without the middleware).
        var pipeline = (IApplicationBuilder)app;
        pipeline.Properties["__AuthenticationMiddlewareSet"] = true;
        pipeline.Properties["__AuthorizationMiddlewareSet"] = true;
        app.UseWhen(http => http.Request.Path.StartsWithSegments("/console"), console =>
        {
            console.Use(async (http, next) =>
            {
                var headers = http.Response.Headers;
                headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
                    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";
                headers.XContentTypeOptions = "nosniff";
                headers["Referrer-Policy"] = "no-referrer";
                headers.CacheControl = "no-store";
                if (http.Request.IsHttps)
                    headers.StrictTransportSecurity = "max-age=31536000";
                await next(http);
            });
            console.UseAuthentication();
            console.UseAuthorization();
        });
        app.MapGet("/", () => TypedResults.Redirect("/console"));
        app.MapRazorPages();
    }

    public static ClaimsPrincipal PrincipalFor(Admin admin) => new(new ClaimsIdentity(
        [
            new Claim(ClaimTypes.NameIdentifier, admin.Id.ToString()),
            new Claim(ClaimTypes.Name, admin.Email),
            new Claim(StampClaim, admin.SecurityStamp),
        ], Scheme));

    /// <summary>Every request re-reads the admin: a password change or sign-out elsewhere ends this cookie too.</summary>
    private static async Task ValidateAsync(CookieValidatePrincipalContext context)
    {
        var id = context.Principal?.FindFirstValue(ClaimTypes.NameIdentifier);
        var stamp = context.Principal?.FindFirstValue(StampClaim);
        var admins = context.HttpContext.RequestServices.GetRequiredService<AdminAccounts>();
        var admin = Guid.TryParse(id, out var adminId) ? await admins.FindAsync(adminId, context.HttpContext.RequestAborted) : null;
        if (admin is null || stamp is null || !string.Equals(admin.SecurityStamp, stamp, StringComparison.Ordinal))
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(Scheme);
            return;
        }
        context.HttpContext.Features.Set(admin);
    }
}
