using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class UnrevokedSessionsByDevice : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Sessions_NetworkId_DeviceId",
                table: "Sessions");

            migrationBuilder.CreateIndex(
                name: "IX_Sessions_NetworkId_DeviceId",
                table: "Sessions",
                columns: new[] { "NetworkId", "DeviceId" },
                filter: "\"RevokedAt\" IS NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Sessions_NetworkId_DeviceId",
                table: "Sessions");

            migrationBuilder.CreateIndex(
                name: "IX_Sessions_NetworkId_DeviceId",
                table: "Sessions",
                columns: new[] { "NetworkId", "DeviceId" });
        }
    }
}
