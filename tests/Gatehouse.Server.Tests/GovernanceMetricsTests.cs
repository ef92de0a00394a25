using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Observability;

namespace Gatehouse.Server.Tests;

/// <summary>
/// The governance figures and the counters behind the alert rules and the dashboard, as a real server's /metrics
/// serves them; and every metric name the files in deploy/ query is among them, so neither can drift from the other.
/// Each test has a server of its own, and runs alone: every server of this process writes to the same process-wide
/// meters, and OpenTelemetry merges same-named instruments into one stream that it retires, in every server's
/// /metrics, when any one of those servers is disposed.
/// </summary>
[Trait(Category.Name, Category.Slow)]
[Collection(RunsAlone.Name)]
public sealed class GovernanceMetricsTests
{
    private const double Day = 86400;

    [Fact]
    public Task Each_networks_key_age_expiring_admin_tokens_and_certificate_expiry_are_served_and_follow_the_clock() => WithServerAsync(async server =>
    {
        // Certificates of 40 days rather than a year: the clock moves weeks, not a year, and every timer of the server
        // fires for each of its periods the fake clock skips.
        var network = await server.CreateNetworkAsync(secureMode: true);
        var quiet = await server.CreateNetworkAsync();
        var firstKeyAt = server.Clock.GetUtcNow();
        var firstKey = await server.GenerateServerKeyAsync(network);
        foreach (var days in new[] { 10, 12, 40 })
            Assert.Null((await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network, TimeSpan.FromDays(days))).Error);
        using var certificate = await IssueCertificateAsync(server, network, mtlsOn: true);
        server.Clock.Advance(TimeSpan.FromMinutes(10));
        var secondKeyAt = server.Clock.GetUtcNow();
        var secondKey = await server.GenerateServerKeyAsync(network);

        // The first key is in its grace hour: it is the oldest key the network still accepts.
        var samples = await ScrapeUntilAsync(server, s => Gauge(s, "gatehouse_server_key_age_seconds", network) is not null);
        var now = server.Clock.GetUtcNow();
        Assert.Equal((now - firstKeyAt).TotalSeconds, Gauge(samples, "gatehouse_server_key_age_seconds", network)!.Value, 1.0);
        Assert.Equal(2, Gauge(samples, "gatehouse_admin_tokens_expiring", network));
        Assert.Equal((certificate.NotAfter.ToUniversalTime() - now.UtcDateTime).TotalSeconds,
            Gauge(samples, "gatehouse_client_certificate_expires_in_seconds", network)!.Value, 2.0);
        Assert.Equal(0, Gauge(samples, "gatehouse_admin_tokens_expiring", quiet));
        Assert.Null(Gauge(samples, "gatehouse_server_key_age_seconds", quiet));
        Assert.Null(Gauge(samples, "gatehouse_client_certificate_expires_in_seconds", quiet));
        var text = await server.Http.GetStringAsync("/metrics");
        Assert.DoesNotContain(firstKey, text, StringComparison.Ordinal);
        Assert.DoesNotContain(secondKey, text, StringComparison.Ordinal);
        // The runtime's memory beside ours, as docs/operations.md lists it.
        Assert.Contains("\ndotnet_process_memory_working_set_bytes", text, StringComparison.Ordinal);

        // 15 days on: the first key has ended, the 10- and 12-day tokens have expired and the 40-day one is within 30
        // days of its end; the certificate has 25 days left, under the alert's threshold.
        server.Clock.Advance(TimeSpan.FromDays(15));
        samples = await ScrapeUntilAsync(server, s =>
            Math.Abs(Gauge(s, "gatehouse_server_key_age_seconds", network)!.Value - (server.Clock.GetUtcNow() - secondKeyAt).TotalSeconds) < 1);
        now = server.Clock.GetUtcNow();
        Assert.Equal(1, Gauge(samples, "gatehouse_admin_tokens_expiring", network));
        var left = Gauge(samples, "gatehouse_client_certificate_expires_in_seconds", network)!.Value;
        Assert.Equal((certificate.NotAfter.ToUniversalTime() - now.UtcDateTime).TotalSeconds, left, 2.0);
        Assert.InRange(left, 24 * Day, 25 * Day);

        // Past the certificate's end with mTLS on, every backend call is refused: 0, not a missing series.
        server.Clock.Advance(TimeSpan.FromDays(30));
        samples = await ScrapeUntilAsync(server, s => Gauge(s, "gatehouse_client_certificate_expires_in_seconds", network) == 0);
        Assert.InRange(Gauge(samples, "gatehouse_server_key_age_seconds", network)!.Value, 45 * Day, 46 * Day);
        Assert.Equal(0, Gauge(samples, "gatehouse_admin_tokens_expiring", network));
    }, ("Gatehouse:Mtls:CertificateValidity", "40.00:00:00"));

    [Fact]
    public Task Server_to_server_calls_are_counted_by_credential_and_transport_and_refused_logins_by_reason() => WithServerAsync(async server =>
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var (adminToken, error) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);
        Assert.Null(error);
        using var certificate = await IssueCertificateAsync(server, network, mtlsOn: false);
        var before = Monitoring.ParseScrape(await server.Http.GetStringAsync("/metrics"));

        using (var overMtls = server.HttpsClient(certificate))
        {
            using var minted = await MintAsync(overMtls, serverKey);
            Assert.Equal(HttpStatusCode.OK, minted.StatusCode);
        }
        for (var i = 0; i < 2; i++)
            await server.MintAsync(serverKey, "alice");
        using (var users = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", adminToken!))
            Assert.Equal(HttpStatusCode.OK, users.StatusCode);
        using (var refused = await server.MintV3Async("gsk_wrong", "alice"))
            await Envelope.AssertUnauthorizedAsync(refused);
        using (var refused = await server.CreateSessionAsync(network, "alice", "device-a", authToken: "not-an-auth-token"))
            await Envelope.AssertUnauthorizedAsync(refused);
        var after = Monitoring.ParseScrape(await server.Http.GetStringAsync("/metrics"));

        void AssertIncrease(double expected, string name, params (string Label, string Value)[] labels)
        {
            var increase = Sum(after, name, labels) - Sum(before, name, labels);
            Assert.True(increase == expected, $"{name} {string.Join(',', labels)} rose by {increase}, not {expected}; now:\n"
                + string.Join('\n', after.Where(s => s.Name == name).Select(s => $"{string.Join(',', s.Labels)} {s.Value}")));
        }
        AssertIncrease(1, "gatehouse_server_to_server_calls_total", ("credential", "server_key"), ("transport", "mtls"));
        AssertIncrease(2, "gatehouse_server_to_server_calls_total", ("credential", "server_key"), ("transport", "credential_only"));
        AssertIncrease(1, "gatehouse_server_to_server_calls_total", ("credential", "admin_token"), ("transport", "credential_only"));
        AssertIncrease(0, "gatehouse_server_to_server_calls_total", ("credential", "admin_token"), ("transport", "mtls"));
        // A refused call is no call: it is a refusal, by its reason.
        AssertIncrease(4, "gatehouse_server_to_server_calls_total");
        AssertIncrease(1, "gatehouse_security_events_total", ("kind", "server_key.refused"), ("reason", "server_key_invalid"));
        AssertIncrease(1, "gatehouse_security_events_total", ("kind", "session.refused"), ("reason", "auth_token_invalid"));
    });

    [Fact]
    public Task Dropped_audit_events_and_server_to_server_calls_are_served_at_zero_before_the_first_one() => WithServerAsync(async server =>
    {
        var samples = Monitoring.ParseScrape(await server.Http.GetStringAsync("/metrics"));

        foreach (var kind in AuditKinds.All)
            Assert.Contains(samples, s => s.Name == "gatehouse_audit_dropped_total" && s.Has("kind", kind));
        foreach (var credential in new[] { "server_key", "admin_token" })
        {
            foreach (var transport in new[] { "mtls", "credential_only" })
                Assert.Contains(samples, s => s.Name == "gatehouse_server_to_server_calls_total" && s.Has("credential", credential) && s.Has("transport", transport));
        }
    });

    [Fact]
    public Task Every_metric_the_alert_rules_and_the_dashboard_query_is_served_by_metrics() => WithServerAsync(async server =>
    {
        // What a deployment serves once it is in use: a key, a token, a certificate, calls, refusals.
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        Assert.Null((await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network, TimeSpan.FromDays(20))).Error);
        using var certificate = await IssueCertificateAsync(server, network, mtlsOn: false);
        await server.MintAsync(serverKey, "alice");
        using (await server.MintV3Async("gsk_wrong", "alice")) { }
        var served = (await ScrapeUntilAsync(server, s => Gauge(s, "gatehouse_server_key_age_seconds", network) is not null))
            .Select(s => s.Name).ToHashSet(StringComparer.Ordinal);

        var rules = Monitoring.Rules(await File.ReadAllTextAsync(Monitoring.AlertRulesPath));
        var recorded = rules.Where(r => r.Kind == "record").Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        var byRules = rules.SelectMany(r => Monitoring.MetricNames(r.Expr)).Where(n => !recorded.Contains(n)).ToHashSet(StringComparer.Ordinal);
        var byDashboard = Monitoring.DashboardExpressions(JsonNode.Parse(await File.ReadAllTextAsync(Monitoring.DashboardPath))!)
            .SelectMany(Monitoring.MetricNames).ToHashSet(StringComparer.Ordinal);

        Assert.Equal(6, rules.Count(r => r.Kind == "alert"));
        string[] governance = ["gatehouse_server_key_age_seconds", "gatehouse_client_certificate_expires_in_seconds", "gatehouse_admin_tokens_expiring",
            "gatehouse_security_events_total", "gatehouse_audit_dropped_total", "http_server_request_duration_seconds_count"];
        Assert.Subset(byRules, governance.ToHashSet(StringComparer.Ordinal));
        Assert.Subset(byDashboard, governance.Append("gatehouse_server_to_server_calls_total").Append("http_server_request_duration_seconds_bucket")
            .ToHashSet(StringComparer.Ordinal));
        foreach (var name in byRules)
            Assert.True(served.Contains(name), $"the alert rules query {name}, which /metrics does not serve");
        foreach (var name in byDashboard)
            Assert.True(served.Contains(name), $"the dashboard queries {name}, which /metrics does not serve");
    });

    [Fact]
    public void The_name_reader_finds_the_metrics_of_an_expression_and_nothing_else()
    {
        // The control of the test above: a reader that found nothing, or found labels and functions, would prove nothing.
        Assert.Equal(["gatehouse_server_key_agee_days", "up"],
            Monitoring.MetricNames("""max by (network) (gatehouse_server_key_agee_days{job=~"$job",network="a b"}) / 86400 > 365 and on (instance) up""")
                .Order(StringComparer.Ordinal));
        Assert.Equal(["http_server_request_duration_seconds_bucket"],
            Monitoring.MetricNames("histogram_quantile(0.95, sum by (le) (rate(http_server_request_duration_seconds_bucket[$__rate_interval]))) * 1e3"));
    }

    private static async Task WithServerAsync(Func<GatehouseServer, Task> test, params (string Key, string Value)[] settings)
    {
        var server = new GatehouseServer();
        foreach (var (key, value) in settings)
            server.Settings[key] = value;
        await server.InitializeAsync();
        try
        {
            await test(server);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    /// <summary>
    /// Scrapes until <paramref name="done"/>, moving the clock one refresh interval before each scrape so that the
    /// governance snapshot is taken again.
    /// </summary>
    private static async Task<List<Sample>> ScrapeUntilAsync(GatehouseServer on, Func<List<Sample>, bool> done)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            on.Clock.Advance(GovernanceMetrics.RefreshInterval);
            await Task.Delay(20);
            var samples = Monitoring.ParseScrape(await on.Http.GetStringAsync("/metrics"));
            if (done(samples))
                return samples;
        }
        Assert.Fail("The governance metrics never showed what was expected:\n" + await on.Http.GetStringAsync("/metrics"));
        return [];
    }

    private static double? Gauge(List<Sample> samples, string name, TestNetwork network) =>
        samples.SingleOrDefault(s => s.Name == name && s.Has("network", network.Id))?.Value;

    private static double Sum(List<Sample> samples, string name, (string Label, string Value)[] labels) =>
        samples.Where(s => s.Name == name && labels.All(l => s.Has(l.Label, l.Value))).Sum(s => s.Value);

    private static async Task<X509Certificate2> IssueCertificateAsync(GatehouseServer on, TestNetwork network, bool mtlsOn)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest("CN=backend, O=Customer", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();
        var chain = await on.IssueClientCertificateAsync(network, "backend", csr, mtlsOn);
        return X509Certificate2.CreateFromPem(chain, key.ExportPkcs8PrivateKeyPem());
    }

    private static async Task<HttpResponseMessage> MintAsync(HttpClient client, string serverKey)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v4/authentication/token") { Content = JsonContent.Create(new { userId = "alice" }) };
        request.Headers.Add("x-server-key", serverKey);
        return await client.SendAsync(request);
    }
}
