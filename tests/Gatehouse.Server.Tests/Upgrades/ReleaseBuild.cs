using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Gatehouse.Server.Tests.Upgrades;

/// <summary>
/// Release 0.1.0 built from its own commit: its source exported from this repository's history (git archive), with
/// tests/Upgrade/Release-0.1.0 (a program that fills a database through that release's code) built beside it. Kept
/// under the temp folder by commit and fixture contents, so a second run on the same machine skips the build.
/// </summary>
public sealed class ReleaseBuild : IAsyncLifetime
{
    public const string Version = "0.1.0";
    public const string Commit = "d11ad2c06bca8b37c8fb9250c4301c408bda0470";

    private static readonly string FixtureSource = Repository.PathOf("tests", "Upgrade", $"Release-{Version}");

    private string _root = "";

    /// <summary>The release's server, to run as an old node (dotnet &lt;this&gt;).</summary>
    public string ServerAssembly => Path.Combine(_root, "src", "src", "Gatehouse.Server", "bin", "Release", "net10.0", "Gatehouse.Server.dll");

    private string FixtureAssembly => Path.Combine(_root, "src", "upgrade-fixture", "bin", "Release", "net10.0", "UpgradeFixture.dll");

    public async Task InitializeAsync()
    {
        _root = Path.Combine(Path.GetTempPath(), "gatehouse-releases", $"{Version}-{Commit[..12]}-{FixtureHash()[..12]}");
        var ready = Path.Combine(_root, "ready");
        if (File.Exists(ready))
            return;
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
        var source = Directory.CreateDirectory(Path.Combine(_root, "src")).FullName;
        var archive = Path.Combine(_root, "release.tar");
        await RunAsync("git", ["-C", Repository.Root, "archive", "--format=tar", "-o", archive, Commit], Repository.Root,
            $"Release {Version} is commit {Commit} of this repository's history; a shallow clone lacks it (fetch it with git fetch --unshallow).");
        await RunAsync("tar", ["-xf", archive, "-C", source], source);
        var fixture = Directory.CreateDirectory(Path.Combine(source, "upgrade-fixture")).FullName;
        foreach (var file in Directory.EnumerateFiles(FixtureSource))
            File.Copy(file, Path.Combine(fixture, Path.GetFileName(file)));
        await RunAsync("dotnet", ["build", Path.Combine(fixture, "UpgradeFixture.csproj"), "-c", "Release", "-nologo", "-v", "quiet"], source);
        await File.WriteAllTextAsync(ready, Commit);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>
    /// Fills a database through release 0.1.0 (SQLite in <paramref name="dataDirectory"/>, or the PostgreSQL database
    /// given) and returns what its clients hold: keys, tokens, the client certificate, the audit log's events.
    /// </summary>
    public async Task<JsonNode> FillAsync(string dataDirectory, string? postgresConnectionString)
    {
        var manifest = Path.Combine(Path.GetTempPath(), $"gatehouse-upgrade-{Guid.NewGuid():n}.json");
        try
        {
            List<string> arguments = [FixtureAssembly, dataDirectory, manifest];
            if (postgresConnectionString is not null)
                arguments.Add(postgresConnectionString);
            await RunAsync("dotnet", arguments, Path.GetDirectoryName(FixtureAssembly)!);
            return JsonNode.Parse(await File.ReadAllTextAsync(manifest))!;
        }
        finally
        {
            File.Delete(manifest);
        }
    }

    private static string FixtureHash()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in Directory.EnumerateFiles(FixtureSource).Order(StringComparer.Ordinal))
            hash.AppendData(File.ReadAllBytes(file));
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static async Task RunAsync(string program, IEnumerable<string> arguments, string workingDirectory, string? hint = null)
    {
        var start = new ProcessStartInfo(program, arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // The test host's MSBuild settings would point the release's build at this build's SDK state.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(name);
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            var said = new StringBuilder().AppendLine(await output).AppendLine(await error).ToString();
            Assert.Fail($"{program} {string.Join(' ', start.ArgumentList)} exited {process.ExitCode}. {hint}{Environment.NewLine}{said[^Math.Min(said.Length, 4000)..]}");
        }
    }
}

[CollectionDefinition(nameof(ReleaseBuild))]
public sealed class SharedReleaseBuild : ICollectionFixture<ReleaseBuild>;
