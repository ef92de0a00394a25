using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using CsCheck;

namespace Gatehouse.Server.Tests;

/// <summary>The genuine credentials a hostile request may carry, and the forged tokens it may carry instead.</summary>
internal sealed record Credentials(string ApiKey, string ServerKey, string AccessToken, string AdminToken, string[] Forged);

/// <summary>
/// One hostile request as plain data, so that CsCheck can generate it, shrink it and print it, and a sender can turn
/// it into a fresh <see cref="HttpRequestMessage"/> every time.
/// </summary>
internal sealed record HostileRequest(HttpMethod Method, string Path, (string Name, string Value)[] Headers, byte[]? Body, string? ContentType)
{
    public HttpRequestMessage ToMessage()
    {
        var request = new HttpRequestMessage(Method, Path);
        foreach (var (name, value) in Headers)
            request.Headers.TryAddWithoutValidation(name, value);
        if (Body is not null)
        {
            request.Content = new ByteArrayContent(Body);
            request.Content.Headers.ContentType = ContentType is null ? null : MediaTypeHeaderValue.Parse(ContentType);
        }
        return request;
    }

    public override string ToString()
    {
        var body = Body is null ? "(no body)" : Escape(Encoding.UTF8.GetString(Body.AsSpan(0, Math.Min(Body.Length, 400))));
        return $"{Method} {Path}\n{string.Join('\n', Headers.Select(h => $"{h.Name}: {Escape(h.Value)}"))}\n" +
            $"Content-Type: {ContentType ?? "(none)"}\n{body} ({Body?.Length ?? 0} bytes)";
    }

    /// <summary>Every public endpoint, with the credential it expects; "-refused" ones must never get a working one.</summary>
    private static readonly (HttpMethod Method, string Path, string Credential)[] Endpoints =
    [
        (HttpMethod.Post, "/api/v3/sessions", "api"), (HttpMethod.Post, "/api/v4/sessions", "api"), (HttpMethod.Post, "/api/v5/sessions", "api"),
        (HttpMethod.Post, "/api/v4/sessions/refresh", "api"), (HttpMethod.Delete, "/api/v4/sessions", "bearer-refused"),
        (HttpMethod.Get, "/api/v3/users/me", "bearer"), (HttpMethod.Get, "/api/v3/network-settings/chat", "bearer"),
        (HttpMethod.Post, "/api/v5/sessions/visitor", "api"), (HttpMethod.Post, "/api/v5/sessions/bot", "api"),
        (HttpMethod.Get, "/api/v3/sessions", "bearer"), (HttpMethod.Get, "/api/v3/users/{0}", "bearer"),
        (HttpMethod.Post, "/api/v5/server/sessions", "server-refused"),
        (HttpMethod.Get, "/api/v3/authentication/token?userId=", "server"), (HttpMethod.Post, "/api/v4/authentication/token", "server"),
        (HttpMethod.Get, "/api/v4/admin/users?search=", "admin"), (HttpMethod.Get, "/api/v4/admin/users/", "admin"),
        (HttpMethod.Post, "/api/v4/admin/users/{0}/ban", "admin-refused"), (HttpMethod.Post, "/api/v4/admin/users/{0}/unban", "admin-refused"),
        (HttpMethod.Get, "/api/v4/admin/audit?kind=", "admin"), (HttpMethod.Delete, "/api/v4/sessions", "admin-refused"),
        (HttpMethod.Delete, "/api/v4/admin/token", "admin-refused"),
    ];

    private static readonly string[] Awkward =
    [
        "", " ", "\u0000", "a\nb", "a\r\nX-Injected: 1", "\u202e", new string('x', 300), new string('é', 2000), "../../etc/passwd",
        "<script>", "' OR 1=1 --", "%00", "\ud800", "null", "target", "{}", "💥", "\t", "ascWebSdk#" + Guid.Empty,
    ];

    private static readonly string[] Fields =
        ["userId", "deviceId", "displayName", "authToken", "refreshToken", "deviceInfo", "kind", "model", "sdkVersion", "userIds",
         "authSignature", "authSignatureExpiresAt"];

    private static readonly string?[] ContentTypes =
    [
        "application/json", "application/json", "application/json", "application/json", null, "text/plain",
        "application/json; charset=latin1", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    ];

    public static Gen<HostileRequest> Generator(Credentials credentials)
    {
        var text = Gen.Frequency(
            (3, Gen.OneOf(Awkward)),
            (2, Gen.String[Gen.Char, 0, 40]),
            (1, Gen.String[Gen.Char['\u0000', '\u007f'], 0, 600]));
        var forged = Gen.OneOf(credentials.Forged);
        var scalar = Gen.OneOf(
            Gen.OneOf("null", "true", "false", "0", "-1", "1e400", "NaN", "\"\""),
            Gen.Long.Select(n => n.ToString(CultureInfo.InvariantCulture)),
            Gen.Double.Select(n => n.ToString("R", CultureInfo.InvariantCulture)),
            text.Select(Quote),
            forged.Select(Quote));
        var json = Gen.Recursive<string>((depth, inner) => depth >= 5
            ? scalar
            : Gen.Frequency(
                (3, scalar),
                (1, inner.Array[0, 4].Select(items => "[" + string.Join(',', items) + "]")),
                // Keys drawn from the contract's fields, so duplicates and wrong types hit the real parsers.
                (2, Gen.Select(Gen.OneOf(Fields), inner).Array[0, 6]
                    .Select(members => "{" + string.Join(',', members.Select(m => Quote(m.Item1) + ":" + m.Item2)) + "}"))));
        var body = Gen.Frequency(
            (4, Gen.Select(Gen.Int[0, 13], text, forged, Curated)),
            (4, json.Select(Encoding.UTF8.GetBytes)),
            (1, Gen.Byte.Array[0, 256]),
            (1, Gen.Int[1, 20_000].Select(depth => Encoding.UTF8.GetBytes(new string('[', depth) + new string(']', depth)))));

        return Gen.Select(Gen.OneOf(Endpoints), text, Gen.Int[0, 5], forged, body, Gen.OneOf(ContentTypes), Gen.Int[0, 4])
            .Select((endpoint, text, roll, forgedToken, body, contentType, extra) =>
            {
                var (method, path, credential) = endpoint;
                path = path.Contains("{0}", StringComparison.Ordinal)
                    ? string.Format(CultureInfo.InvariantCulture, path, Uri.EscapeDataString(text.Length > 0 ? text : "x"))
                    : path.EndsWith('=') || path.EndsWith('/') ? path + Uri.EscapeDataString(text) : path;

                // Credentials: right, wrong, forged or absent.
                var headers = new List<(string, string)>();
                switch (credential)
                {
                    case "api" when roll < 4:
                        headers.Add(("x-api-key", roll == 0 ? text : credentials.ApiKey));
                        break;
                    case "bearer" when roll < 4:
                        headers.Add(("Authorization", "Bearer " + (roll == 0 ? credentials.AccessToken : forgedToken)));
                        break;
                    case "bearer-refused" when roll < 4:
                        headers.Add(("Authorization", "Bearer " + forgedToken));
                        break;
                    case "server" when roll < 4:
                        headers.Add(("x-server-key", roll == 0 ? text : credentials.ServerKey));
                        break;
                    case "admin" when roll < 4:
                        headers.Add(("x-admin-token", roll == 0 ? text : credentials.AdminToken));
                        break;
                    case "admin-refused" when roll < 4:
                        headers.Add(("x-admin-token", roll == 0 ? "gat_" + text : forgedToken));
                        break;
                }
                // Header injection and confusion: a duplicated credential, a forged one beside it, odd forwarding.
                if (extra == 0)
                    headers.Add(("x-api-key", text));
                else if (extra == 1)
                    headers.Add(("Authorization", text));
                else if (extra == 2)
                    headers.Add(("X-Forwarded-For", text));

                return new HostileRequest(method, path, [.. headers], method == HttpMethod.Get ? null : body, contentType);
            });
    }

    /// <summary>Hand-picked malformations that a random JSON tree rarely hits.</summary>
    private static byte[] Curated(int kind, string text, string token) => kind switch
    {
        0 => "{\"userId\": \"a\", "u8.ToArray(),
        1 => [],
        2 => Encoding.UTF8.GetBytes($"{{\"userId\":{Quote(text)},\"userId\":\"b\",\"deviceId\":\"d\"}}"),
        3 => "{\"userId\": 42, \"deviceId\": [], \"authToken\": {}, \"refreshToken\": true}"u8.ToArray(),
        4 => "{\"userId\": null, \"deviceId\": null, \"refreshToken\": null}"u8.ToArray(),
        5 => Encoding.UTF8.GetBytes($"{{\"userId\":\"{new string('u', 100_000)}\",\"deviceId\":\"d\"}}"),
        6 => [(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}'],
        7 => Encoding.UTF8.GetBytes($"{{\"userId\":\"target\",\"deviceId\":{Quote(text)},\"authToken\":\"{token}\"}}"),
        8 => Encoding.UTF8.GetBytes($"{{\"refreshToken\":{Quote(text + "grt_" + Guid.NewGuid().ToString("n"))},\"userId\":{Quote(text)}}}"),
        9 => "null"u8.ToArray(),
        10 => Encoding.UTF8.GetBytes($"{{\"userId\":\"target\",\"deviceId\":\"d\",\"deviceInfo\":{{\"kind\":\"{new string('k', 400)}\"}},\"authToken\":\"{token}\"}}"),
        11 => Encoding.UTF8.GetBytes($"{{\"userId\":[{Quote(text)}],\"deviceId\":{{\"$ne\":null}}}}"),
        12 => Encoding.UTF8.GetBytes($"{{\"userId\":\"target\",\"deviceId\":\"d\",\"authToken\":\"{token}\"}} trailing"),
        _ => Encoding.UTF8.GetBytes($"{{\"userId\":{Quote(text)},\"deviceId\":{Quote(text)},\"displayName\":{Quote(text)},\"authToken\":\"{token}\"}}"),
    };

    /// <summary>A JSON string literal; a lone surrogate is written as its \u escape, which a JSON reader must refuse.</summary>
    private static string Quote(string value) => "\"" + Escape(value) + "\"";

    private static string Escape(string value) =>
        string.Concat(value.Select(c => char.IsSurrogate(c) || char.IsControl(c) || c is '"' or '\\'
            ? $"\\u{(int)c:x4}"
            : c.ToString()));
}
