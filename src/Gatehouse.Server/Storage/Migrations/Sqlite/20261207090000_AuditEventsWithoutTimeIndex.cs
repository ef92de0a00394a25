using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.Sqlite
{
    /// <summary>
    /// The audit table loses its index on the time alone, a third of the index entries that writing an event (as every
    /// mint and login does) costs: the console's audit page reads through the index on (network, time) and retention
    /// walks the key (Console/Audit.cshtml.cs, Retention/RetentionService.cs). Dropping builds nothing, so the table's
    /// lock is held only for the moment the index goes.
    /// </summary>
    public partial class AuditEventsWithoutTimeIndex : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
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
        }
    }
}
