using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.Sqlite
{
    /// <summary>
    /// Nothing on SQLite: one server is its only long-running writer (CommittedWrites). Kept so both providers have the
    /// same migrations by name (MigrationTests).
    /// </summary>
    public partial class KeyedSessionNotifications : Migration
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
