using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.Sqlite
{
    /// <summary>
    /// An index of the device bindings by user, which retention reads to delete idle visitors' bindings (each batch read
    /// the whole table without it, holding the one write lock; docs/benchmarks.md, change 91).
    /// </summary>
    public partial class DeviceBindingsByUser : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "IX_DeviceBindings_UserRef",
                table: "DeviceBindings",
                column: "UserRef");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_DeviceBindings_UserRef",
                table: "DeviceBindings");
        }
    }
}
