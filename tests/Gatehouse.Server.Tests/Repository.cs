using Microsoft.Playwright;

namespace Gatehouse.Server.Tests;

/// <summary>Where the repository's own files (docs, the web SDK test page) are, seen from the test binaries.</summary>
public static class Repository
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Gatehouse.slnx")))
            directory = directory.Parent;
        return directory?.FullName ?? throw new InvalidOperationException("Gatehouse.slnx not found above the test binaries.");
    }
}

/// <summary>Debian's Chromium under Playwright, with the flags this machine needs (no downloaded browser).</summary>
public static class Chromium
{
    public static Task<IBrowser> LaunchAsync(IPlaywright playwright) => playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
    {
        ExecutablePath = "/usr/bin/chromium",
        Headless = true,
        Args =
        [
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run",
        ],
    });
}
