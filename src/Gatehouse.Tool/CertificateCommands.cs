using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Client;

namespace Gatehouse.Tool;

/// <summary>
/// <c>gatehouse certificate request</c> and <c>gatehouse certificate save</c>: the two steps of mTLS on the customer's
/// side, so that no one needs to know openssl.
/// </summary>
internal static class CertificateCommands
{
    private const string Usage = """
        Usage:
          gatehouse certificate request <name> [--organization <org>] [--dir <folder>]
              Makes <name>.key (the private key; keep it secret) and <name>.csr (paste it in the console:
              Settings > Security > + Create Certificate, under the same name).
          gatehouse certificate save <downloaded.pem> --key <name>.key [--out <name>.pem]
              Checks the certificate the console issued against the key and saves it as <name>.pem, the form
              ClientCertificates.Load("<name>.pem", "<name>.key") of the Gatehouse SDK loads.
          gatehouse --help
              Prints this.
        """;

    private const string NetworkUriPrefix = "urn:gatehouse:network:";

    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter errors)
    {
        try
        {
            return args switch
            {
                ["help" or "--help" or "-h"] or ["certificate", "help" or "--help" or "-h"] => Help(output),
                [var command, ..] when command != "certificate" => Fail(errors, $"Unknown command '{command}'.\n\n{Usage}"),
                ["certificate", "request", var name, .. var rest] when !name.StartsWith('-') => await RequestAsync(name, Options(rest), output).ConfigureAwait(false),
                ["certificate", "save", var downloaded, .. var rest] when !downloaded.StartsWith('-') => await SaveAsync(downloaded, Options(rest), output).ConfigureAwait(false),
                _ => Fail(errors, Usage),
            };
        }
        catch (UsageException e)
        {
            return Fail(errors, e.Message + "\n\n" + Usage);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            return Fail(errors, e.Message);
        }
    }

    private static async Task<int> RequestAsync(string name, Dictionary<string, string> options, TextWriter output)
    {
        Allow(options, "--organization", "--dir");
        if (name.Length > 30 || name.Any(c => char.IsControl(c) || Path.GetInvalidFileNameChars().Contains(c)))
            throw new UsageException($"The name '{name}' cannot be used: at most 30 characters, and it names files.");
        var folder = options.GetValueOrDefault("--dir", ".");
        Directory.CreateDirectory(folder);
        var keyPath = Path.Combine(folder, name + ".key");
        var csrPath = Path.Combine(folder, name + ".csr");
        foreach (var path in new[] { keyPath, csrPath })
        {
            if (File.Exists(path))
                throw new UsageException($"{path} exists; a new key would orphan a certificate issued for the old one. Move it away first.");
        }

        var request = ClientCertificates.CreateRequest(name, options.GetValueOrDefault("--organization"));
        await WriteSecretAsync(keyPath, request.PrivateKeyPem).ConfigureAwait(false);
        await File.WriteAllTextAsync(csrPath, request.RequestPem).ConfigureAwait(false);
        await output.WriteLineAsync($"""
            Private key: {keyPath} (readable by you only; it never leaves this machine)
            Signing request: {csrPath}

            Next: in the console, Settings > Security > + Create Certificate, name "{name}", paste {csrPath}.
            Download the certificate, then: gatehouse certificate save <downloaded.pem> --key {keyPath}
            """).ConfigureAwait(false);
        return 0;
    }

    private static async Task<int> SaveAsync(string downloaded, Dictionary<string, string> options, TextWriter output)
    {
        Allow(options, "--key", "--out");
        var keyPath = options.GetValueOrDefault("--key") ?? throw new UsageException("--key <name>.key is required: the key the request was made with.");
        var outPath = options.GetValueOrDefault("--out") ?? Path.ChangeExtension(keyPath, ".pem");
        var chainPem = await File.ReadAllTextAsync(downloaded).ConfigureAwait(false);
        var keyPem = await File.ReadAllTextAsync(keyPath).ConfigureAwait(false);
        var labels = PemLabels(chainPem);
        if (!labels.Contains("CERTIFICATE"))
        {
            throw new UsageException(labels.Count == 0
                ? $"{downloaded} is not a PEM file (no -----BEGIN CERTIFICATE----- line): give the certificate file the console's Download button saves."
                : labels.Any(label => label.EndsWith("CERTIFICATE REQUEST", StringComparison.Ordinal))
                ? $"{downloaded} is the signing request (CSR), not the certificate the console issued: paste it in the console (Settings > Security > + Create Certificate), then give the certificate the console's Download button saves."
                : $"{downloaded} holds no certificate ({string.Join(", ", labels)}): give the certificate file the console's Download button saves.");
        }
        if (!PemLabels(keyPem).Any(label => label.EndsWith("PRIVATE KEY", StringComparison.Ordinal)))
            throw new UsageException($"{keyPath} holds no private key: give the <name>.key that `gatehouse certificate request` wrote.");

        using var certificate = TryPair(chainPem, keyPem)
            ?? throw new UsageException($"{downloaded} was not issued for the key in {keyPath}: download the certificate made from this key's request.");
        var usages = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().SelectMany(e => e.EnhancedKeyUsages.Cast<Oid>());
        if (!usages.Any(u => u.Value == ClientAuthentication.Value))
            throw new UsageException($"{downloaded} is not a client certificate (no client-authentication usage); Gatehouse's console issues those.");
        if (certificate.NotAfter.ToUniversalTime() <= DateTime.UtcNow)
            throw new UsageException($"{downloaded} expired on {certificate.NotAfter.ToUniversalTime():u}; create a new one in the console.");
        if (!string.Equals(Path.GetFullPath(outPath), Path.GetFullPath(downloaded), StringComparison.Ordinal))
            await File.WriteAllTextAsync(outPath, chainPem).ConfigureAwait(false);

        // Shown so a certificate of the wrong network is caught here rather than at the first refused call.
        var names = string.Join(' ', certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Select(e => e.Format(false)));
        var at = names.IndexOf(NetworkUriPrefix, StringComparison.Ordinal);
        var network = at < 0 ? "(none)" : new string(names[(at + NetworkUriPrefix.Length)..].TakeWhile(char.IsAsciiLetterOrDigit).ToArray());
        await output.WriteLineAsync($"""
            Saved {outPath}: {certificate.Subject}, network {network}, valid until {certificate.NotAfter.ToUniversalTime():u}.
            Load it with ClientCertificates.Load("{outPath}", "{keyPath}") and set AuthTokenClientOptions.ClientCertificate.
            Renew at least 30 days before it expires.
            """).ConfigureAwait(false);
        return 0;
    }

    private static X509Certificate2? TryPair(string chainPem, string keyPem)
    {
        try
        {
            return ClientCertificates.FromPem(chainPem, keyPem);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            // .NET says "does not match" with an ArgumentException and "no certificate" with a CryptographicException.
            return null;
        }
    }

    /// <summary>The labels of the PEM blocks in a text (CERTIFICATE, CERTIFICATE REQUEST, PRIVATE KEY, ...), in order.</summary>
    private static List<string> PemLabels(string text)
    {
        var labels = new List<string>();
        var rest = text.AsSpan();
        while (PemEncoding.TryFind(rest, out var found))
        {
            labels.Add(rest[found.Label].ToString());
            rest = rest[found.Location.End..];
        }
        return labels;
    }

    /// <summary>Written with owner-only permissions from the start, so the key is never readable by others, even briefly.</summary>
    private static async Task WriteSecretAsync(string path, string content)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        var stream = new FileStream(path, options);
        await using (stream.ConfigureAwait(false))
        {
            await using var writer = new StreamWriter(stream);
            await writer.WriteAsync(content).ConfigureAwait(false);
        }
    }

    private static Dictionary<string, string> Options(string[] rest)
    {
        if (rest.Length % 2 != 0 || rest.Where((_, i) => i % 2 == 0).Any(name => !name.StartsWith("--", StringComparison.Ordinal)))
            throw new UsageException($"Options come as pairs: --name value (got: {string.Join(' ', rest)}).");
        return rest.Chunk(2).ToDictionary(pair => pair[0], pair => pair[1]);
    }

    private static void Allow(Dictionary<string, string> options, params string[] known)
    {
        var unknown = options.Keys.Except(known).ToArray();
        if (unknown.Length > 0)
            throw new UsageException($"Unknown option {unknown[0]}.");
    }

    private static int Help(TextWriter output)
    {
        output.WriteLine(Usage);
        return 0;
    }

    private static int Fail(TextWriter errors, string message)
    {
        errors.WriteLine(message);
        return 2;
    }

    private sealed class UsageException(string message) : Exception(message);
}
