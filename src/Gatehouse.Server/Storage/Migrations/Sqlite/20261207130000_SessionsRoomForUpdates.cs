using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.Sqlite
{
    /// <summary>
    /// PostgreSQL's migration of this name leaves room on the sessions' and refresh tokens' pages for updates; SQLite has
    /// no such setting, so this one changes nothing and exists so that both providers keep the same migrations.
    /// </summary>
    public partial class SessionsRoomForUpdates : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
        }
    }
}
