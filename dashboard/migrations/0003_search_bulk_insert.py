"""SQLite: the poller fills the search index for its new services in one statement.

The insert trigger of 0002 cost about 100 µs a row, 8 s of a 100,000-service first poll; one
INSERT … SELECT after the rows does the same in under 2 s. While the (single-row) pause table
holds a row the trigger stands aside; the poller adds and removes that row inside its snapshot
transaction, so nothing else ever sees it, and a poll that fails rolls it back with the rest.
Every other insert (the admin, the tests' fixtures) still goes through the trigger.
"""

from django.db import migrations

SEARCH = "dashboard_service_search"
SEARCHED = "service_name, service_id, description"
LOWERED = ", ".join(f"lower(new.{column})" for column in SEARCHED.split(", "))
PAUSE = "dashboard_service_search_paused"

FORWARDS = [
    f"CREATE TABLE {PAUSE} (paused INTEGER NOT NULL)",
    f"DROP TRIGGER {SEARCH}_insert",
    f"""CREATE TRIGGER {SEARCH}_insert AFTER INSERT ON dashboard_service
        WHEN NOT EXISTS (SELECT 1 FROM {PAUSE}) BEGIN
        INSERT INTO {SEARCH}(rowid, {SEARCHED}) VALUES (new.id, {LOWERED});
    END""",
]
BACKWARDS = [
    f"DROP TRIGGER {SEARCH}_insert",
    f"""CREATE TRIGGER {SEARCH}_insert AFTER INSERT ON dashboard_service BEGIN
        INSERT INTO {SEARCH}(rowid, {SEARCHED}) VALUES (new.id, {LOWERED});
    END""",
    f"DROP TABLE {PAUSE}",
]


def run(statements):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "sqlite":
            for statement in statements:
                schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0002_service_speed")]

    operations = [migrations.RunPython(run(FORWARDS), run(BACKWARDS))]
