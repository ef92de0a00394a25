using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Server.Certificates;
using Gatehouse.Server.Networks;

namespace Gatehouse.Server.Tests;

/// <summary>Behind a TLS-terminating proxy: the forwarded certificate counts only from a configured proxy.</summary>
[Trait(Category.Name, Category.Slow)]
public sealed class ForwardedCertificateTests
{
    private const string Header = "X-Client-Certificate";

    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("10.9.9.9", false)]
    public async Task A_forwarded_certificate_is_believed_only_from_a_trusted_proxy(string trustedProxy, bool accepted)
    {
        var server = new GatehouseServer();
        server.Settings["Gatehouse:Mtls:ForwardedCertificateHeader"] = Header;
        server.Settings["Gatehouse:Mtls:TrustedProxies:0"] = trustedProxy;
        await server.InitializeAsync();
        try
        {
            var network = await server.CreateNetworkAsync(secureMode: true);
            var serverKey = await server.GenerateServerKeyAsync(network);
            string certificatePem;
            await using (var scope = server.Services.CreateAsyncScope())
            {
                var found = await scope.ServiceProvider.GetRequiredService<NetworkAdministration>().FindAsync(network.Id);
                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var csr = new CertificateRequest("CN=behind-proxy", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();
                var certificates = scope.ServiceProvider.GetRequiredService<ClientCertificates>();
                var (issued, _) = await certificates.CreateAsync(found!, "proxied", csr, "test");
                certificatePem = issued!.CertificatePem;
                Assert.Null(await certificates.SetMtlsAsync(found!, true, "test"));
            }

            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v3/authentication/token?userId=alice");
            request.Headers.Add("x-server-key", serverKey);
            request.Headers.Add(Header, Uri.EscapeDataString(certificatePem));
            using var response = await server.Http.SendAsync(request);

            if (accepted)
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            else
                Assert.Contains("call over HTTPS", await Envelope.AssertUnauthorizedAsync(response), StringComparison.Ordinal);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}
