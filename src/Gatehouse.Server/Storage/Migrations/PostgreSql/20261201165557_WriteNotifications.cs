using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.PostgreSql
{
    /// <summary>
    /// Every statement that updates, deletes or truncates rows of a table a node keeps in memory notifies
    /// <c>gatehouse_writes</c> with the table's name, in its own transaction (Storage/WriteNotifications.cs). Per
    /// statement, not per row: the nodes count writes per table, and PostgreSQL sends one notification per distinct
    /// payload per transaction. Inserts notify nothing: no node keeps a row it did not find.
    /// </summary>
    public partial class WriteNotifications : Migration
    {
        private static readonly string[] Tables = ["Networks", "ServerKeys", "Sessions", "Users", "ClientCertificates"];

        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                CREATE FUNCTION gatehouse_notify_write() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM pg_notify('gatehouse_writes', TG_TABLE_NAME);
                    RETURN NULL;
                END
                $$;
                """);
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
            migrationBuilder.Sql("DROP FUNCTION gatehouse_notify_write();");
        }
    }
}
