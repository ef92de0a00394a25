using System.Reflection;

namespace Gatehouse.Server.Storage;

/// <summary>
/// Which releases may serve this database: one row, written by every node once its migrations are applied.
/// A release whose schema its predecessor cannot serve beside (a column dropped, a secret re-encoded) raises
/// <see cref="OldestServingLevel"/>, and a node of a lower level then refuses to start instead of misreading the data.
/// Release 0.1.0 wrote no row; its level is 1.
/// </summary>
internal sealed class StorageCompatibility
{
    public const int SingletonId = 1;

    /// <summary>This release's storage level.</summary>
    public const int CurrentLevel = 2;

    /// <summary>
    /// The lowest level that can still serve the data this release leaves. 2: the migrations since 0.1.0 only add,
    /// but this release seals the key ring with the key-encryption key, which 0.1.0 cannot open, so the upgrade from
    /// 0.1.0 stops every node first (docs/deployment.md). MigrationTests holds later migrations to "only add" while
    /// a release of a lower level than this one's still serves.
    /// </summary>
    public const int CurrentOldestServingLevel = 2;

    public int Id { get; init; } = SingletonId;

    /// <summary>The highest storage level a node has brought this database to.</summary>
    public int Level { get; set; }

    /// <summary>Nodes of a lower storage level must not serve this database.</summary>
    public int OldestServingLevel { get; set; }

    /// <summary>The release that brought the database to <see cref="Level"/>.</summary>
    public required string UpgradedBy { get; set; }

    public DateTimeOffset UpgradedAt { get; set; }

    /// <summary>This build's release number (Directory.Build.props), without build metadata.</summary>
    public static string ReleaseVersion { get; } =
        typeof(StorageCompatibility).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "unknown";
}

/// <summary>The database was upgraded by a release this node must not serve beside.</summary>
internal sealed class StorageTooNewException(StorageCompatibility stored) : Exception(
    $"Gatehouse {StorageCompatibility.ReleaseVersion} (storage level {StorageCompatibility.CurrentLevel}) must not serve this database: " +
    $"Gatehouse {stored.UpgradedBy} upgraded it on {stored.UpgradedAt:u} to storage level {stored.Level}, which nodes below level " +
    $"{stored.OldestServingLevel} cannot read correctly. Run Gatehouse {stored.UpgradedBy} or newer here, or restore the backup taken " +
    "before that upgrade (docs/deployment.md, \"Rolling back\").");
