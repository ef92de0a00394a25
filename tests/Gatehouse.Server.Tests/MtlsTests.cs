using System.Diagnostics;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Server.Certificates;
using Gatehouse.Server.Networks;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>Real TLS handshakes against Kestrel on 127.0.0.1, with CSRs made by openssl and by .NET.</summary>
public abstract class MtlsTests<TServer>(TServer server) : IClassFixture<TServer>, IDisposable
    where TServer : GatehouseServer
{
    private readonly string _work = Directory.CreateTempSubdirectory("gatehouse-mtls").FullName;

    public void Dispose()
    {
        GatehouseServer.DeleteDataDirectory(_work);
        GC.SuppressFinalize(this);
    }

    [SkippableFact]
    public async Task With_mtls_on_only_the_networks_certificate_over_tls_mints_a_token()
    {
        var (network, serverKey) = await SecureNetworkAsync();
        using var certificate = await IssueFromOpensslAsync(network, "backend");
        await SetMtlsAsync(network, on: true);

        using var withCertificate = server.HttpsClient(certificate);
        using var withoutCertificate = server.HttpsClient();
        using var v3 = await MintAsync(withCertificate, serverKey);
        using var v4 = await MintV4Async(withCertificate, serverKey);
        using var noCertificate = await MintAsync(withoutCertificate, serverKey);
        using var plainHttp = await MintAsync(server.Http, serverKey);
        using var backendSession = await OpenSessionAsync(withCertificate, serverKey);
        using var backendSessionWithoutCertificate = await OpenSessionAsync(withoutCertificate, serverKey);

        Assert.Equal(HttpStatusCode.OK, v3.StatusCode);
        Assert.Equal(HttpStatusCode.OK, v4.StatusCode);
        Assert.Contains("no client certificate", await Envelope.AssertUnauthorizedAsync(noCertificate), StringComparison.Ordinal);
        Assert.Contains("call over HTTPS", await Envelope.AssertUnauthorizedAsync(plainHttp), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, backendSession.StatusCode);
        Assert.Contains("no client certificate", await Envelope.AssertUnauthorizedAsync(backendSessionWithoutCertificate), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task An_expired_a_foreign_a_look_alike_and_a_deleted_certificate_are_each_refused_with_their_reason()
    {
        var (network, serverKey) = await SecureNetworkAsync();
        var (other, _) = await SecureNetworkAsync();
        using var good = await IssueFromDotNetAsync(network, "good");
        using var spare = await IssueFromDotNetAsync(network, "spare");
        using var foreign = await IssueFromDotNetAsync(other, "foreign");
        using var lookAlike = LookAlike(good, network);
        await SetMtlsAsync(network, on: true);

        using (var response = await MintAsync(server.HttpsClient(foreign), serverKey))
            Assert.Contains("another network", await Envelope.AssertUnauthorizedAsync(response), StringComparison.Ordinal);
        using (var response = await MintAsync(server.HttpsClient(lookAlike), serverKey))
            Assert.Contains("not issued by this deployment", await Envelope.AssertUnauthorizedAsync(response), StringComparison.Ordinal);

        await using (var scope = server.Services.CreateAsyncScope())
        {
            var certificates = scope.ServiceProvider.GetRequiredService<ClientCertificates>();
            var toDelete = (await certificates.ListAsync(network.Id)).Single(c => c.Name == "spare");
            Assert.Null(await certificates.RevokeAsync((await FindAsync(scope, network))!, toDelete.Id, "test"));
        }
        using (var response = await MintAsync(server.HttpsClient(spare), serverKey))
            Assert.Contains("revoked", await Envelope.AssertUnauthorizedAsync(response), StringComparison.Ordinal);
        using (var response = await MintAsync(server.HttpsClient(good), serverKey))
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        server.Clock.Advance(TimeSpan.FromDays(366));
        using (var response = await MintAsync(server.HttpsClient(good), serverKey))
            Assert.Contains("expired", await Envelope.AssertUnauthorizedAsync(response), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_network_without_mtls_is_unaffected()
    {
        var (network, serverKey) = await SecureNetworkAsync();
        await IssueFromDotNetAsync(network, "unused");

        using var response = await MintAsync(server.Http, serverKey);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [SkippableFact]
    public async Task Bad_certificate_requests_are_refused_with_their_messages()
    {
        var (network, _) = await SecureNetworkAsync();
        var unsecure = await server.CreateNetworkAsync();
        await IssueFromDotNetAsync(network, "first");
        await IssueFromDotNetAsync(network, "second");

        Assert.Contains("at most 2 active", await RefusalAsync(network, "third", DotNetCsr()), StringComparison.Ordinal);
        var (fresh, _) = await SecureNetworkAsync();
        Assert.Contains("at most 30 characters", await RefusalAsync(fresh, new string('n', 31), DotNetCsr()), StringComparison.Ordinal);
        Assert.Contains("name is required", await RefusalAsync(fresh, " ", DotNetCsr()), StringComparison.Ordinal);
        Assert.Contains("CSR) is required", await RefusalAsync(fresh, "empty", ""), StringComparison.Ordinal);
        Assert.Contains("not a valid PEM", await RefusalAsync(fresh, "garbage", "-----BEGIN CERTIFICATE REQUEST-----\nbm9uc2Vuc2U=\n-----END CERTIFICATE REQUEST-----"), StringComparison.Ordinal);
        Assert.Contains("at least 2048 bits", await RefusalAsync(fresh, "weak", await OpensslCsrAsync("rsa:1024")), StringComparison.Ordinal);
        Assert.Contains("P-256 or P-384", await RefusalAsync(fresh, "p521", DotNetCsr(ECCurve.NamedCurves.nistP521)), StringComparison.Ordinal);
        Assert.Contains("Turn secure mode on", await RefusalAsync(new TestNetwork(unsecure.Id, unsecure.ApiKey), "any", DotNetCsr()), StringComparison.Ordinal);
        Assert.Null(await RefusalAsync(fresh, "dup", DotNetCsr()));
        Assert.Contains("already has a certificate named", await RefusalAsync(fresh, "dup", DotNetCsr()), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task The_mtls_switch_needs_secure_mode_and_a_certificate_and_keeps_both()
    {
        var network = await server.CreateNetworkAsync();
        Assert.Contains("secure mode on", await SetMtlsAsync(network, on: true), StringComparison.Ordinal);
        await server.SetSecureModeAsync(network, on: true);
        Assert.Contains("Create a certificate", await SetMtlsAsync(network, on: true), StringComparison.Ordinal);
        await IssueFromDotNetAsync(network, "only");
        Assert.Null(await SetMtlsAsync(network, on: true));

        await using var scope = server.Services.CreateAsyncScope();
        var found = (await FindAsync(scope, network))!;
        Assert.Contains("while mTLS is on", (await scope.ServiceProvider.GetRequiredService<NetworkAdministration>().SetSecureModeAsync(found, false, "test")).Refusal,
            StringComparison.Ordinal);
        var certificates = scope.ServiceProvider.GetRequiredService<ClientCertificates>();
        var only = (await certificates.ListAsync(network.Id)).Single();
        Assert.Contains("last active certificate", (await certificates.RevokeAsync(found, only.Id, "test"))?.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Rotating_certificates_without_downtime_never_refuses_a_call()
    {
        var (network, serverKey) = await SecureNetworkAsync();
        using var first = await IssueFromOpensslAsync(network, "first");
        await SetMtlsAsync(network, on: true);
        using var firstClient = server.HttpsClient(first);
        var current = firstClient;
        var calls = 0;
        var callsWithSecond = 0;
        var refused = new List<string>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var backend = Task.Run(async () =>
        {
            // The customer's backend: mints continuously with whichever certificate it is configured with.
            while (!stop.IsCancellationRequested && calls < 5000)
            {
                var client = Volatile.Read(ref current);
                using var response = await MintAsync(client, serverKey);
                calls++;
                if (client != firstClient)
                    callsWithSecond++;
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    refused.Add($"call {calls} with the {(client == firstClient ? "first" : "second")} certificate: "
                        + $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                }
            }
        });

        await WaitForCallsAsync(() => calls, 20);
        using var second = await IssueFromDotNetAsync(network, "second");
        await WaitForCallsAsync(() => calls, calls + 20);
        using var secondClient = server.HttpsClient(second);
        Volatile.Write(ref current, secondClient);
        // Counted per certificate, not in total: a call with the first one may still be in flight when the switch is
        // made, and the rotation is done (the old certificate may go) only once the backend calls with the new one.
        await WaitForCallsAsync(() => callsWithSecond, 20);
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var certificates = scope.ServiceProvider.GetRequiredService<ClientCertificates>();
            var old = (await certificates.ListAsync(network.Id)).Single(c => c.Name == "first");
            Assert.Null(await certificates.RevokeAsync((await FindAsync(scope, network))!, old.Id, "test"));
        }
        await WaitForCallsAsync(() => callsWithSecond, callsWithSecond + 20);
        await stop.CancelAsync();
        await backend;

        Assert.True(refused.Count == 0, string.Join('\n', refused));
        using var oldAfter = await MintAsync(firstClient, serverKey);
        await Envelope.AssertUnauthorizedAsync(oldAfter);
    }

    [SkippableFact]
    public async Task The_admin_api_of_a_network_with_mtls_needs_its_certificate()
    {
        var (network, serverKey) = await SecureNetworkAsync();
        await server.LoginAsync(network, "gina", "device-g", await server.MintAsync(serverKey, "gina"));
        var (adminToken, _) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);
        using var certificate = await IssueFromDotNetAsync(network, "admin-backend");
        await SetMtlsAsync(network, on: true);

        using var without = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users/gina", adminToken!);
        using var https = server.HttpsClient(certificate);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v4/admin/users/gina");
        request.Headers.Add("x-admin-token", adminToken);
        using var with = await https.SendAsync(request);

        await Envelope.AssertUnauthorizedAsync(without);
        Assert.Equal(HttpStatusCode.OK, with.StatusCode);
    }

    [SkippableFact]
    public async Task Without_the_certificate_a_stolen_key_or_token_reveals_nothing_about_itself()
    {
        var (network, endedKey) = await SecureNetworkAsync();
        await server.GenerateServerKeyAsync(network);
        await server.GenerateServerKeyAsync(network);
        var (revokedToken, _) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);
        var revokedDigest = Tokens.Secrets.Digest(revokedToken!);
        await using (var scope = server.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<Storage.GatehouseDb>().AdminTokens
                .Where(t => t.Digest == revokedDigest).ExecuteUpdateAsync(s => s.SetProperty(t => t.RevokedAt, DateTimeOffset.UtcNow));
        }

        using var certificate = await IssueFromDotNetAsync(network, "backend");
        await SetMtlsAsync(network, on: true);

        using var withoutCertificate = server.HttpsClient();
        using var withCertificate = server.HttpsClient(certificate);
        using var endedKeyWithout = await MintAsync(withoutCertificate, endedKey);
        using var endedKeyWith = await MintAsync(withCertificate, endedKey);
        using var revokedWithout = await server.AdminAsync(HttpMethod.Get, "/api/v4/admin/users", revokedToken!);

        Assert.Contains("no client certificate", await Envelope.AssertUnauthorizedAsync(endedKeyWithout), StringComparison.Ordinal);
        Assert.DoesNotContain("certificate", await Envelope.AssertUnauthorizedAsync(endedKeyWith), StringComparison.Ordinal);
        Assert.Contains("call over HTTPS", await Envelope.AssertUnauthorizedAsync(revokedWithout), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task The_authority_is_downloadable_and_verifies_an_issued_certificate()
    {
        var (network, _) = await SecureNetworkAsync();
        using var issued = await IssueFromDotNetAsync(network, "check");

        var pem = await server.Http.GetStringAsync("/.well-known/gatehouse-client-ca.pem");
        using var authority = X509Certificate2.CreateFromPem(pem);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        // The certificate's validity follows the server's clock, which other tests of this class move.
        chain.ChainPolicy.VerificationTime = server.Clock.GetUtcNow().UtcDateTime;

        Assert.True(chain.Build(issued));
        Assert.Contains(issued.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<Oid>(), o => o.Value == "1.3.6.1.5.5.7.3.2");
        Assert.False(issued.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
    }

    // ---- helpers ----

    private async Task<(TestNetwork Network, string ServerKey)> SecureNetworkAsync()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        return (network, await server.GenerateServerKeyAsync(network));
    }

    private static async Task<Network?> FindAsync(AsyncServiceScope scope, TestNetwork network) =>
        await scope.ServiceProvider.GetRequiredService<NetworkAdministration>().FindAsync(network.Id);

    private async Task<string?> SetMtlsAsync(TestNetwork network, bool on)
    {
        await using var scope = server.Services.CreateAsyncScope();
        return (await scope.ServiceProvider.GetRequiredService<ClientCertificates>().SetMtlsAsync((await FindAsync(scope, network))!, on, "test"))?.Message;
    }

    private async Task<string?> RefusalAsync(TestNetwork network, string name, string csr)
    {
        await using var scope = server.Services.CreateAsyncScope();
        var (_, error) = await scope.ServiceProvider.GetRequiredService<ClientCertificates>().CreateAsync((await FindAsync(scope, network))!, name, csr, "test");
        return error?.Message;
    }

    private async Task<string> IssuePemAsync(TestNetwork network, string name, string csr)
    {
        await using var scope = server.Services.CreateAsyncScope();
        var (issued, error) = await scope.ServiceProvider.GetRequiredService<ClientCertificates>().CreateAsync((await FindAsync(scope, network))!, name, csr, "test");
        Assert.Null(error);
        return issued!.CertificatePem;
    }

    private async Task<X509Certificate2> IssueFromDotNetAsync(TestNetwork network, string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest($"CN={name}, O=Customer", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();
        var certificatePem = await IssuePemAsync(network, name, csr);
        return X509Certificate2.CreateFromPem(certificatePem, key.ExportPkcs8PrivateKeyPem());
    }

    private async Task<X509Certificate2> IssueFromOpensslAsync(TestNetwork network, string name)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_work, name)).FullName;
        await RunAsync("openssl", $"req -new -newkey rsa:2048 -nodes -keyout key.pem -out request.csr -subj /CN={name}/O=Customer", folder);
        var certificatePem = await IssuePemAsync(network, name, await File.ReadAllTextAsync(Path.Combine(folder, "request.csr")));
        var keyPem = await File.ReadAllTextAsync(Path.Combine(folder, "key.pem"));
        return X509Certificate2.CreateFromPem(certificatePem, keyPem);
    }

    private async Task<string> OpensslCsrAsync(string newKey)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_work, Guid.NewGuid().ToString("n"))).FullName;
        await RunAsync("openssl", $"req -new -newkey {newKey} -nodes -keyout key.pem -out request.csr -subj /CN=weak", folder);
        return await File.ReadAllTextAsync(Path.Combine(folder, "request.csr"));
    }

    private static string DotNetCsr(ECCurve? curve = null)
    {
        using var key = ECDsa.Create(curve ?? ECCurve.NamedCurves.nistP256);
        return new CertificateRequest("CN=dotnet, O=Customer", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();
    }

    /// <summary>Same subject, same network URI, same usage: only the issuer's key differs.</summary>
    private static X509Certificate2 LookAlike(X509Certificate2 original, TestNetwork network)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(original.SubjectName, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], true));
        var names = new SubjectAlternativeNameBuilder();
        names.AddUri(new Uri(CertificateAuthority.NetworkUriPrefix + network.Id));
        request.CertificateExtensions.Add(names.Build());
        using var selfSigned = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        return X509Certificate2.CreateFromPem(selfSigned.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    private static async Task<HttpResponseMessage> MintAsync(HttpClient client, string serverKey)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v3/authentication/token?userId=alice");
        request.Headers.Add("x-server-key", serverKey);
        return await client.SendAsync(request);
    }

    private static async Task<HttpResponseMessage> MintV4Async(HttpClient client, string serverKey)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v4/authentication/token") { Content = JsonContent.Create(new { userId = "alice" }) };
        request.Headers.Add("x-server-key", serverKey);
        return await client.SendAsync(request);
    }

    private static async Task<HttpResponseMessage> OpenSessionAsync(HttpClient client, string serverKey)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v5/server/sessions") { Content = JsonContent.Create(new { userId = "alice" }) };
        request.Headers.Add("x-server-key", serverKey);
        return await client.SendAsync(request);
    }

    private static async Task WaitForCallsAsync(Func<int> calls, int atLeast)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (calls() < atLeast)
        {
            Assert.True(DateTime.UtcNow < deadline, $"only {calls()} calls of {atLeast} were made in 20 s");
            await Task.Delay(10);
        }
    }

    internal static async Task RunAsync(string program, string arguments, string folder)
    {
        using var process = Process.Start(new ProcessStartInfo(program, arguments)
        {
            WorkingDirectory = folder,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        var errors = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{program} {arguments} failed: {errors}");
    }
}

[Trait(Category.Name, Category.Slow)]
public sealed class MtlsTestsOnSqlite(SqliteServer server) : MtlsTests<SqliteServer>(server);

[Trait(Category.Name, Category.Slow)]
[Trait(Category.Name, Category.Postgres)]
public sealed class MtlsTestsOnPostgres(PostgresServer server) : MtlsTests<PostgresServer>(server);
