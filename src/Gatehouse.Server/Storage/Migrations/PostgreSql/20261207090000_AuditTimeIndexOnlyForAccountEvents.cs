using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.PostgreSql
{
    /// <summary>
    /// The audit table's index on the time alone keeps only the events that belong to no network (the console
    /// accounts' own, refusals of keys no network has), so writing a network's event, which every mint and login does,
    /// updates two indexes instead of three. The console's audit page reads the network's events through the index on
    /// (network, time) and the others through this one; retention finds old events by their key (Console/Audit.cshtml.cs,
    /// Retention/RetentionService.cs).
    /// <para>
    /// Both built and dropped <c>CONCURRENTLY</c>, outside the migration's transaction: the table may hold a year of
    /// every mint and login, and a plain build would hold every node's audit writes for as long as it reads them. A
    /// build cut short leaves an invalid index, which the migration's next run drops before building again.
    /// </para>
    /// </summary>
    public partial class AuditTimeIndexOnlyForAccountEvents : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""DROP INDEX CONCURRENTLY IF EXISTS "IX_AuditEvents_OccurredAt_WithoutNetwork";""", suppressTransaction: true);
            migrationBuilder.Sql("""CREATE INDEX CONCURRENTLY "IX_AuditEvents_OccurredAt_WithoutNetwork" ON "AuditEvents" ("OccurredAt") WHERE "NetworkId" IS NULL;""",
                suppressTransaction: true);
            migrationBuilder.Sql("""DROP INDEX CONCURRENTLY IF EXISTS "IX_AuditEvents_OccurredAt";""", suppressTransaction: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""DROP INDEX CONCURRENTLY IF EXISTS "IX_AuditEvents_OccurredAt";""", suppressTransaction: true);
            migrationBuilder.Sql("""CREATE INDEX CONCURRENTLY "IX_AuditEvents_OccurredAt" ON "AuditEvents" ("OccurredAt");""", suppressTransaction: true);
            migrationBuilder.Sql("""DROP INDEX CONCURRENTLY IF EXISTS "IX_AuditEvents_OccurredAt_WithoutNetwork";""", suppressTransaction: true);
        }
    }
}
