using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Server.Storage.Migrations.PostgreSql
{
    /// <summary>
    /// A statement that updates or deletes sessions notifies <c>gatehouse_writes</c> with the ids of the rows it
    /// changed (<c>Sessions:&lt;id&gt;,&lt;id&gt;</c>), so a refresh or a logout makes only that session stale on the
    /// other nodes instead of every session they keep (Storage/WriteNotifications.cs, RowKeys). Still one notification
    /// per statement, read from the statement's transition table; a statement that changed more than
    /// <see cref="MostNamed"/> rows names the table alone (a notification holds at most 8,000 bytes), and one that
    /// changed none sends nothing. Truncation keeps the table-wide notification. A node of an earlier build counts a
    /// payload it cannot read as a write to every table, so nodes of both builds can share the database.
    /// </summary>
    public partial class KeyedSessionNotifications : Migration
    {
        /// <summary>200 ids of 36 characters with their commas: 7,399 bytes, under PostgreSQL's 8,000.</summary>
        private const int MostNamed = 200;

        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql($"""
                CREATE FUNCTION gatehouse_notify_rows_by_id() RETURNS trigger LANGUAGE plpgsql AS $$
                DECLARE
                    changed integer;
                    ids text;
                BEGIN
                    SELECT count(*), string_agg(id, ',') INTO changed, ids
                        FROM (SELECT "Id"::text AS id FROM changed_rows LIMIT {MostNamed + 1}) AS named;
                    IF changed > {MostNamed} THEN
                        PERFORM pg_notify('gatehouse_writes', TG_TABLE_NAME);
                    ELSIF changed > 0 THEN
                        PERFORM pg_notify('gatehouse_writes', TG_TABLE_NAME || ':' || ids);
                    END IF;
                    RETURN NULL;
                END
                $$;
                """);
            migrationBuilder.Sql("""
                DROP TRIGGER gatehouse_notify_write ON "Sessions";
                CREATE TRIGGER gatehouse_notify_update AFTER UPDATE ON "Sessions" REFERENCING OLD TABLE AS changed_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_notify_rows_by_id();
                CREATE TRIGGER gatehouse_notify_delete AFTER DELETE ON "Sessions" REFERENCING OLD TABLE AS changed_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_notify_rows_by_id();
                CREATE TRIGGER gatehouse_notify_truncate AFTER TRUNCATE ON "Sessions"
                    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_notify_write();
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                DROP TRIGGER gatehouse_notify_update ON "Sessions";
                DROP TRIGGER gatehouse_notify_delete ON "Sessions";
                DROP TRIGGER gatehouse_notify_truncate ON "Sessions";
                CREATE TRIGGER gatehouse_notify_write AFTER UPDATE OR DELETE OR TRUNCATE ON "Sessions"
                    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_notify_write();
                DROP FUNCTION gatehouse_notify_rows_by_id();
                """);
        }
    }
}
