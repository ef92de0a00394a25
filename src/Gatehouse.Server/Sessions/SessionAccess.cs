using Gatehouse.Server.Configuration;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Sessions;

/// <summary>Who is calling, once the access token and its session have been checked.</summary>
internal sealed record Caller(Guid SessionId, string NetworkId, User User);

/// <summary>
/// Judges an access token. A valid signature is not enough: the session must still be live, so logout, device
/// rebinding and reuse detection take effect on the very next request.
/// </summary>
internal sealed class SessionAccess(AccessTokens accessTokens, LiveSessionCache live, IDbContextFactory<GatehouseDb> dbs, TimeProvider clock,
    IOptions<GatehouseOptions> options) : IDisposable
{
    /// <summary>The read of a session the cache cannot answer, by the database's provider, and what it holds open.</summary>
    private readonly Lazy<(Func<Guid, CancellationToken, Task<SessionState?>> Read, IDisposable? Held)> _reads = new(() =>
    {
        using var db = dbs.CreateDbContext();
        if (db.Database.IsSqlite())
        {
            var sqlite = new SqliteSessionReads(db);
            return ((sessionId, _) => Task.FromResult(sqlite.Read(sessionId)), sqlite);
        }
        var postgres = new PostgresSessionReads(db);
        return (postgres.ReadAsync, null);
    }, LazyThreadSafetyMode.PublicationOnly);

    /// <summary>
    /// The caller an access token stands for, or why it stands for none. A caller comes back with a refusal when the
    /// token is genuine but its user or session no longer may act (banned, ended, too old), so the refusal can name them.
    /// </summary>
    public async Task<(Caller? Caller, Refusal? Refusal)> CheckAsync(string? token, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(token))
            return (null, Errors.BearerMissing);
        var check = await accessTokens.CheckAsync(token);
        if (check.Failure == JwtFailure.Expired)
            return (null, Errors.AccessTokenExpired);
        if (check.Token is not { } verified
            || !verified.TryGetString("sid", out var sid) || !Guid.TryParse(sid, out var sessionId)
            || !verified.TryGetString("nid", out var networkId))
        {
            return (null, Errors.AccessTokenInvalid);
        }

        var found = await live.GetAsync(sessionId, (Access: this, sessionId, ct), static read => read.Access.ReadAsync(read.sessionId, read.ct));
        if (found is null || found.NetworkId != networkId)
            return (null, Errors.AccessTokenInvalid);

        // The ban is reported before the ended session, so the SDK learns why it was signed out.
        var caller = new Caller(sessionId, networkId, found.User);
        if (found.User.IsGlobalBan)
            return (caller, Errors.UserBanned);
        if (found.RevokedAt is not null || found.User.IsDeleted)
            return (caller, Errors.SessionEnded);
        // Access tokens expire by the session's absolute end; tokens issued before 0.2.0 did not, so it is checked here too.
        if (clock.GetUtcNow() >= found.CreatedAt + options.Value.Sessions.AbsoluteLifetime)
            return (caller, Errors.SessionTooOld);
        return (caller, null);
    }

    private Task<SessionState?> ReadAsync(Guid sessionId, CancellationToken ct) => _reads.Value.Read(sessionId, ct);

    public void Dispose()
    {
        if (_reads.IsValueCreated)
            _reads.Value.Held?.Dispose();
    }
}
