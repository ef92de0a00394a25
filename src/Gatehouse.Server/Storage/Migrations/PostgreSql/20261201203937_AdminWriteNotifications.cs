using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.PostgreSql
{
    /// <summary>
    /// Nodes now keep the admin tokens they have checked (AdminTokens/KnownAdminTokens.cs): the tables those are read
    /// from notify <c>gatehouse_writes</c> as the WriteNotifications migration's tables do, with its function.
    /// </summary>
    public partial class AdminWriteNotifications : Migration
    {
        private static readonly string[] Tables = ["AdminTokens", "Admins", "AdminMemberships"];

        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            foreach (var table in Tables)
            {
                migrationBuilder.Sql($"""
                    CREATE TRIGGER gatehouse_notify_write AFTER UPDATE OR DELETE OR TRUNCATE ON "{table}"
                        FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_notify_write();
                    """);
            }
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            foreach (var table in Tables)
                migrationBuilder.Sql($"""DROP TRIGGER gatehouse_notify_write ON "{table}";""");
        }
    }
}
