using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.PostgreSql
{
    /// <summary>
    /// An index of the device bindings by user, which retention reads to delete idle visitors' bindings (each batch read
    /// the whole table twice without it, to lock and to delete; docs/benchmarks.md, change 91). Building it holds the
    /// table's writes, so logins that bind a device wait: about a second per million bindings measured (the CHANGELOG
    /// says what that means for a large database). Nodes of an earlier 0.2.0 build serve beside it.
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
