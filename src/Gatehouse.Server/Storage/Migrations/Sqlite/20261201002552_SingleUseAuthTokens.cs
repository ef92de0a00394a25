using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class SingleUseAuthTokens : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "SingleUseAuthTokens",
                table: "Networks",
                type: "INTEGER",
                nullable: false,
                defaultValue: false);

            migrationBuilder.CreateTable(
                name: "SpentAuthTokens",
                columns: table => new
                {
                    Jti = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    NetworkId = table.Column<string>(type: "TEXT", maxLength: 24, nullable: false),
                    ExpiresAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_SpentAuthTokens", x => x.Jti);
                });

            migrationBuilder.CreateIndex(
                name: "IX_SpentAuthTokens_ExpiresAt",
                table: "SpentAuthTokens",
                column: "ExpiresAt");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "SpentAuthTokens");

            migrationBuilder.DropColumn(
                name: "SingleUseAuthTokens",
                table: "Networks");
        }
    }
}
