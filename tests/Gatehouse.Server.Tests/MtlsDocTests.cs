using System.Diagnostics;
using System.Net.Http.Json;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.RegularExpressions;
using Gatehouse.Server.Certificates;
using Gatehouse.Server.Networks;

namespace Gatehouse.Server.Tests;

/// <summary>docs/mtls.md, followed to the letter: its openssl and curl commands run, its C# example is this code.</summary>
[Trait(Category.Name, Category.Slow)]
public sealed partial class MtlsDocTests(GatehouseServer server) : IClassFixture<GatehouseServer>, IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("gatehouse-mtls-doc").FullName;

    public void Dispose() => GatehouseServer.DeleteDataDirectory(_work);

    [Fact]
    public async Task The_customer_steps_in_docs_mtls_work_as_written()
    {
        var doc = await File.ReadAllTextAsync(Repository.PathOf("docs", "mtls.md"));
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);

        // Step 2: the key and CSR, with the doc's own openssl command.
        await BashAsync(Block(doc, "mtls:csr"), []);
        var csr = await File.ReadAllTextAsync(Path.Combine(_work, "backend.csr"));

        // Step 3: what "+ Create Certificate" and "Download" do in the console.
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var found = await scope.ServiceProvider.GetRequiredService<NetworkAdministration>().FindAsync(network.Id);
            var certificates = scope.ServiceProvider.GetRequiredService<ClientCertificates>();
            var (issued, error) = await certificates.CreateAsync(found!, "my-backend", csr, "test");
            Assert.Null(error);
            var chain = server.Services.GetRequiredService<CertificateAuthority>().ChainPem(issued!);
            await File.WriteAllTextAsync(Path.Combine(_work, "backend.pem"), chain);
            Assert.Null(await certificates.SetMtlsAsync(found!, true, "test"));
        }
        var serverCertificate = Path.Combine(_work, "server.crt.pem");
        await File.WriteAllTextAsync(serverCertificate, server.Services.GetRequiredService<ServerCertificate>().Certificate.ExportCertificatePem());

        // Step 5: the doc's curl call.
        var answer = await BashAsync(Block(doc, "mtls:call"), new()
        {
            ["GATEHOUSE_HTTPS"] = server.HttpsAddress.ToString().TrimEnd('/'),
            ["GATEHOUSE_SERVER_CERT"] = serverCertificate,
            ["SERVER_KEY"] = serverKey,
        });
        Assert.StartsWith("\"eyJ", answer.Trim(), StringComparison.Ordinal);

        // Step 6: the C# example is the code below, word for word.
        Assert.Contains(Normalize(ExampleFromThisFile()), Normalize(doc), StringComparison.Ordinal);
        var authToken = await RunExampleAsync(Path.Combine(_work, "backend.pem"), Path.Combine(_work, "backend.key"),
            server.HttpsAddress.ToString(), serverKey, server.Services.GetRequiredService<ServerCertificate>().Certificate.Thumbprint);
        Assert.StartsWith("eyJ", authToken, StringComparison.Ordinal);
    }

    private static async Task<string?> RunExampleAsync(string certificatePath, string keyPath, string gatehouseHttps, string serverKey, string pinnedThumbprint)
    {
        // docs/mtls.md:start
        using var certificate = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        using var handler = new HttpClientHandler();
        handler.ClientCertificates.Add(certificate);
        // Only while Gatehouse uses its self-signed certificate: trust exactly that one. Drop with a real certificate.
        handler.ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented?.Thumbprint == pinnedThumbprint;
        using var gatehouse = new HttpClient(handler) { BaseAddress = new Uri(gatehouseHttps) };

        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v4/authentication/token");
        request.Headers.Add("x-server-key", serverKey);
        request.Content = JsonContent.Create(new { userId = "alice" });
        using var response = await gatehouse.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var authToken = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("authToken").GetString();
        // docs/mtls.md:end
        return authToken;
    }

    private static string ExampleFromThisFile()
    {
        var source = File.ReadAllText(Repository.PathOf("tests", "Gatehouse.Server.Tests", "MtlsDocTests.cs"));
        var start = source.IndexOf("// docs/mtls.md:start", StringComparison.Ordinal);
        var end = source.IndexOf("// docs/mtls.md:end", StringComparison.Ordinal);
        return source[(source.IndexOf('\n', start) + 1)..source.LastIndexOf('\n', end)];
    }

    private static string Normalize(string code) => string.Join('\n', code.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));

    /// <summary>The first ```bash block after the marker comment.</summary>
    private static string Block(string doc, string marker)
    {
        var at = doc.IndexOf($"<!-- {marker} -->", StringComparison.Ordinal);
        Assert.True(at >= 0, $"docs/mtls.md has no {marker} marker");
        return BashBlockRegex().Match(doc, at).Groups[1].Value;
    }

    private async Task<string> BashAsync(string script, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("bash", ["-euo", "pipefail", "-c", script])
        {
            WorkingDirectory = _work,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (name, value) in environment)
            start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"the doc's commands failed: {errors}{await output}");
        return await output;
    }

    [GeneratedRegex("```bash\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex BashBlockRegex();
}
