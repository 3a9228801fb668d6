"""PostgreSQL: the service search gets a table of its own, as SQLite's has had since 0002, and
the window table one index fewer (two on PostgreSQL).

The three trigram indexes of 0002 were on the service table itself, and a poll that moves a
service's counters rewrites its row: an indexed column changed, so no HOT update, and every
index takes an entry for the new row version, the trigram indexes about 90 of them. That was 3
of the 7 s it took PostgreSQL to rewrite 68,000 rows. Here the searched text lives in
dashboard_service_search, one row per service kept by triggers, and only a change of the text
itself writes to its trigram index. The table's search reads it (queries.search); the admin's
search, over the service rows, no longer has an index of its own.

window_failing (model ServiceWindow) orders rank_rate DESC NULLS FIRST on PostgreSQL, or read
backwards ASC with the other columns descending: no sort asks for either, "failing now" reads the
DESC NULLS LAST twin 0009 made. The twin takes the name and the other goes, so each of the window
rows a poll writes goes into one index fewer.
"""

import django.db.models.deletion
from django.db import migrations, models

SEARCH = "dashboard_service_search"
# The searched columns as Django's icontains compares them on PostgreSQL, UPPER(column::text),
# one per line: a q without a line break matches the text exactly when it matches one of them.
# The poller fills the table with it too (ingest.sql), for the services it inserts in bulk.
TEXT = f"""CREATE FUNCTION {SEARCH}_text(service_name text, service_id text, description text)
    RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT upper(service_name) || E'\\n' || upper(service_id) || E'\\n' || upper(description)
    $$"""
COLUMNS = "{row}.service_name, {row}.service_id, {row}.description"
# Set (SET LOCAL) by the poller while it inserts a snapshot's new services: it indexes them in
# one INSERT … SELECT after the rows, instead of 95,000 calls of the trigger (0.1 ms apiece).
IN_BULK = "dashboard.search_in_bulk"
EVENTS = ("insert", "update", "delete", "truncate")

FORWARDS = [
    f"CREATE TABLE {SEARCH} (id bigint PRIMARY KEY, text text NOT NULL)",  # id: the service's
    TEXT,
    f"INSERT INTO {SEARCH} (id, text) "
    f"SELECT id, {SEARCH}_text({COLUMNS.format(row='s')}) FROM dashboard_service s",
    f"CREATE INDEX {SEARCH}_text ON {SEARCH} USING gin (text gin_trgm_ops)",
    f"""CREATE FUNCTION {SEARCH}_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO {SEARCH} (id, text) VALUES (new.id, {SEARCH}_text({COLUMNS.format(row="new")}))
        ON CONFLICT (id) DO UPDATE SET text = excluded.text;
        RETURN NULL;
    END $$""",
    f"""CREATE TRIGGER {SEARCH}_insert AFTER INSERT ON dashboard_service FOR EACH ROW
        WHEN (current_setting('{IN_BULK}', true) IS DISTINCT FROM 'on')
        EXECUTE FUNCTION {SEARCH}_insert()""",
    # Updates only for the rows whose text changed: the WHEN is evaluated without calling the
    # function, so a poll that moves counters costs nothing here.
    f"""CREATE FUNCTION {SEARCH}_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE {SEARCH} SET id = new.id, text = {SEARCH}_text({COLUMNS.format(row="new")})
        WHERE id = old.id;
        RETURN NULL;
    END $$""",
    f"""CREATE TRIGGER {SEARCH}_update
        AFTER UPDATE OF id, service_name, service_id, description ON dashboard_service
        FOR EACH ROW WHEN (
            old.id IS DISTINCT FROM new.id
            OR old.service_name IS DISTINCT FROM new.service_name
            OR old.service_id IS DISTINCT FROM new.service_id
            OR old.description IS DISTINCT FROM new.description
        ) EXECUTE FUNCTION {SEARCH}_update()""",
    # Deletes per statement, from their transition table: deleting a source deletes thousands.
    f"""CREATE FUNCTION {SEARCH}_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM {SEARCH} WHERE id IN (SELECT id FROM removed);
        RETURN NULL;
    END $$""",
    f"""CREATE TRIGGER {SEARCH}_delete AFTER DELETE ON dashboard_service
        REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION {SEARCH}_delete()""",
    # TRUNCATE (Django's flush, between some tests) fires no delete trigger.
    f"""CREATE FUNCTION {SEARCH}_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        TRUNCATE {SEARCH};
        RETURN NULL;
    END $$""",
    f"""CREATE TRIGGER {SEARCH}_truncate AFTER TRUNCATE ON dashboard_service
        FOR EACH STATEMENT EXECUTE FUNCTION {SEARCH}_truncate()""",
    *(f"DROP INDEX IF EXISTS service_search_{name}" for name in ("name", "id", "desc")),
    # A search's count (the status tiles) joins the matching ids to the live services' status
    # and source: read from this index, not from the rows (service_status holds no id).
    "CREATE INDEX service_status_ids ON dashboard_service (status, source_id) INCLUDE (id) "
    "WHERE gone_at IS NULL",
    "DROP INDEX IF EXISTS window_failing",
    "ALTER INDEX window_failing_desc RENAME TO window_failing",
]

BACKWARDS = [
    "ALTER INDEX window_failing RENAME TO window_failing_desc",
    "CREATE INDEX window_failing ON dashboard_servicewindow "
    '("window", rank_rate DESC, severity, service_name, service_id)',
    "DROP INDEX service_status_ids",
    *(
        f"CREATE INDEX service_search_{name} ON dashboard_service "
        f"USING gin (UPPER({column}::text) gin_trgm_ops)"
        for name, column in (
            ("name", "service_name"),
            ("id", "service_id"),
            ("desc", "description"),
        )
    ),
    *(f"DROP TRIGGER {SEARCH}_{event} ON dashboard_service" for event in EVENTS),
    *(f"DROP FUNCTION {SEARCH}_{event}()" for event in EVENTS),
    f"DROP FUNCTION {SEARCH}_text(text, text, text)",
    f"DROP TABLE {SEARCH}",
]


# The stored /metrics text (ExpositionPart.text, 100 MB at 100,000 services, rewritten by every
# poll that changed a row) compressed with lz4 where the server has it: PostgreSQL's default,
# pglz, took four times as long for the same size.
EXPOSITION_TEXT = "ALTER TABLE dashboard_expositionpart ALTER COLUMN text SET COMPRESSION {}"
LZ4 = f"""DO $$ BEGIN
    IF 'lz4' = ANY (SELECT unnest(enumvals) FROM pg_settings
                    WHERE name = 'default_toast_compression') THEN
        {EXPOSITION_TEXT.format("lz4")};
    END IF;
END $$"""
DEFAULT = EXPOSITION_TEXT.format("DEFAULT")
WINDOW_SERVICE = "dashboard_servicewindow_service_id_14d265aa"  # as 0009 named it


def run(statements: list[str]):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0013_tokens_saved_views_owner_names")]

    operations = [
        migrations.RunPython(run(FORWARDS), run(BACKWARDS)),
        # A window's service needs no index of its own: the unique (service, window) index
        # leads with it. Dropped by name: Django's AlterField would do it on SQLite by copying
        # the whole table. (A service's source keeps its own: in rowid order, SQLite reads a
        # source's services in the table's order, three times faster than in service_id's.)
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="servicewindow",
                    name="service",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="windows",
                        to="dashboard.service",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {WINDOW_SERVICE}",
                    f"CREATE INDEX {WINDOW_SERVICE} ON dashboard_servicewindow (service_id)",
                )
            ],
        ),
        migrations.RunPython(run([LZ4]), run([DEFAULT])),
    ]
