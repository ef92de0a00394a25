using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Gatehouse.Server.Tests.Client;

namespace Gatehouse.Server.Tests;

/// <summary>
/// The server as <c>dotnet publish</c> ships it (docs/deployment.md#packaging): the self-contained single file and the
/// framework-dependent folder each start from a folder of their own, serve, run an operator command, open a session
/// and stop on SIGTERM with exit code 0; the systemd unit in deploy/ passes <c>systemd-analyze verify</c>.
/// </summary>
[Trait(Category.Name, Category.Slow)]
public sealed class PublishTests(PublishedServer published) : IClassFixture<PublishedServer>
{
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void The_self_contained_publish_is_one_executable_beside_its_settings_static_files_and_the_SQLite_library()
    {
        var folder = published.SelfContained;
        var files = Directory.GetFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(folder, f)).Order(StringComparer.Ordinal).ToList();
        var listing = string.Join('\n', files);

        var executable = File.ReadAllBytes(Path.Combine(folder, "Gatehouse.Server"));
        Assert.Equal("\u007fELF"u8.ToArray(), executable[..4]);
        Assert.True(File.GetUnixFileMode(Path.Combine(folder, "Gatehouse.Server")).HasFlag(UnixFileMode.UserExecute));
        Assert.Contains("appsettings.json", files);
        Assert.Contains(Path.Combine("wwwroot", "console", "assets", "console.css"), files);
        Assert.Contains("libe_sqlite3.so", files);
        // The runtime, the framework and every assembly are inside the executable; no documentation file beside it.
        Assert.True(!files.Any(f => f.EndsWith(".dll", StringComparison.Ordinal) || f.EndsWith(".xml", StringComparison.Ordinal)), listing);
    }

    [Fact]
    public Task The_self_contained_single_file_starts_from_another_folder_serves_runs_an_operator_command_and_stops_on_SIGTERM() =>
        SmokeAsync(Path.Combine(published.SelfContained, "Gatehouse.Server"));

    [Fact]
    public Task The_framework_dependent_publish_runs_with_dotnet_from_another_folder_and_stops_on_SIGTERM() =>
        SmokeAsync(Path.Combine(published.FrameworkDependent, "Gatehouse.Server.dll"));

    [SkippableFact]
    public async Task The_systemd_unit_passes_systemd_analyze_verify_with_its_ExecStart_on_the_published_executable()
    {
        Skip.If(!File.Exists("/usr/bin/systemd-analyze"), "systemd-analyze is not installed (Debian: the systemd package).");
        var unit = await File.ReadAllTextAsync(Repository.PathOf("deploy", "systemd", "gatehouse.service"));
        const string installed = "ExecStart=/opt/gatehouse/Gatehouse.Server\n";
        Assert.Contains(installed, unit, StringComparison.Ordinal);
        // verify checks that ExecStart's program exists and is executable: the one just published stands in.
        var work = Directory.CreateTempSubdirectory("gatehouse-unit").FullName;
        try
        {
            var copy = Path.Combine(work, "gatehouse.service");
            await File.WriteAllTextAsync(copy, unit.Replace(installed,
                $"ExecStart={Path.Combine(published.SelfContained, "Gatehouse.Server")}\n", StringComparison.Ordinal));
            var (exit, output) = await Processes.RunAsync("/usr/bin/systemd-analyze", ["verify", copy], work);
            // An unknown or misspelt setting is only a warning to systemd, "ignoring": any output fails the test.
            Assert.True(exit == 0 && output.Trim().Length == 0, $"systemd-analyze verify ({exit}):\n{output}");
        }
        finally
        {
            GatehouseServer.DeleteDataDirectory(work);
        }
    }

    /// <summary>
    /// Started from an empty working folder with the data in another, as an operator would: it must find its
    /// appsettings.json and wwwroot beside the binary, and write nothing where it was started.
    /// </summary>
    private static async Task SmokeAsync(string program)
    {
        var work = Directory.CreateTempSubdirectory("gatehouse-published").FullName;
        try
        {
            var started = Directory.CreateDirectory(Path.Combine(work, "started-here")).FullName;
            var data = Path.Combine(work, "data");
            await using var server = await ServerProcess.StartAsync(new ServerStart(program, started,
                new Dictionary<string, string> { ["Logging__LogLevel__Gatehouse.Server.Operations"] = "Information" },
                Arguments: ["--urls", "http://127.0.0.1:0", $"--Gatehouse:DataDirectory={data}"]));

            using (var css = await server.Http.GetAsync(new Uri("/console/assets/console.css", UriKind.Relative)))
                Assert.True(css.IsSuccessStatusCode, $"wwwroot is not served: {(int)css.StatusCode}\n{server.Output}");

            var (exit, output, error) = await ExecutableRun.RunAsync(program, ["network", "create", "smoke"],
                new Dictionary<string, string> { ["Gatehouse__DataDirectory"] = data }, TimeSpan.FromMinutes(1));
            Assert.True(exit == 0, $"network create exited {exit}:\n{output}\n{error}");
            var apiKey = output.Split('\n').Single(l => l.StartsWith("API key: ", StringComparison.Ordinal))["API key: ".Length..].Trim();

            using var login = new HttpRequestMessage(HttpMethod.Post, "/api/v5/sessions")
            {
                Content = JsonContent.Create(new { userId = "smoke-user", deviceId = "smoke-device" }),
            };
            login.Headers.Add("x-api-key", apiKey);
            using var session = await server.Http.SendAsync(login);
            Assert.True(session.StatusCode == HttpStatusCode.OK, $"{(int)session.StatusCode}: {await session.Content.ReadAsStringAsync()}\n{server.Output}");
            var body = await session.Content.ReadFromJsonAsync<JsonNode>();
            Assert.False(string.IsNullOrEmpty(body?["accessToken"]?.GetValue<string>()), body?.ToJsonString());

            Assert.Equal(0, await server.StopAsync(TimeSpan.FromSeconds(30)));
            Assert.True(File.Exists(Path.Combine(data, "gatehouse.db")), server.Output);
            // The GC setting the memory figures in docs/operations.md were measured with travels with the build.
            Assert.Contains("Garbage collector: workstation", server.Output, StringComparison.Ordinal);
            Assert.Empty(Directory.GetFileSystemEntries(started));
        }
        finally
        {
            GatehouseServer.DeleteDataDirectory(work);
        }
    }
}

/// <summary>
/// The server published once for <see cref="PublishTests"/>, in this test run's configuration, into temporary folders:
/// the self-contained single file for this machine's architecture, compiled apart from the suite's build (its own
/// artifacts folder; the analyzers the build already ran are off), and the framework-dependent folder from the
/// build's own binaries (<c>--no-build</c>).
/// </summary>
public sealed class PublishedServer : IAsyncLifetime
{
    private readonly string _work = Directory.CreateTempSubdirectory("gatehouse-publish").FullName;

    public string SelfContained => Path.Combine(_work, "self-contained");

    public string FrameworkDependent => Path.Combine(_work, "framework");

    public async Task InitializeAsync()
    {
        // bin/<configuration>/net10.0/ of the test project: publish what this configuration built.
        var configuration = Directory.GetParent(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory))!.Name;
        var project = Repository.PathOf("src", "Gatehouse.Server", "Gatehouse.Server.csproj");
        var runtime = "linux-" + RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant();
        var results = await Task.WhenAll(
            Processes.RunAsync("dotnet",
            [
                "publish", project, "-c", configuration, "-r", runtime, "--self-contained", "-p:PublishSingleFile=true",
                "-o", SelfContained, "--artifacts-path", Path.Combine(_work, "artifacts"), "-nologo",
                "-p:RunAnalyzers=false", "-p:GenerateDocumentationFile=false",
            ], Repository.Root),
            Processes.RunAsync("dotnet", ["publish", project, "-c", configuration, "--no-build", "-o", FrameworkDependent, "-nologo"], Repository.Root));
        foreach (var (exit, output) in results)
        {
            Assert.True(exit == 0, $"dotnet publish failed:\n{output}");
            Assert.DoesNotContain(": warning ", output, StringComparison.Ordinal);
        }
    }

    public Task DisposeAsync()
    {
        GatehouseServer.DeleteDataDirectory(_work);
        return Task.CompletedTask;
    }
}
