using Gatehouse.Samples.Backend;
using Gatehouse.Samples.ConsoleApp;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using ServerCertificates = Gatehouse.Server.Certificates;

namespace Gatehouse.Server.Tests.Client;

/// <summary>samples/: the customer backend mints over mTLS from a real Gatehouse, and the console app logs in through it.</summary>
[Trait(Category.Name, Category.Fast)]
public sealed class SampleTests(GatehouseServer server) : IClassFixture<GatehouseServer>, IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("gatehouse-samples").FullName;

    public void Dispose() => GatehouseServer.DeleteDataDirectory(_work);

    [Fact]
    public async Task The_console_app_logs_in_through_the_backend_over_mtls_and_logs_out()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var request = Gatehouse.Client.ClientCertificates.CreateRequest("sample-backend");
        await File.WriteAllTextAsync(Path.Combine(_work, "backend.pem"), await server.IssueClientCertificateAsync(network, "sample-backend", request.RequestPem));
        await File.WriteAllTextAsync(Path.Combine(_work, "backend.key"), request.PrivateKeyPem);
        await File.WriteAllTextAsync(Path.Combine(_work, "server.crt.pem"), server.Services.GetRequiredService<ServerCertificates.ServerCertificate>().Certificate.ExportCertificatePem());

        await using var backend = BackendApp.Build([], builder =>
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Gatehouse:Endpoint"] = server.HttpsAddress.ToString(),
                ["Gatehouse:ServerKey"] = serverKey,
                ["Gatehouse:CertificatePath"] = Path.Combine(_work, "backend.pem"),
                ["Gatehouse:KeyPath"] = Path.Combine(_work, "backend.key"),
                ["Gatehouse:ServerCertificatePath"] = Path.Combine(_work, "server.crt.pem"),
                ["DemoUsers:alice"] = "wonderland",
            });
        });
        await backend.StartAsync();
        var backendAddress = new Uri(backend.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());

        using var output = new StringWriter();
        var exit = await LoginSample.RunAsync(backendAddress, server.BaseAddress, network.ApiKey, "alice", "wonderland", output);
        Assert.True(exit == 0, output.ToString());
        Assert.Contains("Logged in to Gatehouse as alice.", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("users/me says: alice", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("session: NotLoggedIn", output.ToString(), StringComparison.Ordinal);

        using var wrongPassword = new StringWriter();
        Assert.Equal(1, await LoginSample.RunAsync(backendAddress, server.BaseAddress, network.ApiKey, "alice", "guess", wrongPassword));
        Assert.Contains("refused the sign-in (401)", wrongPassword.ToString(), StringComparison.Ordinal);

        using var gatehouseDown = new StringWriter();
        using var gatehouseDownErrors = new StringWriter();
        Assert.Equal(1, await LoginSample.RunAsync(backendAddress, new Uri($"http://127.0.0.1:{UnusedPort()}/"), network.ApiKey, "alice", "wonderland",
            gatehouseDown, gatehouseDownErrors));
        Assert.Matches(@"^Gatehouse at http://127\.0\.0\.1:\d+/ (did not answer|cannot be reached): [^\n]+\n$", gatehouseDownErrors.ToString());

        // The network has mTLS on, so the login above proves the backend presented its certificate; the logout ended the session.
        await server.FlushAuditAsync();
        await using var audit = server.Services.CreateAsyncScope();
        var db = audit.ServiceProvider.GetRequiredService<Storage.GatehouseDb>();
        Assert.True(await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.AnyAsync(db.Sessions, s => s.RevokedAt != null));
    }

    [Fact]
    public async Task The_console_app_says_in_one_line_on_standard_error_that_its_backend_cannot_be_reached_and_exits_1()
    {
        var backend = new Uri($"http://127.0.0.1:{UnusedPort()}/");
        using var output = new StringWriter();
        using var errors = new StringWriter();

        var exit = await LoginSample.RunAsync(backend, server.BaseAddress, "any-api-key", "alice", "wonderland", output, errors);

        Assert.Equal(1, exit);
        Assert.Equal("", output.ToString());
        Assert.StartsWith($"The backend at {backend} cannot be reached: ", errors.ToString(), StringComparison.Ordinal);
        Assert.Single(errors.ToString().TrimEnd().Split('\n'));
    }

    /// <summary>A port of 127.0.0.1 that was just free: nothing listens on it.</summary>
    private static int UnusedPort()
    {
        var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
