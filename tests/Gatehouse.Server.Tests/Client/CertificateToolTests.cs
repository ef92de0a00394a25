using Gatehouse.Client;
using Gatehouse.Tool;

namespace Gatehouse.Server.Tests.Client;

/// <summary><c>gatehouse certificate request</c> and <c>save</c>, then the SDK minting over mTLS with what they wrote.</summary>
[Trait(Category.Name, Category.Fast)]
public sealed class CertificateToolTests(GatehouseServer server) : IClassFixture<GatehouseServer>, IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("gatehouse-tool").FullName;

    public void Dispose() => GatehouseServer.DeleteDataDirectory(_work);

    [Fact]
    public async Task A_key_and_csr_from_the_tool_give_a_certificate_the_sdk_mints_with_over_mtls()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);

        var (exit, output, _) = await RunAsync("certificate", "request", "backend", "--organization", "Customer", "--dir", _work);
        Assert.Equal(0, exit);
        var keyPath = Path.Combine(_work, "backend.key");
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyPath));
        Assert.Contains("backend.csr", output, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", output, StringComparison.Ordinal);

        var downloaded = Path.Combine(_work, "downloaded.pem");
        await File.WriteAllTextAsync(downloaded, await server.IssueClientCertificateAsync(network, "backend", await File.ReadAllTextAsync(Path.Combine(_work, "backend.csr"))));

        (exit, output, _) = await RunAsync("certificate", "save", downloaded, "--key", keyPath);
        Assert.Equal(0, exit);
        Assert.Contains($"network {network.Id}", output, StringComparison.Ordinal);

        using var certificate = ClientCertificates.Load(Path.Combine(_work, "backend.pem"), keyPath);
        var options = new AuthTokenClientOptions
        {
            Endpoint = server.HttpsAddress,
            ServerKey = serverKey,
            ClientCertificate = certificate,
            ServerCertificateValidation = (_, presented, _, _) => server.IsThisServersCertificate(presented),
        };
        using var http = new HttpClient(options.CreateHandler());
        Assert.StartsWith("eyJ", (await new AuthTokenClient(http, options).MintAsync("alice")).Token, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_tool_refuses_to_overwrite_a_key_to_pair_a_foreign_key_and_to_guess_at_bad_arguments()
    {
        Assert.Equal(0, (await RunAsync("certificate", "request", "first", "--dir", _work)).Exit);
        var (exit, _, errors) = await RunAsync("certificate", "request", "first", "--dir", _work);
        Assert.Equal(2, exit);
        Assert.Contains("exists", errors, StringComparison.Ordinal);

        Assert.Equal(0, (await RunAsync("certificate", "request", "second", "--dir", _work)).Exit);
        var network = await server.CreateNetworkAsync(secureMode: true);
        var downloaded = Path.Combine(_work, "first-issued.pem");
        await File.WriteAllTextAsync(downloaded, await server.IssueClientCertificateAsync(network, "first", await File.ReadAllTextAsync(Path.Combine(_work, "first.csr")), mtlsOn: false));
        (exit, _, errors) = await RunAsync("certificate", "save", downloaded, "--key", Path.Combine(_work, "second.key"));
        Assert.Equal(2, exit);
        Assert.Contains("was not issued for the key", errors, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_work, "second.pem")));

        Assert.Contains("Usage", (await RunAsync("certificate", "save", downloaded)).Errors, StringComparison.Ordinal);
        Assert.Contains("Unknown option --colour", (await RunAsync("certificate", "request", "x", "--colour", "red")).Errors, StringComparison.Ordinal);
        Assert.Equal(2, (await RunAsync("nonsense")).Exit);
    }

    [Fact]
    public async Task Help_goes_to_standard_output_and_a_missing_or_unknown_command_to_standard_error()
    {
        foreach (var help in new[] { "--help", "-h", "help" })
        {
            var (exit, output, errors) = await RunAsync(help);
            Assert.Equal(0, exit);
            Assert.Contains("gatehouse certificate request <name>", output, StringComparison.Ordinal);
            Assert.Equal("", errors);
        }

        var (none, noneOutput, noneErrors) = await RunAsync();
        Assert.Equal(2, none);
        Assert.Equal("", noneOutput);
        Assert.Contains("gatehouse certificate request <name>", noneErrors, StringComparison.Ordinal);

        var (unknown, unknownOutput, unknownErrors) = await RunAsync("certficate", "request", "backend");
        Assert.Equal(2, unknown);
        Assert.Equal("", unknownOutput);
        Assert.StartsWith("Unknown command 'certficate'.", unknownErrors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Saving_the_signing_request_or_a_file_that_is_not_pem_says_what_the_file_is()
    {
        Assert.Equal(0, (await RunAsync("certificate", "request", "backend", "--dir", _work)).Exit);
        var key = Path.Combine(_work, "backend.key");

        var (csr, _, csrErrors) = await RunAsync("certificate", "save", Path.Combine(_work, "backend.csr"), "--key", key);
        var notPem = Path.Combine(_work, "page.html");
        await File.WriteAllTextAsync(notPem, "<html><body>Sign in</body></html>");
        var (html, _, htmlErrors) = await RunAsync("certificate", "save", notPem, "--key", key);
        var (swapped, _, swappedErrors) = await RunAsync("certificate", "save", key, "--key", key);

        Assert.Equal(2, csr);
        Assert.Contains("backend.csr is the signing request (CSR), not the certificate the console issued", csrErrors, StringComparison.Ordinal);
        Assert.DoesNotContain("not issued for the key", csrErrors, StringComparison.Ordinal);
        Assert.Equal(2, html);
        Assert.Contains("page.html is not a PEM file", htmlErrors, StringComparison.Ordinal);
        Assert.Equal(2, swapped);
        Assert.Contains("backend.key holds no certificate (PRIVATE KEY)", swappedErrors, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_work, "backend.pem")));
    }

    private static async Task<(int Exit, string Output, string Errors)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var errors = new StringWriter();
        var exit = await CertificateCommands.RunAsync(args, output, errors);
        return (exit, output.ToString(), errors.ToString());
    }
}
