using System.Diagnostics;
using System.IO.Compression;
using System.Reflection.Metadata;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Gatehouse.Server.Tests.Client;

/// <summary>
/// The NuGet packages as <c>dotnet pack</c> makes them from this build (docs/packages.md): what their nuspecs declare,
/// the files and symbols they carry, that pack says nothing but what it made, and that a customer's projects restore them from a
/// feed and build their READMEs' examples.
/// </summary>
[Trait(Category.Name, Category.Slow)]
public sealed partial class PackageTests(PackedPackages packed) : IClassFixture<PackedPackages>
{
    /// <summary>The portable PDB's SourceLink record (its JSON maps source paths to URLs).</summary>
    private static readonly Guid SourceLinkKind = new("CC110556-A091-4D38-9FEC-25AB9A351A6A");

    [Fact]
    public async Task Each_package_declares_its_license_authors_addresses_commit_and_a_prerelease_version_and_carries_readme_icon_and_symbols()
    {
        var commit = (await Processes.RunAsync("git", ["-C", Repository.Root, "rev-parse", "HEAD"], Repository.Root)).Output.Trim();
        var release = VersionRegex().Match(File.ReadAllText(Repository.PathOf("Directory.Build.props"))).Groups[1].Value;
        Assert.Matches(@"^\d+\.\d+\.\d+$", release);
        Assert.StartsWith("Apache License", File.ReadAllText(Repository.PathOf("LICENSE")).Trim(), StringComparison.Ordinal);

        foreach (var id in PackedPackages.Ids)
        {
            // Not a warning, nor a message such as "The package … is missing a readme": nothing but what it made.
            Assert.True(packed.Remarks(id).Count == 0, $"dotnet pack {id} said:\n{string.Join('\n', packed.Remarks(id))}");

            var nupkg = Path.Combine(packed.Feed, $"{id}.{packed.Version}.nupkg");
            using var package = ZipFile.OpenRead(nupkg);
            var nuspec = XDocument.Load(package.GetEntry($"{id}.nuspec")!.Open()).Root!;
            XNamespace ns = nuspec.Name.NamespaceName;
            var metadata = nuspec.Element(ns + "metadata")!;
            string Field(string name) => metadata.Element(ns + name)?.Value ?? "";

            Assert.Equal(id, Field("id"));
            Assert.Matches($@"^{Regex.Escape(release)}-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*$", Field("version"));
            Assert.Equal("expression", metadata.Element(ns + "license")?.Attribute("type")?.Value);
            Assert.Equal("Apache-2.0", Field("license"));
            Assert.NotEqual("", Field("authors"));
            Assert.NotEqual(id, Field("authors"));
            Assert.NotEqual("", Field("description"));
            Assert.StartsWith("https://", Field("projectUrl"), StringComparison.Ordinal);
            var repository = metadata.Element(ns + "repository")!;
            Assert.Equal("git", repository.Attribute("type")?.Value);
            Assert.StartsWith("https://", repository.Attribute("url")?.Value, StringComparison.Ordinal);
            Assert.Equal(commit, repository.Attribute("commit")?.Value);

            Assert.Equal("README.md", Field("readme"));
            Assert.Equal(File.ReadAllText(Repository.PathOf("src", id, "README.md")), Read(package, "README.md"));
            Assert.Equal("icon.png", Field("icon"));
            Assert.Equal(File.ReadAllBytes(Repository.PathOf("packaging", "icon.png")), ReadBytes(package, "icon.png"));
            Assert.Contains(package.Entries, e => e.FullName.EndsWith($"/{id}.dll", StringComparison.Ordinal));

            // The symbols package: the PDB, whose SourceLink maps the sources to this commit at an https address.
            using var symbols = ZipFile.OpenRead(Path.ChangeExtension(nupkg, ".snupkg"));
            var pdb = symbols.Entries.Single(e => e.FullName.EndsWith($"/{id}.pdb", StringComparison.Ordinal));
            using var pdbReader = MetadataReaderProvider.FromPortablePdbStream(new MemoryStream(ReadBytes(symbols, pdb.FullName)));
            var reader = pdbReader.GetMetadataReader();
            var sourceLink = reader.CustomDebugInformation.Select(reader.GetCustomDebugInformation)
                .Where(info => reader.GetGuid(info.Kind) == SourceLinkKind)
                .Select(info => Encoding.UTF8.GetString(reader.GetBlobBytes(info.Value)))
                .SingleOrDefault();
            Assert.True(sourceLink is not null, $"{id}.pdb has no SourceLink");
            Assert.Matches($"\"https://[^\"]+/{commit}/\\*\"", sourceLink);
        }

        using var tool = ZipFile.OpenRead(Path.Combine(packed.Feed, $"Gatehouse.Tool.{packed.Version}.nupkg"));
        Assert.Contains("<packageType name=\"DotnetTool\"", Read(tool, "Gatehouse.Tool.nuspec"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_customers_projects_restore_the_packages_from_a_feed_and_build_their_readme_examples_and_the_tool_installs_and_runs()
    {
        var work = Directory.CreateTempSubdirectory("gatehouse-consumer").FullName;
        try
        {
            // Gatehouse's packages come from the feed only (never a stale copy of the same version in a packages
            // folder); the rest from the machine's packages folder, or nuget.org. Restored into a folder of its own.
            var globalPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            await File.WriteAllTextAsync(Path.Combine(work, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <config><add key="globalPackagesFolder" value="{Path.Combine(work, "packages")}" /></config>
                  <packageSources>
                    <clear />
                    <add key="gatehouse" value="{packed.Feed}" />
                    <add key="machine" value="{globalPackages}" />
                    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
                  </packageSources>
                  <packageSourceMapping>
                    <packageSource key="gatehouse"><package pattern="Gatehouse.*" /></packageSource>
                    <packageSource key="machine"><package pattern="*" /></packageSource>
                    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
                  </packageSourceMapping>
                </configuration>
                """);
            await WriteProjectAsync(work, "App", "Microsoft.NET.Sdk", "Exe", "Gatehouse.Client");
            await WriteProjectAsync(work, "Api", "Microsoft.NET.Sdk.Web", "Exe", "Gatehouse.AspNetCore");
            await File.WriteAllTextAsync(Path.Combine(work, "Consumers.slnx"),
                """<Solution><Project Path="App/App.csproj" /><Project Path="Api/Api.csproj" /></Solution>""");

            var build = await Processes.RunAsync("dotnet", ["build", "Consumers.slnx", "-c", "Release", "-nologo", "-v", "quiet"], work);
            Assert.True(build.Exit == 0, $"the README examples did not build against the packages:\n{build.Output}");

            var tools = Path.Combine(work, "tools");
            var install = await Processes.RunAsync("dotnet",
                ["tool", "install", "Gatehouse.Tool", "--version", packed.Version, "--tool-path", tools, "--configfile", Path.Combine(work, "nuget.config")], work);
            Assert.True(install.Exit == 0, install.Output);
            var run = await Processes.RunAsync(Path.Combine(tools, "gatehouse"), ["certificate", "request", "packaged", "--dir", work], work);
            Assert.True(run.Exit == 0, run.Output);
            Assert.True(File.Exists(Path.Combine(work, "packaged.key")) && File.Exists(Path.Combine(work, "packaged.csr")), run.Output);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>A project of the customer's: the package's README example as its Program.cs, warnings as errors.</summary>
    private async Task WriteProjectAsync(string work, string name, string sdk, string outputType, string package)
    {
        var folder = Directory.CreateDirectory(Path.Combine(work, name)).FullName;
        await File.WriteAllTextAsync(Path.Combine(folder, $"{name}.csproj"), $"""
            <Project Sdk="{sdk}">
              <PropertyGroup>
                <OutputType>{outputType}</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="{package}" Version="{packed.Version}" />
              </ItemGroup>
            </Project>
            """);
        var readme = File.ReadAllText(Repository.PathOf("src", package, "README.md"));
        var example = CsharpBlockRegex().Match(readme);
        Assert.True(example.Success, $"src/{package}/README.md has no C# example");
        await File.WriteAllTextAsync(Path.Combine(folder, "Program.cs"), example.Groups[1].Value);
    }

    private static string Read(ZipArchive archive, string entry) => Encoding.UTF8.GetString(ReadBytes(archive, entry));

    private static byte[] ReadBytes(ZipArchive archive, string entry)
    {
        using var stream = archive.GetEntry(entry)!.Open();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    [GeneratedRegex("<Version>([^<]+)</Version>")]
    private static partial Regex VersionRegex();

    [GeneratedRegex("```csharp\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CsharpBlockRegex();
}

/// <summary>
/// The three packages packed once for <see cref="PackageTests"/>, from the binaries of this test run's configuration
/// (<c>--no-build</c>: nothing is compiled beside the running tests), into a temporary feed.
/// </summary>
public sealed partial class PackedPackages : IAsyncLifetime
{
    public static readonly string[] Ids = ["Gatehouse.Client", "Gatehouse.AspNetCore", "Gatehouse.Tool"];

    private readonly Dictionary<string, string> _output = [];

    public string Feed { get; } = Directory.CreateTempSubdirectory("gatehouse-feed").FullName;

    /// <summary>The packages' version (one for all three), read from the Gatehouse.Client package's file name.</summary>
    public string Version { get; private set; } = "";

    /// <summary>What <c>dotnet pack</c> printed for the package beyond the files it wrote ("… -> folder", "Successfully created package").</summary>
    public IReadOnlyList<string> Remarks(string id) =>
        [.. _output[id].Split('\n').Select(line => line.Trim()).Where(line => line.Length > 0 && !WroteRegex().IsMatch(line))];

    public async Task InitializeAsync()
    {
        // bin/<configuration>/net10.0/ of the test project: pack what this configuration built.
        var configuration = Directory.GetParent(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory))!.Name;
        var results = await Task.WhenAll(Ids.Select(id => Processes.RunAsync("dotnet",
            ["pack", Repository.PathOf("src", id, $"{id}.csproj"), "-c", configuration, "--no-build", "-o", Feed, "-nologo"], Repository.Root)));
        foreach (var (id, result) in Ids.Zip(results))
        {
            Assert.True(result.Exit == 0, $"dotnet pack {id} failed:\n{result.Output}");
            _output[id] = result.Output;
        }
        var client = Directory.GetFiles(Feed, "Gatehouse.Client.*.nupkg").Single();
        Version = Path.GetFileNameWithoutExtension(client)["Gatehouse.Client.".Length..];
    }

    public Task DisposeAsync()
    {
        Directory.Delete(Feed, recursive: true);
        return Task.CompletedTask;
    }

    [GeneratedRegex(@"^(Successfully created package '[^']+'\.|[\w.]+ -> \S+)$")]
    private static partial Regex WroteRegex();
}

/// <summary>Other programs (dotnet, git, an installed tool, node), their output and error together or apart.</summary>
internal static class Processes
{
    public static async Task<(int Exit, string Output)> RunAsync(string program, IEnumerable<string> arguments, string workingDirectory)
    {
        var (exit, output, error) = await RunApartAsync(program, arguments, workingDirectory);
        return (exit, output + error);
    }

    /// <summary>Standard output and error apart, for a program whose output is read as data; <paramref name="environment"/> added to ours.</summary>
    public static async Task<(int Exit, string Output, string Error)> RunApartAsync(string program, IEnumerable<string> arguments, string workingDirectory,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(program, arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // The test host's MSBuild settings would point another build at this one's SDK state.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(name);
        // No MSBuild node or compiler server outlives the build on a machine the suite shares.
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["UseSharedCompilation"] = "false";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        // An installed tool's launcher finds the runtime this test runs on.
        start.Environment["DOTNET_ROOT"] = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', start.ArgumentList)} ran for more than 4 minutes.");
        }
        return (process.ExitCode, await output, await error);
    }
}
