using Gatehouse.Server.Networks;
using Gatehouse.Server.ServerKeys;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

public abstract class ServerKeyTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    [SkippableFact]
    public async Task Generation_requires_secure_mode()
    {
        var network = await server.CreateNetworkAsync();
        await using var scope = server.Services.CreateAsyncScope();
        var found = await scope.ServiceProvider.GetRequiredService<NetworkAdministration>().FindAsync(network.Id);

        var (key, error) = await scope.ServiceProvider.GetRequiredService<ServerKeyService>().GenerateAsync(found!, "test");

        Assert.Null(key);
        Assert.Equal(400300, error!.Code);
    }

    [SkippableFact]
    public async Task A_key_has_256_bits_and_only_its_digest_is_stored()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var key = await server.GenerateServerKeyAsync(network);

        Assert.True(Convert.FromBase64String(Base64(key["gsk_".Length..])).Length >= 32);
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDb>();
        var stored = await db.ServerKeys.SingleAsync(k => k.NetworkId == network.Id);
        Assert.DoesNotContain(key, stored.Digest, StringComparison.Ordinal);
        Assert.Equal(64, stored.Digest.Length);
    }

    [SkippableFact]
    public async Task The_replaced_key_works_inside_the_grace_and_is_refused_after_it()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var oldKey = await server.GenerateServerKeyAsync(network);
        var newKey = await server.GenerateServerKeyAsync(network);

        server.Clock.Advance(TimeSpan.FromMinutes(59));
        using var insideGrace = await server.MintV3Async(oldKey, "alice");
        server.Clock.Advance(TimeSpan.FromMinutes(1));
        using var afterGrace = await server.MintV3Async(oldKey, "alice");
        using var newest = await server.MintV3Async(newKey, "alice");

        Assert.Equal(HttpStatusCode.OK, insideGrace.StatusCode);
        Assert.Contains("grace period has ended", await Envelope.AssertUnauthorizedAsync(afterGrace), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, newest.StatusCode);
    }

    [SkippableFact]
    public async Task An_auth_token_ends_with_the_server_key_that_minted_it()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var first = await server.GenerateServerKeyAsync(network);
        var mintedByFirst = await server.MintAsync(first, "dora");
        var second = await server.GenerateServerKeyAsync(network);
        var mintedBySecond = await server.MintAsync(second, "dora");

        await server.LoginAsync(network, "dora", "device-1", mintedByFirst);
        await server.GenerateServerKeyAsync(network);
        using var afterReplacement = await server.CreateSessionAsync(network, "dora", "device-2", mintedByFirst);
        using var ofKeyInGrace = await server.CreateSessionAsync(network, "dora", "device-3", mintedBySecond);

        Assert.Contains("server key that minted this authToken was replaced",
            await Envelope.AssertUnauthorizedAsync(afterReplacement), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, ofKeyInGrace.StatusCode);
    }

    [SkippableFact]
    public async Task Never_more_than_two_keys_are_valid()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var first = await server.GenerateServerKeyAsync(network);
        var second = await server.GenerateServerKeyAsync(network);
        var third = await server.GenerateServerKeyAsync(network);

        using var firstAnswer = await server.MintV3Async(first, "bob");
        using var secondAnswer = await server.MintV3Async(second, "bob");
        using var thirdAnswer = await server.MintV3Async(third, "bob");

        await Envelope.AssertUnauthorizedAsync(firstAnswer);
        Assert.Equal(HttpStatusCode.OK, secondAnswer.StatusCode);
        Assert.Equal(HttpStatusCode.OK, thirdAnswer.StatusCode);
    }

    [SkippableFact]
    public async Task A_key_that_already_minted_is_judged_again_after_every_change_to_keys_or_networks()
    {
        // On SQLite keys that minted are kept in memory (ServerKeyCache): each change below must be seen at once.
        var network = await server.CreateNetworkAsync(secureMode: true);
        var first = await server.GenerateServerKeyAsync(network);
        using (var minted = await server.MintV3Async(first, "carol"))
            Assert.Equal(HttpStatusCode.OK, minted.StatusCode);

        var second = await server.GenerateServerKeyAsync(network);
        using (var inGrace = await server.MintV3Async(first, "carol"))
            Assert.Equal(HttpStatusCode.OK, inGrace.StatusCode);
        await server.GenerateServerKeyAsync(network);
        using (var ended = await server.MintV3Async(first, "carol"))
            await Envelope.AssertUnauthorizedAsync(ended);

        using (var minted = await server.MintV3Async(second, "carol"))
            Assert.Equal(HttpStatusCode.OK, minted.StatusCode);
        await using (var scope = server.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<GatehouseDb>().Networks.Where(n => n.Id == network.Id)
                .ExecuteUpdateAsync(s => s.SetProperty(n => n.MtlsEnabled, true));
        }
        using var withoutCertificate = await server.MintV3Async(second, "carol");
        Assert.Contains("mTLS is on", await Envelope.AssertUnauthorizedAsync(withoutCertificate), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task The_key_records_when_it_was_last_used()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var key = await server.GenerateServerKeyAsync(network);

        await server.MintAsync(key, "carol");

        await using var scope = server.Services.CreateAsyncScope();
        var stored = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().ServerKeys.SingleAsync(k => k.NetworkId == network.Id);
        Assert.NotNull(stored.LastUsedAt);
        Assert.Equal(server.Clock.GetUtcNow(), stored.LastUsedAt.Value, TimeSpan.FromMilliseconds(1));
    }

    [SkippableFact]
    public async Task Server_key_endpoints_answer_no_cors()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var key = await server.GenerateServerKeyAsync(network);

        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/api/v4/authentication/token");
        preflight.Headers.Add("Origin", "https://app.example");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "x-server-key,content-type");
        using var preflightAnswer = await server.Http.SendAsync(preflight);
        using var get = new HttpRequestMessage(HttpMethod.Get, "/api/v3/authentication/token?userId=dave");
        get.Headers.Add("Origin", "https://app.example");
        get.Headers.Add("x-server-key", key);
        using var getAnswer = await server.Http.SendAsync(get);

        Assert.False(preflightAnswer.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.NotEqual(HttpStatusCode.NoContent, preflightAnswer.StatusCode);
        Assert.Equal(HttpStatusCode.OK, getAnswer.StatusCode);
        Assert.False(getAnswer.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [SkippableFact]
    public async Task Client_endpoints_answer_the_web_sdks_preflight()
    {
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/api/v5/sessions");
        preflight.Headers.Add("Origin", "https://app.example");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "x-api-key,content-type,set-access-token-cookie");

        using var answer = await server.Http.SendAsync(preflight);

        Assert.Equal(HttpStatusCode.NoContent, answer.StatusCode);
        Assert.Equal("*", answer.Headers.GetValues("Access-Control-Allow-Origin").Single());
        var allowed = answer.Headers.GetValues("Access-Control-Allow-Headers").Single();
        foreach (var header in new[] { "x-api-key", "content-type", "set-access-token-cookie", "authorization" })
            Assert.Contains(header, allowed, StringComparison.OrdinalIgnoreCase);
    }

    [SkippableFact]
    public async Task The_v3_mint_answers_the_token_as_a_json_string_with_its_length()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var key = await server.GenerateServerKeyAsync(network);

        using var answer = await server.MintV3Async(key, "erin");
        var body = await answer.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal("application/json; charset=utf-8", answer.Content.Headers.ContentType!.ToString());
        Assert.Equal(body.Length, answer.Content.Headers.ContentLength);
        var token = System.Text.Json.JsonSerializer.Deserialize<string>(body)!;
        Assert.Equal($"\"{token}\"", body);
        Assert.Equal(3, token.Split('.').Length);
        await server.LoginAsync(network, "erin", "erin-phone", token);
    }

    private static string Base64(string base64Url) =>
        base64Url.Replace('-', '+').Replace('_', '/') + new string('=', (4 - base64Url.Length % 4) % 4);
}

[Trait(Category.Name, Category.Fast)]
public sealed class ServerKeyTestsOnSqlite(SqliteServer server) : ServerKeyTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class ServerKeyTestsOnPostgres(PostgresServer server) : ServerKeyTests<PostgresServer>(server);
