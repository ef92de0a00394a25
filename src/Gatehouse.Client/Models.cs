using System.Text.Json.Serialization;

namespace Gatehouse.Client;

/// <summary>A user as Gatehouse answers it.</summary>
/// <param name="Id">The server's identifier of the user (<c>_id</c>).</param>
/// <param name="UserId">The app's identifier of the user.</param>
/// <param name="DisplayName">The name shown to other users, if one was given.</param>
/// <param name="IsGlobalBanned">Whether the user is banned from the whole network.</param>
/// <param name="IsDeleted">Whether the user was deleted.</param>
/// <param name="CreatedAt">When the user first opened a session.</param>
/// <param name="UpdatedAt">When the user last changed.</param>
public sealed record GatehouseUser(
    [property: JsonPropertyName("_id")] string Id,
    string UserId,
    string? DisplayName,
    bool IsGlobalBanned,
    bool IsDeleted,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt);

/// <summary>An established session: the tokens and their lifetime.</summary>
/// <param name="UserId">The user the session belongs to.</param>
/// <param name="DeviceId">The device the session was opened on.</param>
/// <param name="AccessToken">The bearer token for API calls.</param>
/// <param name="RefreshToken">The one-use token that renews the session without an auth token; null if the server gave none.</param>
/// <param name="IssuedAt">When the access token was issued.</param>
/// <param name="ExpiresAt">When the access token expires.</param>
public sealed record GatehouseSession(string UserId, string DeviceId, string AccessToken, string? RefreshToken, DateTimeOffset IssuedAt, DateTimeOffset ExpiresAt)
{
    /// <summary>Keeps the tokens out of logs and debugger views.</summary>
    public override string ToString() => $"GatehouseSession {{ UserId = {UserId}, DeviceId = {DeviceId}, ExpiresAt = {ExpiresAt:O} }}";
}

/// <summary>An auth token minted for a user by the customer's backend.</summary>
/// <param name="Token">The token to hand to the user's app for its login.</param>
/// <param name="ExpiresAt">When it stops being accepted (ten minutes after minting); null from the v3 endpoint, which does not say.</param>
public sealed record AuthToken(string Token, DateTimeOffset? ExpiresAt)
{
    /// <summary>Keeps the token out of logs.</summary>
    public override string ToString() => $"AuthToken {{ ExpiresAt = {ExpiresAt:O} }}";
}

/// <summary>A page of users from the admin API.</summary>
/// <param name="Users">The users on this page.</param>
/// <param name="Page">The page number, from 1.</param>
/// <param name="Limit">The page size.</param>
/// <param name="Total">How many users match in all.</param>
public sealed record UserPage(IReadOnlyList<GatehouseUser> Users, int Page, int Limit, int Total);

/// <summary>One event of the audit log.</summary>
/// <param name="Id">The event's identifier.</param>
/// <param name="OccurredAt">When it happened.</param>
/// <param name="Kind">What happened, for example <c>session.created</c>.</param>
/// <param name="Outcome">Whether it succeeded or was refused.</param>
/// <param name="Actor">Who acted.</param>
/// <param name="UserId">The user concerned, if any.</param>
/// <param name="Reason">Why it was refused, if it was.</param>
/// <param name="Detail">More about the event, if any.</param>
/// <param name="ClientAddress">The caller's address.</param>
public sealed record AuditEvent(long Id, DateTimeOffset OccurredAt, string Kind, string Outcome, string Actor, string? UserId, string? Reason, string? Detail, string? ClientAddress);

/// <summary>A page of audit events, newest first.</summary>
/// <param name="Events">The events on this page.</param>
/// <param name="Page">The page number, from 1.</param>
/// <param name="Limit">The page size.</param>
/// <param name="Total">How many events match in all.</param>
public sealed record AuditPage(IReadOnlyList<AuditEvent> Events, int Page, int Limit, int Total);

/// <summary>Which events an audit query returns; every filter is optional.</summary>
public sealed record AuditQuery
{
    /// <summary>Only events of this kind.</summary>
    public string? Kind { get; init; }
    /// <summary>Only events about this user.</summary>
    public string? UserId { get; init; }
    /// <summary>Only events at or after this time.</summary>
    public DateTimeOffset? From { get; init; }
    /// <summary>Only events before this time.</summary>
    public DateTimeOffset? To { get; init; }
    /// <summary>The page, from 1.</summary>
    public int Page { get; init; } = 1;
    /// <summary>The page size, 1 to 100.</summary>
    public int Limit { get; init; } = 20;
}

/// <summary>
/// A session the backend opened for one of its users: hand <see cref="AccessToken"/> to the user's app, which logs in
/// with it alone (the 7.x SDKs' <c>loginWithAccessToken</c>) and asks the backend again to renew.
/// </summary>
/// <param name="UserId">The user the session belongs to.</param>
/// <param name="UserType"><c>signed-in</c> (a backend opens sessions for its own users only).</param>
/// <param name="AccessToken">The bearer token for the app.</param>
/// <param name="IssuedAt">When the access token was issued.</param>
/// <param name="ExpiresAt">When the access token expires.</param>
public sealed record BackendSession(string UserId, string UserType, string AccessToken, DateTimeOffset IssuedAt, DateTimeOffset ExpiresAt)
{
    /// <summary>Keeps the token out of logs and debugger views.</summary>
    public override string ToString() => $"BackendSession {{ UserId = {UserId}, ExpiresAt = {ExpiresAt:O} }}";
}

/// <summary>What a visitor's app passes to <c>loginAsVisitor</c> (or <c>renewWithAuthSignature</c>) in secure mode.</summary>
/// <param name="AuthSignature">HMAC-SHA256 in hex of <c>deviceId=…&amp;authSignatureExpiresAt=…</c> with the visitor secret.</param>
/// <param name="AuthSignatureExpiresAt">The expiry exactly as signed (ISO 8601, UTC).</param>
public sealed record VisitorSignature(string AuthSignature, string AuthSignatureExpiresAt);

/// <summary>An answer whose body parsed; whether it has what Gatehouse always sends (a proxy's <c>{}</c> parses too).</summary>
internal interface IAnswer
{
    bool IsComplete { get; }
}

internal sealed record BackendSessionAnswer(string AccessToken, DateTimeOffset IssuedAt, DateTimeOffset ExpiresAt, string UserType, IReadOnlyList<GatehouseUser> Users)
    : IAnswer
{
    public bool IsComplete => AccessToken is not null && UserType is not null;
}

internal sealed record SessionAnswer(string AccessToken, string? RefreshToken, DateTimeOffset IssuedAt, DateTimeOffset ExpiresAt, IReadOnlyList<GatehouseUser> Users)
    : IAnswer
{
    public bool IsComplete => AccessToken is not null && Users is [{ UserId: not null }, ..];
}

internal sealed record UsersAnswer(IReadOnlyList<GatehouseUser> Users) : IAnswer
{
    public bool IsComplete => Users is [{ UserId: not null }, ..];
}

internal sealed record Paging(int Page, int Limit, int Total);

internal sealed record UserPageAnswer(IReadOnlyList<GatehouseUser> Users, Paging Paging) : IAnswer
{
    public bool IsComplete => Users is not null && Paging is not null;
}

internal sealed record AuditPageAnswer(IReadOnlyList<AuditEvent> Events, Paging Paging) : IAnswer
{
    public bool IsComplete => Events is not null && Paging is not null;
}

internal sealed record AuthTokenAnswer(string AuthToken, DateTimeOffset ExpiresAt) : IAnswer
{
    public bool IsComplete => AuthToken is not null;
}
