using System.Text.Json;

namespace Gatehouse.Server.Tests;

/// <summary>Asserts that a refusal speaks the contract: its HTTP status, the JSON envelope, the code.</summary>
public static class Envelope
{
    public static async Task<string> AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, int code)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(text);
        Assert.Equal("error", json.RootElement.GetProperty("status").GetString());
        Assert.Equal(code, json.RootElement.GetProperty("code").GetInt32());
        var message = json.RootElement.GetProperty("message").GetString();
        Assert.False(string.IsNullOrWhiteSpace(message));
        return message!;
    }

    public static Task<string> AssertUnauthorizedAsync(HttpResponseMessage response) =>
        AssertErrorAsync(response, HttpStatusCode.Unauthorized, 400100);

    public static Task<string> AssertBadRequestAsync(HttpResponseMessage response) =>
        AssertErrorAsync(response, HttpStatusCode.BadRequest, 400000);
}
