using System.Security.Claims;
using Gatehouse.Server.Admins;
using Gatehouse.Server.Configuration;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Console;

/// <summary>The web console: Razor Pages under /console, cookie sign-in, headers that keep the pages to themselves.</summary>
internal static class ConsoleSetup
{
    public const string Scheme = "console";

    /// <summary>
    /// Between a right password and the code of an account with two-factor on: names the admin for five minutes to
    /// the code page only, and opens nothing else.
    /// </summary>
    public const string SecondFactorScheme = "console-second-factor";

    /// <summary>Every console page but sign-in: an admin signed in with the console's cookie.</summary>
    public const string Policy = "console";
    public const string StampClaim = "gatehouse:stamp";

    public static IServiceCollection AddGatehouseConsole(this IServiceCollection services)
    {
        services.AddRazorPages(pages =>
        {
            pages.RootDirectory = "/Console";
            pages.Conventions.AuthorizeFolder("/", Policy);
            pages.Conventions.AllowAnonymousToPage("/SignIn");
            pages.Conventions.AllowAnonymousToPage("/SignInCode");
        });
        services.AddScoped<ConsoleAccess>();
        services.AddScoped<ConsoleCookieEvents>();
        services.AddAuthentication().AddCookie(Scheme, cookie =>
        {
            ConsoleCookie(cookie, "gatehouse_console", "/console");
            cookie.SlidingExpiration = true;
            cookie.EventsType = typeof(ConsoleCookieEvents);
        }).AddCookie(SecondFactorScheme, cookie =>
        {
            ConsoleCookie(cookie, "gatehouse_console_2fa", "/console/signin");
            cookie.ExpireTimeSpan = TimeSpan.FromMinutes(5);
            cookie.SlidingExpiration = false;
        });
        services.AddOptions<CookieAuthenticationOptions>(Scheme)
            .Configure<IOptions<GatehouseOptions>>((cookie, gatehouse) => cookie.ExpireTimeSpan = gatehouse.Value.Console.SessionIdleTimeout);
        services.AddAuthorizationBuilder().AddPolicy(Policy, policy => policy.AddAuthenticationSchemes(Scheme).RequireAuthenticatedUser());
        services.AddAntiforgery(antiforgery =>
        {
            antiforgery.Cookie.Name = "gatehouse_console_af";
            antiforgery.Cookie.Path = "/console";
            antiforgery.Cookie.SameSite = SameSiteMode.Strict;
            antiforgery.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        });
        return services;
    }

    /// <summary>What every console cookie is: unreadable by scripts, never sent by another site, Secure over HTTPS.</summary>
    private static void ConsoleCookie(CookieAuthenticationOptions cookie, string name, string path)
    {
        cookie.Cookie.Name = name;
        cookie.Cookie.Path = path;
        cookie.Cookie.HttpOnly = true;
        cookie.Cookie.SameSite = SameSiteMode.Strict;
        cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        cookie.LoginPath = "/console/signin";
    }

    public static void UseGatehouseConsole(this WebApplication app)
    {
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
        });
        app.MapGet("/", () => TypedResults.Redirect("/console"));
        app.MapRazorPages();
    }

    public static ClaimsPrincipal PrincipalFor(Admin admin, string scheme = Scheme) => new(new ClaimsIdentity(
        [
            new Claim(ClaimTypes.NameIdentifier, admin.Id.ToString()),
            new Claim(ClaimTypes.Name, admin.Email),
            new Claim(StampClaim, admin.SecurityStamp),
        ], scheme));

}

/// <summary>The console cookie's checks, with the services they need given to them.</summary>
internal sealed class ConsoleCookieEvents(AdminAccounts admins) : CookieAuthenticationEvents
{
    /// <summary>Every request re-reads the admin: a password change or sign-out elsewhere ends this cookie too.</summary>
    public override async Task ValidatePrincipal(CookieValidatePrincipalContext context)
    {
        var id = context.Principal?.FindFirstValue(ClaimTypes.NameIdentifier);
        var stamp = context.Principal?.FindFirstValue(ConsoleSetup.StampClaim);
        var admin = Guid.TryParse(id, out var adminId) ? await admins.FindAsync(adminId, context.HttpContext.RequestAborted) : null;
        if (admin is null || admin.DisabledAt is not null || stamp is null || !string.Equals(admin.SecurityStamp, stamp, StringComparison.Ordinal))
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(ConsoleSetup.Scheme);
            return;
        }
        context.HttpContext.Features.Set(admin);
    }

    /// <summary>A signed-in admin who may not see a page gets a plain 403, not a redirect to a page that does not exist.</summary>
    public override Task RedirectToAccessDenied(RedirectContext<CookieAuthenticationOptions> context)
    {
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        return Task.CompletedTask;
    }
}
