using Gatehouse.Server.Configuration;
using Gatehouse.Server.Storage;

namespace Gatehouse.Server.Operations;

/// <summary>
/// A SQLite deployment's backup: a consistent copy of the database taken while the server runs (VACUUM INTO reads
/// one snapshot) with what it cannot work without: the Data Protection key ring that encrypts its signing keys and
/// certificate authority (data/keys), and the HTTPS certificate clients pin (data/tls). Everything in it is secret:
/// the folder is 0700 and its files 0600. PostgreSQL keeps the key ring in the database: there, pg_dump plus
/// data/tls is the backup (docs/deployment.md).
/// </summary>
internal static class Backups
{
    private static readonly string[] Folders = ["keys", "tls"];
    private static readonly string[] DatabaseFiles = ["gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm"];

    public static async Task<string?> BackUpAsync(GatehouseDb db, GatehouseOptions options, string target, CancellationToken ct = default)
    {
        target = Path.GetFullPath(target);
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
            return $"{target} is not empty; back up into a new folder.";
        PrivateFiles.Folder(target);
        await PrivateFiles.CopySqliteAsync(db, Path.Combine(target, "gatehouse.db"), ct);
        var data = Path.GetFullPath(options.DataDirectory);
        foreach (var folder in Folders)
            CopyFolder(Path.Combine(data, folder), Path.Combine(target, folder));
        return null;
    }

    /// <summary>
    /// Puts a backup in place of the data folder's database and keys. Run with the server stopped. Whatever was
    /// there is moved aside to data/backups/replaced-&lt;time&gt;, never deleted.
    /// </summary>
    public static string? Restore(GatehouseOptions options, string source, TimeProvider clock, out string? movedAside)
    {
        movedAside = null;
        source = Path.GetFullPath(source);
        if (!File.Exists(Path.Combine(source, "gatehouse.db")))
            return $"{source} holds no gatehouse.db: it is not a Gatehouse backup.";
        var data = Path.GetFullPath(options.DataDirectory);
        PrivateFiles.Folder(data);
        var current = DatabaseFiles.Select(f => Path.Combine(data, f))
            .Concat(Folders.Select(f => Path.Combine(data, f)))
            .Where(p => File.Exists(p) || Directory.Exists(p)).ToList();
        if (current.Count > 0)
        {
            movedAside = Path.Combine(data, "backups", $"replaced-{clock.GetUtcNow():yyyyMMdd'T'HHmmss'Z'}");
            PrivateFiles.Folder(Path.Combine(data, "backups"));
            PrivateFiles.Folder(movedAside);
            foreach (var path in current)
            {
                var destination = Path.Combine(movedAside, Path.GetFileName(path));
                if (Directory.Exists(path))
                    Directory.Move(path, destination);
                else
                    File.Move(path, destination);
            }
        }
        File.Copy(Path.Combine(source, "gatehouse.db"), Path.Combine(data, "gatehouse.db"));
        PrivateFiles.OwnerOnly(Path.Combine(data, "gatehouse.db"));
        foreach (var folder in Folders)
            CopyFolder(Path.Combine(source, folder), Path.Combine(data, folder));
        return null;
    }

    private static void CopyFolder(string from, string to)
    {
        if (!Directory.Exists(from))
            return;
        PrivateFiles.Folder(to);
        foreach (var file in Directory.EnumerateFiles(from))
        {
            var copy = Path.Combine(to, Path.GetFileName(file));
            File.Copy(file, copy);
            PrivateFiles.OwnerOnly(copy);
        }
    }
}
