namespace Gatehouse.Server.Tests.Client;

/// <summary>
/// The SDK's declared public API (src/Gatehouse.Client/PublicAPI.*.txt) holds: a copy of the project with one
/// public method renamed, and with one declared member taken out of the baseline, does not build.
/// </summary>
[Trait(Category.Name, Category.Slow)]
public sealed class PublicApiTests : IDisposable
{
    private readonly string _copy = Directory.CreateTempSubdirectory("gatehouse-api-").FullName;

    public void Dispose() => Directory.Delete(_copy, recursive: true);

    [Fact]
    public async Task A_change_to_the_public_api_that_the_baseline_does_not_declare_fails_the_build()
    {
        foreach (var file in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", ".editorconfig", "global.json", "LICENSE" })
            File.Copy(Repository.PathOf(file), Path.Combine(_copy, file));
        Directory.CreateDirectory(Path.Combine(_copy, "packaging"));
        File.Copy(Repository.PathOf("packaging", "icon.png"), Path.Combine(_copy, "packaging", "icon.png"));
        var project = Path.Combine(_copy, "src", "Gatehouse.Client");
        foreach (var source in Directory.EnumerateFiles(Repository.PathOf("src", "Gatehouse.Client")))
        {
            Directory.CreateDirectory(project);
            File.Copy(source, Path.Combine(project, Path.GetFileName(source)));
        }

        var client = Path.Combine(project, "GatehouseClient.cs");
        File.WriteAllText(client, File.ReadAllText(client).Replace("public async Task LogoutAsync(", "public async Task SignOutAsync(", StringComparison.Ordinal));
        var baseline = Path.Combine(project, "PublicAPI.Unshipped.txt");
        var lines = File.ReadAllLines(baseline);
        Assert.Contains(lines, line => line.StartsWith("Gatehouse.Client.AdminClient.BanAsync(", StringComparison.Ordinal));
        File.WriteAllLines(baseline, lines.Where(line => !line.StartsWith("Gatehouse.Client.AdminClient.BanAsync(", StringComparison.Ordinal)));

        var (exit, output) = await Processes.RunAsync("dotnet", ["build", project, "-c", "Release", "-nologo", "-v", "quiet"], _copy);

        Assert.NotEqual(0, exit);
        // The rename: the old name is declared but gone, the new one is there undeclared.
        Assert.Matches(@"RS0017: Symbol 'Gatehouse\.Client\.GatehouseClient\.LogoutAsync\(", output);
        Assert.Matches(@"RS0016: Symbol 'Gatehouse\.Client\.GatehouseClient\.SignOutAsync\(", output);
        Assert.Matches(@"RS0016: Symbol 'Gatehouse\.Client\.AdminClient\.BanAsync\(", output);
    }
}
