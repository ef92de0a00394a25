namespace Gatehouse.Server.Tests.Console;

/// <summary>The console's pages keep to themselves: no inline script, no framing, no sniffing, no referrer.</summary>
[Trait(Category.Name, Category.Fast)]
public sealed class ConsoleHeaderTests(GatehouseServer server) : IClassFixture<GatehouseServer>
{
    [Fact]
    public async Task Pages_carry_a_strict_policy_and_hsts_only_over_https()
    {
        using var plain = await server.Http.GetAsync("/console/signin");
        using var https = server.HttpsClient();
        using var secure = await https.GetAsync("/console/signin");

        foreach (var response in new[] { plain, secure })
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var policy = response.Headers.GetValues("Content-Security-Policy").Single();
            Assert.Contains("script-src 'self'", policy, StringComparison.Ordinal);
            Assert.Contains("frame-ancestors 'none'", policy, StringComparison.Ordinal);
            Assert.DoesNotContain("unsafe-inline", policy, StringComparison.Ordinal);
            Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
            Assert.Equal("no-referrer", response.Headers.GetValues("Referrer-Policy").Single());
            Assert.DoesNotContain("<script>", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        Assert.False(plain.Headers.Contains("Strict-Transport-Security"));
        Assert.StartsWith("max-age=", secure.Headers.GetValues("Strict-Transport-Security").Single(), StringComparison.Ordinal);
    }
}
