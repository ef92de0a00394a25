using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.PostgreSql
{
    /// <summary>
    /// Inserts into the sessions and refresh tokens leave 15 % of each page free, so that a refresh's update of a row long
    /// after its insert can stay on its page without new index entries (GatehouseDb.RoomOnEachPageForUpdates). Changes a
    /// setting only: pages already full stay as they are, and the lock it takes does not block reads or writes.
    /// </summary>
    public partial class SessionsRoomForUpdates : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AlterTable(
                name: "Sessions")
                .Annotation("Npgsql:StorageParameter:fillfactor", 85);

            migrationBuilder.AlterTable(
                name: "RefreshTokens")
                .Annotation("Npgsql:StorageParameter:fillfactor", 85);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AlterTable(
                name: "Sessions")
                .OldAnnotation("Npgsql:StorageParameter:fillfactor", 85);

            migrationBuilder.AlterTable(
                name: "RefreshTokens")
                .OldAnnotation("Npgsql:StorageParameter:fillfactor", 85);
        }
    }
}
