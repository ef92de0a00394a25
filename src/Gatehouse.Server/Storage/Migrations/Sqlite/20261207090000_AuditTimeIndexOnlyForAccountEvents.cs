using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.Sqlite
{
    /// <summary>
    /// The audit table's index on the time alone keeps only the events that belong to no network (the console
    /// accounts' own, refusals of keys no network has), so writing a network's event, which every mint and login does,
    /// updates two indexes instead of three. The console's audit page reads the network's events through the index on
    /// (network, time) and the others through this one; retention finds old events by their key (Console/Audit.cshtml.cs,
    /// Retention/RetentionService.cs).
    /// </summary>
    public partial class AuditTimeIndexOnlyForAccountEvents : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "IX_AuditEvents_OccurredAt_WithoutNetwork",
                table: "AuditEvents",
                column: "OccurredAt",
                filter: "\"NetworkId\" IS NULL");

            migrationBuilder.DropIndex(
                name: "IX_AuditEvents_OccurredAt",
                table: "AuditEvents");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "IX_AuditEvents_OccurredAt",
                table: "AuditEvents",
                column: "OccurredAt");

            migrationBuilder.DropIndex(
                name: "IX_AuditEvents_OccurredAt_WithoutNetwork",
                table: "AuditEvents");
        }
    }
}
