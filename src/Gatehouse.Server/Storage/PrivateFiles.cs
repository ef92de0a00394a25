using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Storage;

/// <summary>
/// Files and folders that hold secrets (the database and its copies, key rings, keys, first-start secrets): the
/// server's own account alone may read them. Folders 0700, files 0600; on Windows the defaults stand.
/// </summary>
internal static class PrivateFiles
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Creates the folder, or narrows one that exists, to its owner alone.</summary>
    public static DirectoryInfo Folder(string path)
    {
        var directory = Directory.CreateDirectory(path);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(directory.FullName, OwnerReadWrite | UnixFileMode.UserExecute);
        return directory;
    }

    /// <summary>Narrows an existing file to its owner alone (files made by older releases were 0644).</summary>
    public static void OwnerOnly(string path)
    {
        if (!OperatingSystem.IsWindows() && File.Exists(path) && File.GetUnixFileMode(path) != OwnerReadWrite)
            File.SetUnixFileMode(path, OwnerReadWrite);
    }

    /// <summary>A new or replaced file, created 0600 so its content is never readable by others, even for a moment.</summary>
    public static FileStream Create(string path, FileMode mode = FileMode.Create)
    {
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = OwnerReadWrite;
        var stream = new FileStream(path, options);
        OwnerOnly(path);
        return stream;
    }

    /// <summary>
    /// A consistent copy of a SQLite database while it is in use (VACUUM INTO reads one snapshot), 0600. The copy
    /// holds everything the database does.
    /// </summary>
    public static async Task CopySqliteAsync(GatehouseDb db, string path, CancellationToken ct)
    {
        await db.Database.ExecuteSqlAsync($"VACUUM INTO {path}", ct);
        OwnerOnly(path);
    }
}
