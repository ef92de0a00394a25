using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Gatehouse.Client;

namespace Gatehouse.Samples.Backend;

/// <summary>
/// A customer's backend: it signs its own users in (here from a demo list), then mints Gatehouse auth tokens for
/// them with the server key, over mTLS. The server key and the private key stay on this machine.
/// </summary>
public static class BackendApp
{
    public sealed record LoginRequest(string? Username, string? Password);

    public sealed record LoginAnswer(string UserId, string BackendToken, string AuthToken);

    public sealed record AuthTokenAnswer(string AuthToken);

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        configure?.Invoke(builder);
        var gatehouse = builder.Configuration.GetSection("Gatehouse");
        if (string.IsNullOrWhiteSpace(gatehouse["ServerKey"]))
            throw new InvalidOperationException("Gatehouse:ServerKey is required (for example the environment variable Gatehouse__ServerKey).");
        builder.Services.AddGatehouseAuthTokenClient(options =>
        {
            options.Endpoint = new Uri(gatehouse["Endpoint"] ?? throw new InvalidOperationException("Gatehouse:Endpoint is required."));
            options.ServerKey = gatehouse["ServerKey"];
            if (gatehouse["CertificatePath"] is { Length: > 0 } certificate)
                options.ClientCertificate = ClientCertificates.Load(certificate, gatehouse["KeyPath"] ?? throw new InvalidOperationException("Gatehouse:KeyPath is required with a certificate."));
            if (gatehouse["ServerCertificatePath"] is { Length: > 0 } serverCertificate)
            {
                // Only for a Gatehouse with its self-signed certificate: trust exactly that one.
                using var pinnedCertificate = X509Certificate2.CreateFromPem(File.ReadAllText(serverCertificate));
                var pinned = pinnedCertificate.RawData;
                options.ServerCertificateValidation = (_, presented, _, _) => presented is not null && presented.GetRawCertData().AsSpan().SequenceEqual(pinned);
            }
        });
        builder.Services.AddSingleton<SignedInUsers>();

        var app = builder.Build();
        app.MapPost("/login", async (LoginRequest login, IConfiguration configuration, SignedInUsers signedIn, AuthTokenClient gatehouse, CancellationToken cancellationToken) =>
        {
            // Your own sign-in goes here (a user database, an identity provider); the demo list stands in for it.
            var expected = login.Username is null ? null : configuration[$"DemoUsers:{login.Username}"];
            if (expected is null || login.Password is null
                || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(login.Password)))
            {
                return Results.Problem("Wrong username or password.", statusCode: StatusCodes.Status401Unauthorized);
            }

            var authToken = await MintAsync(gatehouse, login.Username!, cancellationToken);
            return authToken is null
                ? Unavailable()
                : Results.Ok(new LoginAnswer(login.Username!, signedIn.Add(login.Username!), authToken));
        });
        // The app's session handler calls this when Gatehouse's access token needs renewing.
        app.MapPost("/auth-token", async (HttpRequest request, SignedInUsers signedIn, AuthTokenClient gatehouse, CancellationToken cancellationToken) =>
        {
            var userId = signedIn.Find(request.Headers.Authorization.ToString());
            if (userId is null)
                return Results.Problem("Sign in first.", statusCode: StatusCodes.Status401Unauthorized);
            var authToken = await MintAsync(gatehouse, userId, cancellationToken);
            return authToken is null ? Unavailable() : Results.Ok(new AuthTokenAnswer(authToken));
        });
        return app;
    }

    /// <summary>The auth token, or null when Gatehouse refused or could not be reached (after the client's retries).</summary>
    private static async Task<string?> MintAsync(AuthTokenClient gatehouse, string userId, CancellationToken cancellationToken)
    {
        try
        {
            return (await gatehouse.MintAsync(userId, cancellationToken)).Token;
        }
        catch (GatehouseException)
        {
            return null;
        }
    }

    private static IResult Unavailable() => Results.Problem("Gatehouse did not issue an auth token; try again later.", statusCode: StatusCodes.Status502BadGateway);

    /// <summary>The backend's own sessions (a demo: in memory).</summary>
    public sealed class SignedInUsers
    {
        private readonly ConcurrentDictionary<string, string> _users = new(StringComparer.Ordinal);

        public string Add(string userId)
        {
            var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
            _users[token] = userId;
            return token;
        }

        public string? Find(string authorization) =>
            authorization.StartsWith("Bearer ", StringComparison.Ordinal) && _users.TryGetValue(authorization["Bearer ".Length..], out var userId) ? userId : null;
    }
}
