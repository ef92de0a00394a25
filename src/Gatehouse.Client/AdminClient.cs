using Microsoft.Extensions.Logging;
using System.Globalization;

namespace Gatehouse.Client;

/// <summary>
/// The admin API, called with an admin token from the customer's backend: end a user's sessions, ban and unban,
/// look users up, read the audit log. Every call acts on the token's network only.
/// </summary>
public sealed class AdminClient
{
    private readonly Transport _transport;
    private readonly string _adminToken;

    /// <summary>Creates a client over an <see cref="HttpClient"/> made with <see cref="ServerClientOptions.CreateHandler"/>
    /// (or registered with <see cref="GatehouseServiceCollectionExtensions.AddGatehouseAdminClient(Microsoft.Extensions.DependencyInjection.IServiceCollection, Microsoft.Extensions.Configuration.IConfiguration)"/>).</summary>
    /// <exception cref="ArgumentException">The endpoint or admin token is missing.</exception>
    /// <param name="http">Sends the calls; its <see cref="HttpClient.BaseAddress"/> is neither read nor changed.</param>
    /// <param name="options">The settings; checked here.</param>
    /// <param name="time">The clock retries wait on (default the system's).</param>
    /// <param name="logger">Where calls, retries and failures are logged (never a credential or token).</param>
    public AdminClient(HttpClient http, AdminClientOptions options, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _transport = options.CreateTransport(http, time, logger);
        _adminToken = options.AdminToken!;
    }

    /// <summary>Ends every session of a user (its access and refresh tokens stop working at once).</summary>
    public Task RevokeSessionsAsync(string userId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(userId);
        return SendAsync("admin.revoke_sessions", () => Transport.WithJson(HttpMethod.Delete, "api/v4/sessions", new { userId }), cancellationToken);
    }

    /// <summary>Bans a user from the network: its sessions end and it cannot open new ones.</summary>
    /// <exception cref="GatehouseNotFoundException">No such user in the network.</exception>
    public Task BanAsync(string userId, CancellationToken cancellationToken = default) =>
        SendAsync("admin.ban", HttpMethod.Post, UserPath(userId) + "/ban", cancellationToken);

    /// <summary>Lifts a ban; the user's old tokens stay ended.</summary>
    /// <exception cref="GatehouseNotFoundException">No such user in the network.</exception>
    public Task UnbanAsync(string userId, CancellationToken cancellationToken = default) =>
        SendAsync("admin.unban", HttpMethod.Post, UserPath(userId) + "/unban", cancellationToken);

    /// <summary>One user.</summary>
    /// <exception cref="GatehouseNotFoundException">No such user in the network.</exception>
    public async Task<GatehouseUser> GetUserAsync(string userId, CancellationToken cancellationToken = default)
    {
        var path = UserPath(userId);
        var answer = await _transport.SendAsync<UsersAnswer>("admin.get_user", () => WithToken(Transport.Without(HttpMethod.Get, path)), cancellationToken)
            .ConfigureAwait(false);
        return answer.Users[0];
    }

    /// <summary>Users whose userId or display name contains <paramref name="search"/>, a page at a time.</summary>
    public async Task<UserPage> SearchUsersAsync(string? search = null, int page = 1, int limit = 20, CancellationToken cancellationToken = default)
    {
        var path = string.Create(CultureInfo.InvariantCulture, $"api/v4/admin/users?page={page}&limit={limit}")
            + (string.IsNullOrEmpty(search) ? "" : "&search=" + Uri.EscapeDataString(search));
        var answer = await _transport.SendAsync<UserPageAnswer>("admin.search_users", () => WithToken(Transport.Without(HttpMethod.Get, path)), cancellationToken)
            .ConfigureAwait(false);
        return new UserPage(answer.Users, answer.Paging.Page, answer.Paging.Limit, answer.Paging.Total);
    }

    /// <summary>The network's audit log, newest first.</summary>
    public async Task<AuditPage> GetAuditAsync(AuditQuery? query = null, CancellationToken cancellationToken = default)
    {
        query ??= new AuditQuery();
        var parts = new List<string>
        {
            string.Create(CultureInfo.InvariantCulture, $"page={query.Page}"),
            string.Create(CultureInfo.InvariantCulture, $"limit={query.Limit}"),
        };
        if (query.Kind is not null) parts.Add("kind=" + Uri.EscapeDataString(query.Kind));
        if (query.UserId is not null) parts.Add("userId=" + Uri.EscapeDataString(query.UserId));
        if (query.From is { } from) parts.Add("from=" + Uri.EscapeDataString(from.ToString("O", CultureInfo.InvariantCulture)));
        if (query.To is { } to) parts.Add("to=" + Uri.EscapeDataString(to.ToString("O", CultureInfo.InvariantCulture)));
        var path = "api/v4/admin/audit?" + string.Join('&', parts);
        var answer = await _transport.SendAsync<AuditPageAnswer>("admin.audit", () => WithToken(Transport.Without(HttpMethod.Get, path)), cancellationToken)
            .ConfigureAwait(false);
        return new AuditPage(answer.Events, answer.Paging.Page, answer.Paging.Limit, answer.Paging.Total);
    }

    /// <summary>Revokes the admin token this client calls with; every later call is refused.</summary>
    public Task RevokeOwnTokenAsync(CancellationToken cancellationToken = default) =>
        SendAsync("admin.revoke_own_token", HttpMethod.Delete, "api/v4/admin/token", cancellationToken);

    private static string UserPath(string userId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(userId);
        // Escaping leaves these as they are, and a URL resolver would then climb out of the user's path.
        if (userId is "." or "..")
            throw new ArgumentException($"'{userId}' cannot be a user id in a path.", nameof(userId));
        return "api/v4/admin/users/" + Uri.EscapeDataString(userId);
    }

    private Task SendAsync(string operation, HttpMethod method, string path, CancellationToken cancellationToken) =>
        SendAsync(operation, () => Transport.Without(method, path), cancellationToken);

    private Task SendAsync(string operation, Func<HttpRequestMessage> request, CancellationToken cancellationToken) =>
        _transport.SendAsync(operation, () => WithToken(request()), cancellationToken);

    private HttpRequestMessage WithToken(HttpRequestMessage request)
    {
        request.Headers.Add("x-admin-token", _adminToken);
        return request;
    }
}
