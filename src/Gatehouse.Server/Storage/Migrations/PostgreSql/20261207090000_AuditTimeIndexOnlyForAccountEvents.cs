using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.PostgreSql
{
    /// <summary>
    /// The audit table's index on the time alone holds only the console accounts' own events (they have no network),
    /// so writing a network's event, which every mint and login does, updates two indexes instead of three. The
    /// console's audit page reads the network's events through the index on (network, time) and the accounts' through
    /// this one, and retention finds old events by their key (Console/Audit.cshtml.cs, Retention/RetentionService.cs).
    /// </summary>
    public partial class AuditTimeIndexOnlyForAccountEvents : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_AuditEvents_OccurredAt",
                table: "AuditEvents");

            migrationBuilder.CreateIndex(
                name: "IX_AuditEvents_OccurredAt",
                table: "AuditEvents",
                column: "OccurredAt",
                filter: "\"NetworkId\" IS NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_AuditEvents_OccurredAt",
                table: "AuditEvents");

            migrationBuilder.CreateIndex(
                name: "IX_AuditEvents_OccurredAt",
                table: "AuditEvents",
                column: "OccurredAt");
        }
    }
}
