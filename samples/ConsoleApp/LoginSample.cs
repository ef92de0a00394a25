using System.Net.Http.Headers;
using System.Net.Http.Json;
using Gatehouse.Client;

namespace Gatehouse.Samples.ConsoleApp;

/// <summary>An app that signs in to its backend, logs in to Gatehouse with the auth token it gets, and logs out.</summary>
public static class LoginSample
{
    private sealed record LoginAnswer(string UserId, string BackendToken, string AuthToken);

    private sealed record AuthTokenAnswer(string AuthToken);

    /// <summary>Exit code 0 when it logged in and out; 1, with one line on <paramref name="error"/>, when it could not.</summary>
    /// <param name="error">Where a failure is told (standard error); <paramref name="output"/> when not given.</param>
    public static async Task<int> RunAsync(Uri backend, Uri gatehouse, string apiKey, string username, string password, TextWriter output,
        TextWriter? error = null)
    {
        error ??= output;
        using var backendHttp = new HttpClient { BaseAddress = backend };
        LoginAnswer login;
        try
        {
            using var signIn = await backendHttp.PostAsJsonAsync("login", new { username, password });
            if (!signIn.IsSuccessStatusCode)
            {
                await error.WriteLineAsync($"The backend refused the sign-in ({(int)signIn.StatusCode}).");
                return 1;
            }
            login = (await signIn.Content.ReadFromJsonAsync<LoginAnswer>())!;
        }
        catch (HttpRequestException e)
        {
            await error.WriteLineAsync($"The backend at {backend} cannot be reached: {e.Message}");
            return 1;
        }

        await using var client = new GatehouseClient(new GatehouseClientOptions { ApiKey = apiKey, Endpoint = gatehouse });
        client.SessionStateChanged += (_, change) => output.WriteLine($"session: {change.Current}");
        try
        {
            var user = await client.LoginAsync(login.UserId, displayName: username, authToken: login.AuthToken,
                sessionHandler: new BackendRenewal(backendHttp, login.BackendToken));
            await output.WriteLineAsync($"Logged in to Gatehouse as {user.UserId}.");
            await output.WriteLineAsync($"users/me says: {(await client.GetCurrentUserAsync()).DisplayName}");
            await client.LogoutAsync();
            await output.WriteLineAsync("Logged out.");
            return 0;
        }
        catch (GatehouseUnreachableException e)
        {
            // Gatehouse never answered (the message names why): an outage, which is no refusal.
            await error.WriteLineAsync($"Gatehouse at {gatehouse} did not answer: {e.Message}");
            return 1;
        }
        catch (GatehouseException e)
        {
            await error.WriteLineAsync($"Gatehouse refused: {e.Code} {e.Message}");
            return 1;
        }
    }

    /// <summary>Renews Gatehouse's access token with a fresh auth token from the backend.</summary>
    private sealed class BackendRenewal(HttpClient backend, string backendToken) : ISessionHandler
    {
        public async Task SessionWillRenewAccessTokenAsync(AccessTokenRenewal renewal, CancellationToken cancellationToken)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "auth-token");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", backendToken);
            using var response = await backend.SendAsync(request, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                renewal.UnableToRetrieveAuthToken();
                return;
            }
            var answer = (await response.Content.ReadFromJsonAsync<AuthTokenAnswer>(cancellationToken))!;
            renewal.RenewWithAuthToken(answer.AuthToken);
        }
    }
}
