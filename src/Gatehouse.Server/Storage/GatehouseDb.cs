using Gatehouse.Server.Admins;
using Gatehouse.Server.AdminTokens;
using Gatehouse.Server.AuthTokens;
using Gatehouse.Server.Audit;
using Gatehouse.Server.Certificates;
using Gatehouse.Server.Networks;
using Gatehouse.Server.ServerKeys;
using Gatehouse.Server.Sessions;
using Gatehouse.Server.Tokens;
using Gatehouse.Server.Users;
using Gatehouse.Server.Visitors;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Gatehouse.Server.Storage;

/// <summary>
/// The one model of the database. Each provider has its own subclass only so that each keeps its own
/// migrations (<see cref="SqliteGatehouseDb"/>, <see cref="PostgresGatehouseDb"/>); features use this type.
/// </summary>
internal abstract class GatehouseDb(DbContextOptions options) : DbContext(options), IDataProtectionKeyContext
{
    /// <summary>The Data Protection key ring, shared by every node (used with PostgreSQL; SQLite keeps it in a folder).</summary>
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    public DbSet<Network> Networks => Set<Network>();
    public DbSet<User> Users => Set<User>();
    public DbSet<Session> Sessions => Set<Session>();
    public DbSet<RefreshToken> RefreshTokens => Set<RefreshToken>();
    public DbSet<DeviceBinding> DeviceBindings => Set<DeviceBinding>();
    public DbSet<ServerKey> ServerKeys => Set<ServerKey>();
    public DbSet<VisitorSecret> VisitorSecrets => Set<VisitorSecret>();
    public DbSet<Console.OneTimeReveal> OneTimeReveals => Set<Console.OneTimeReveal>();
    public DbSet<SigningKey> SigningKeys => Set<SigningKey>();
    public DbSet<Admin> Admins => Set<Admin>();
    public DbSet<AdminMembership> AdminMemberships => Set<AdminMembership>();
    public DbSet<SignInLock> SignInLocks => Set<SignInLock>();
    public DbSet<RecoveryCode> RecoveryCodes => Set<RecoveryCode>();
    public DbSet<PortalSettings> PortalSettings => Set<PortalSettings>();
    public DbSet<AdminRequest> AdminRequests => Set<AdminRequest>();
    public DbSet<SpentAuthToken> SpentAuthTokens => Set<SpentAuthToken>();
    public DbSet<AdminToken> AdminTokens => Set<AdminToken>();
    public DbSet<ClientCertificate> ClientCertificates => Set<ClientCertificate>();
    public DbSet<CertificateAuthorityKey> CertificateAuthorityKeys => Set<CertificateAuthorityKey>();
    public DbSet<AuditEvent> AuditEvents => Set<AuditEvent>();
    public DbSet<StorageCompatibility> StorageCompatibility => Set<StorageCompatibility>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Network>(e =>
        {
            e.Property(x => x.Id).HasMaxLength(24);
            e.Property(x => x.Name).HasMaxLength(100);
            e.Property(x => x.Region).HasMaxLength(8);
            e.Property(x => x.ApiKey).HasMaxLength(80);
            e.HasIndex(x => x.ApiKey).IsUnique();
            e.ComplexProperty(x => x.Chat);
        });
        modelBuilder.Entity<User>(e =>
        {
            e.Property(x => x.Id).HasMaxLength(24);
            e.Property(x => x.UserId).HasMaxLength(1024);
            e.Property(x => x.DisplayName).HasMaxLength(1024);
            e.HasIndex(x => new { x.NetworkId, x.UserId }).IsUnique();
            e.HasOne<Network>().WithMany().HasForeignKey(x => x.NetworkId).OnDelete(DeleteBehavior.Restrict);
        });
        modelBuilder.Entity<Session>(e =>
        {
            e.Property(x => x.DeviceId).HasMaxLength(1024);
            e.Property(x => x.OpenedFrom).HasMaxLength(64);
            e.Property(x => x.LastRefreshedFrom).HasMaxLength(64);
            // Only a device's unrevoked sessions are ever looked up by device (each login), and a device keeps every
            // session it ever opened until retention prunes it: an index of them all made each login on a long-used
            // device read its whole history (docs/benchmarks.md, change 27).
            e.HasIndex(x => new { x.NetworkId, x.DeviceId }).HasFilter("\"RevokedAt\" IS NULL");
            e.HasIndex(x => x.UserRef);
            e.HasOne<User>().WithMany().HasForeignKey(x => x.UserRef).OnDelete(DeleteBehavior.Restrict);
            RoomOnEachPageForUpdates(e);
        });
        modelBuilder.Entity<RefreshToken>(e =>
        {
            e.HasKey(x => x.Digest);
            e.Property(x => x.Digest).HasMaxLength(64);
            e.HasIndex(x => x.SessionId);
            e.HasOne<Session>().WithMany().HasForeignKey(x => x.SessionId).OnDelete(DeleteBehavior.Cascade);
            RoomOnEachPageForUpdates(e);
        });
        modelBuilder.Entity<DeviceBinding>(e =>
        {
            e.HasKey(x => new { x.NetworkId, x.DeviceId });
            e.Property(x => x.DeviceId).HasMaxLength(1024);
            e.Property(x => x.UserRef).HasMaxLength(24);
            // Only retention looks bindings up by user (the idle visitors it deletes): without this index each batch of
            // them read the whole table (twice on PostgreSQL, to lock and to delete; on SQLite a third of a second per
            // million devices, with the one write lock held; docs/benchmarks.md, change 91).
            e.HasIndex(x => x.UserRef);
        });
        modelBuilder.Entity<ServerKey>(e =>
        {
            e.Property(x => x.Digest).HasMaxLength(64);
            e.HasIndex(x => x.Digest).IsUnique();
            e.HasIndex(x => x.NetworkId);
            e.HasOne<Network>().WithMany().HasForeignKey(x => x.NetworkId).OnDelete(DeleteBehavior.Restrict);
        });
        modelBuilder.Entity<VisitorSecret>(e =>
        {
            e.Property(x => x.CreatedBy).HasMaxLength(300);
            e.HasIndex(x => x.NetworkId);
            e.HasOne<Network>().WithMany().HasForeignKey(x => x.NetworkId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<Console.OneTimeReveal>(e =>
        {
            e.Property(x => x.Kind).HasMaxLength(32);
            e.HasIndex(x => x.ExpiresAt);
        });
        modelBuilder.Entity<SigningKey>(e => e.Property(x => x.Id).HasMaxLength(64));
        modelBuilder.Entity<Admin>(e =>
        {
            e.Property(x => x.Email).HasMaxLength(254);
            e.HasIndex(x => x.Email).IsUnique();
            e.Property(x => x.SecurityStamp).HasMaxLength(64);
            e.Property(x => x.TwoFactorSecret).HasMaxLength(1024);
        });
        modelBuilder.Entity<RecoveryCode>(e =>
        {
            e.Property(x => x.Digest).HasMaxLength(64);
            e.HasIndex(x => x.AdminId);
            e.HasOne<Admin>().WithMany().HasForeignKey(x => x.AdminId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<PortalSettings>(e => e.Property(x => x.Id).ValueGeneratedNever());
        modelBuilder.Entity<SpentAuthToken>(e =>
        {
            e.HasKey(x => x.Jti);
            e.Property(x => x.Jti).HasMaxLength(64);
            e.Property(x => x.NetworkId).HasMaxLength(24);
            e.HasIndex(x => x.ExpiresAt);
        });
        modelBuilder.Entity<AdminRequest>(e =>
        {
            e.Property(x => x.Email).HasMaxLength(254);
            e.Property(x => x.RequestedBy).HasMaxLength(300);
            e.Property(x => x.Role).HasConversion<string>().HasMaxLength(16);
            e.HasIndex(x => new { x.NetworkId, x.Email }).IsUnique();
            e.HasOne<Network>().WithMany().HasForeignKey(x => x.NetworkId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<SignInLock>(e =>
        {
            e.HasKey(x => x.EmailDigest);
            e.Property(x => x.EmailDigest).HasMaxLength(64);
        });
        modelBuilder.Entity<AdminMembership>(e =>
        {
            e.HasKey(x => new { x.AdminId, x.NetworkId });
            e.Property(x => x.Role).HasConversion<string>().HasMaxLength(16);
            e.HasOne<Admin>().WithMany().HasForeignKey(x => x.AdminId).OnDelete(DeleteBehavior.Cascade);
            e.HasOne<Network>().WithMany().HasForeignKey(x => x.NetworkId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<AdminToken>(e =>
        {
            e.Property(x => x.Digest).HasMaxLength(64);
            e.HasIndex(x => x.Digest).IsUnique();
            e.HasIndex(x => new { x.NetworkId, x.AdminId });
            e.HasOne<Admin>().WithMany().HasForeignKey(x => x.AdminId).OnDelete(DeleteBehavior.Cascade);
            e.HasOne<Network>().WithMany().HasForeignKey(x => x.NetworkId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<ClientCertificate>(e =>
        {
            e.Property(x => x.Name).HasMaxLength(30);
            e.Property(x => x.Fingerprint).HasMaxLength(64);
            e.HasIndex(x => x.Fingerprint).IsUnique();
            e.HasIndex(x => x.NetworkId);
            e.HasOne<Network>().WithMany().HasForeignKey(x => x.NetworkId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<CertificateAuthorityKey>(e => e.Property(x => x.Id).ValueGeneratedNever());
        modelBuilder.Entity<AuditEvent>(e =>
        {
            // The only index besides the key: one on the time alone cost every mint and login a third index entry for
            // its audit row (docs/benchmarks.md, change 83). The console's audit page reads through this one (events
            // without a network too), retention through the key.
            e.HasIndex(x => new { x.NetworkId, x.OccurredAt });
        });
        modelBuilder.Entity<StorageCompatibility>(e =>
        {
            e.ToTable("StorageCompatibility");
            e.Property(x => x.Id).ValueGeneratedNever();
            e.Property(x => x.UpgradedBy).HasMaxLength(64);
        });
    }

    /// <summary>
    /// On PostgreSQL, 15 % of each page of the sessions and refresh tokens is left free when rows are inserted, so that
    /// a refresh's update of its session and claim of its token, which come long after the insert when the page is
    /// full, can write the new version on the same page without new index entries (a HOT update; docs/benchmarks.md,
    /// change 85). SQLite has no such setting.
    /// </summary>
    private void RoomOnEachPageForUpdates<T>(EntityTypeBuilder<T> entity)
        where T : class
    {
        if (Database.IsNpgsql())
            entity.HasStorageParameter("fillfactor", 85);
    }

    /// <summary>
    /// Takes the network row's lock for the rest of the transaction (a no-op update), so that changes bounded per
    /// network (two valid server keys, two active certificates) take turns on every provider.
    /// </summary>
    public Task LockNetworkAsync(string networkId, CancellationToken ct) =>
        Networks.Where(n => n.Id == networkId).ExecuteUpdateAsync(s => s.SetProperty(n => n.Name, n => n.Name), ct);

    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        // SQLite has no timestamp type and EF cannot compare DateTimeOffset stored as text; as a sortable
        // integer it can. PostgreSQL keeps its native timestamptz.
        if (Database.IsSqlite())
        {
            configurationBuilder.Properties<DateTimeOffset>().HaveConversion<DateTimeOffsetToBinaryConverter>();
            configurationBuilder.Properties<DateTimeOffset?>().HaveConversion<DateTimeOffsetToBinaryConverter>();
        }
    }
}

internal sealed class SqliteGatehouseDb(DbContextOptions<SqliteGatehouseDb> options) : GatehouseDb(options);

internal sealed class PostgresGatehouseDb(DbContextOptions<PostgresGatehouseDb> options) : GatehouseDb(options);
