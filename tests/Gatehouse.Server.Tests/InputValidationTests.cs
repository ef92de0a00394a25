using System.Text;

namespace Gatehouse.Server.Tests;

/// <summary>Every malformed request gets a 4xx in the contract's envelope, never a 500 or a stack trace.</summary>
public abstract class InputValidationTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    [SkippableTheory]
    [MemberData(nameof(BadInputs.SessionBodies), MemberType = typeof(BadInputs))]
    public async Task A_bad_session_body_is_refused_with_400(string why, string body)
    {
        var network = await server.CreateNetworkAsync();

        using var response = await SendAsync("/api/v5/sessions", body, network.ApiKey);

        Assert.False(string.IsNullOrEmpty(await Envelope.AssertBadRequestAsync(response)), why);
    }

    [SkippableTheory]
    [InlineData("userId", "right-to-left override", "admin\\u202Egnp.exe")]
    [InlineData("userId", "zero-width space", "ali\\u200Bce")]
    [InlineData("userId", "byte-order mark", "\\uFEFFalice")]
    [InlineData("userId", "unassigned code point", "alice\\u0378")]
    [InlineData("userId", "bell", "alice\\u0007")]
    [InlineData("deviceId", "zero-width joiner", "device\\u200D1")]
    [InlineData("deviceId", "left-to-right mark", "device\\u200E1")]
    [InlineData("displayName", "right-to-left override", "Alice\\u202E")]
    [InlineData("displayName", "zero-width space", "Ali\\u200Bce")]
    public async Task Hidden_and_unassigned_characters_are_refused_naming_the_field(string field, string why, string value)
    {
        var network = await server.CreateNetworkAsync();
        var fields = new Dictionary<string, string> { ["userId"] = "alice", ["deviceId"] = "device-1", ["displayName"] = "Alice" };
        fields[field] = value;
        var body = $$"""{"userId": "{{fields["userId"]}}", "deviceId": "{{fields["deviceId"]}}", "displayName": "{{fields["displayName"]}}"}""";

        using var response = await SendAsync("/api/v5/sessions", body, network.ApiKey);

        var message = await Envelope.AssertBadRequestAsync(response);
        Assert.True(message.StartsWith(field + " must not contain", StringComparison.Ordinal), $"{why}: {message}");
    }

    [SkippableFact]
    public async Task A_display_name_keeps_emoji_joined_by_the_zero_width_joiner()
    {
        var network = await server.CreateNetworkAsync();

        var session = await server.LoginAsync(network, "émile-日本", "device-1", displayName: "Family \U0001F468\u200D\U0001F469\u200D\U0001F467 de l'Été");

        Assert.NotNull(session["accessToken"]);
    }

    [SkippableFact]
    public async Task Invalid_utf8_is_refused_with_400()
    {
        var network = await server.CreateNetworkAsync();
        using var content = new ByteArrayContent([.. "{\"userId\": \""u8, 0xC3, 0x28, .. "\", \"deviceId\": \"d\"}"u8]);
        content.Headers.ContentType = new("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v5/sessions") { Content = content };
        request.Headers.Add("x-api-key", network.ApiKey);

        using var response = await server.Http.SendAsync(request);

        await Envelope.AssertBadRequestAsync(response);
    }

    [SkippableFact]
    public async Task A_wrong_content_type_is_refused_with_400()
    {
        var network = await server.CreateNetworkAsync();

        using var response = await SendAsync("/api/v5/sessions", """{"userId":"a","deviceId":"d"}""", network.ApiKey, "text/plain");

        Assert.Contains("application/json", await Envelope.AssertBadRequestAsync(response), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_body_over_the_limit_is_refused_with_400()
    {
        var network = await server.CreateNetworkAsync();
        var padding = new string('x', 17 * 1024);

        using var response = await SendAsync("/api/v5/sessions", $$"""{"userId":"a","deviceId":"d","pad":"{{padding}}"}""", network.ApiKey);

        Assert.Contains("larger than the limit", await Envelope.AssertBadRequestAsync(response), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_body_over_the_limit_without_a_length_header_is_refused_with_400()
    {
        var network = await server.CreateNetworkAsync();
        var bytes = Encoding.UTF8.GetBytes($$"""{"userId":"a","deviceId":"d","pad":"{{new string('x', 17 * 1024)}}"}""");
        using var content = new StreamContent(new UnknownLengthStream(bytes));
        content.Headers.ContentType = new("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v5/sessions") { Content = content };
        request.Headers.Add("x-api-key", network.ApiKey);
        request.Headers.TransferEncodingChunked = true;

        using var response = await server.Http.SendAsync(request);

        await Envelope.AssertBadRequestAsync(response);
    }

    [SkippableFact]
    public async Task A_missing_unknown_or_foreign_api_key_is_refused_with_400100()
    {
        using var missing = await SendAsync("/api/v5/sessions", """{"userId":"a","deviceId":"d"}""", apiKey: null);
        using var unknown = await SendAsync("/api/v5/sessions", """{"userId":"a","deviceId":"d"}""", "sg_0000");
        using var foreign = await SendAsync("/api/v5/sessions", """{"userId":"a","deviceId":"d"}""", "eu_0123456789abcdef");

        Assert.Contains("x-api-key", await Envelope.AssertUnauthorizedAsync(missing), StringComparison.Ordinal);
        Assert.Contains("not known", await Envelope.AssertUnauthorizedAsync(unknown), StringComparison.Ordinal);
        Assert.Contains("https://apix.eu.amity.co/", await Envelope.AssertUnauthorizedAsync(foreign), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_bad_refresh_body_is_refused_with_400()
    {
        var network = await server.CreateNetworkAsync();

        using var none = await SendAsync("/api/v4/sessions/refresh", "{}", network.ApiKey);
        using var overlong = await SendAsync("/api/v4/sessions/refresh", $$"""{"refreshToken":"{{new string('r', 500)}}"}""", network.ApiKey);
        using var broken = await SendAsync("/api/v4/sessions/refresh", "{", network.ApiKey);

        await Envelope.AssertBadRequestAsync(none);
        await Envelope.AssertBadRequestAsync(overlong);
        await Envelope.AssertBadRequestAsync(broken);
    }

    [SkippableFact]
    public async Task Bad_mint_requests_are_refused_with_400()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var key = await server.GenerateServerKeyAsync(network);

        using var repeated = await server.Http.SendAsync(WithServerKey(HttpMethod.Get, "/api/v3/authentication/token?userId=a&userId=b", key));
        using var overlong = await server.MintV3Async(key, new string('u', 129));
        using var control = await server.MintV3Async(key, "a\nb");
        using var v4Broken = await SendAsync("/api/v4/authentication/token", "{\"userId\":", null, serverKey: key);

        await Envelope.AssertBadRequestAsync(repeated);
        await Envelope.AssertBadRequestAsync(overlong);
        await Envelope.AssertBadRequestAsync(control);
        await Envelope.AssertBadRequestAsync(v4Broken);
    }

    [SkippableFact]
    public async Task Unknown_routes_and_methods_answer_in_the_envelope()
    {
        using var unknown = await server.Http.GetAsync("/api/v9/nothing-here");
        using var wrongMethod = await server.Http.PutAsync("/api/v5/sessions", null);

        await Envelope.AssertErrorAsync(unknown, HttpStatusCode.NotFound, 400400);
        await Envelope.AssertErrorAsync(wrongMethod, HttpStatusCode.MethodNotAllowed, 400000);
    }

    private async Task<HttpResponseMessage> SendAsync(string path, string body, string? apiKey, string contentType = "application/json", string? serverKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, contentType) };
        if (apiKey is not null)
            request.Headers.Add("x-api-key", apiKey);
        if (serverKey is not null)
            request.Headers.Add("x-server-key", serverKey);
        return await server.Http.SendAsync(request);
    }

    private static HttpRequestMessage WithServerKey(HttpMethod method, string path, string key)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Add("x-server-key", key);
        return request;
    }

    /// <summary>A body whose length the client does not announce, so only the server's own count can stop it.</summary>
    private sealed class UnknownLengthStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}

[Trait(Category.Name, Category.Fast)]
public sealed class InputValidationTestsOnSqlite(SqliteServer server) : InputValidationTests<SqliteServer>(server);

[Trait(Category.Name, Category.Postgres)]
public sealed class InputValidationTestsOnPostgres(PostgresServer server) : InputValidationTests<PostgresServer>(server);

public static class BadInputs
{
    public static TheoryData<string, string> SessionBodies => new()
    {
        { "broken JSON", """{"userId": "a", """ },
        { "empty body", "" },
        { "JSON null", "null" },
        { "an array", """[{"userId":"a","deviceId":"d"}]""" },
        { "a wrong type", """{"userId": 42, "deviceId": "d"}""" },
        { "a duplicate key", """{"userId": "a", "userId": "b", "deviceId": "d"}""" },
        { "no userId", """{"deviceId": "d"}""" },
        { "an empty userId", """{"userId": "", "deviceId": "d"}""" },
        { "a blank userId", """{"userId": "   ", "deviceId": "d"}""" },
        { "no deviceId", """{"userId": "a"}""" },
        { "an overlong userId", $$"""{"userId": "{{new string('u', 129)}}", "deviceId": "d"}""" },
        { "an overlong deviceId", $$"""{"userId": "a", "deviceId": "{{new string('d', 129)}}"}""" },
        { "an overlong displayName", $$"""{"userId": "a", "deviceId": "d", "displayName": "{{new string('n', 101)}}"}""" },
        { "a control character", """{"userId": "a\u0000b", "deviceId": "d"}""" },
        { "deep nesting", """{"userId": "a", "deviceId": "d", "deviceInfo": """ + new string('[', 100) + new string(']', 100) + "}" },
        { "a wrongly typed deviceInfo", """{"userId": "a", "deviceId": "d", "deviceInfo": "web"}""" },
    };
}
