// What a customer writes with a client generated from Gatehouse's OpenAPI document: a backend, an app, a signed-in
// user and an admin, each holding only the credential the document says its calls need. The document's server is
// the client's base address. Arguments: API key, server key, admin token, user id. Each step prints one line.
using System.Net.Http.Headers;
using Gatehouse.Generated;

var (apiKey, serverKey, adminToken, userId) = (args[0], args[1], args[2], args[3]);

static GatehouseClient ClientWith(Action<HttpRequestHeaders> credential)
{
    var http = new HttpClient();
    credential(http.DefaultRequestHeaders);
    return new GatehouseClient(http);
}

var backend = ClientWith(headers => headers.Add("x-server-key", serverKey));
var minted = await backend.MintAuthTokenAsync(new AuthTokenRequest { UserId = userId });
Console.WriteLine($"minted: expires in the future={minted.ExpiresAt > DateTimeOffset.UtcNow}");

var app = ClientWith(headers => headers.Add("x-api-key", apiKey));
var session = await app.OpenSessionAsync(new SessionRequest { UserId = userId, DeviceId = "generated-client", AuthToken = minted.AuthToken });
Console.WriteLine($"session: {session.UserType} {session.Users.Single().UserId}");

var user = ClientWith(headers => headers.Authorization = new AuthenticationHeaderValue("Bearer", session.AccessToken));
var me = await user.GetMeAsync();
Console.WriteLine($"me: {me.Users.Single().UserId} banned={me.Users.Single().IsGlobalBan}");

var introspected = await backend.IntrospectTokenAsync(new IntrospectionForm { Token = session.AccessToken });
Console.WriteLine($"introspected: active={introspected.Active} sub={introspected.Sub}");

var metadata = await ClientWith(_ => { }).GetAuthorizationServerMetadataAsync();
Console.WriteLine($"metadata: {metadata.Jwks_uri}");

var admin = ClientWith(headers => headers.Add("x-admin-token", adminToken));
var banned = await admin.AdminBanUserAsync(userId);
Console.WriteLine($"ban: success={banned.Success}");

try
{
    await user.GetMeAsync();
    Console.WriteLine("me after the ban: answered");
}
catch (ApiException<ErrorEnvelope> refused)
{
    Console.WriteLine($"me after the ban: {refused.StatusCode} {refused.Result.Code} {refused.Result.Message}");
}
