"""SQLite: the search index's insert trigger fires unconditionally again; the pause table goes.

0003 made the trigger ask the pause table, per row, whether to stand aside. Any trigger makes
SQLite keep a statement journal for each inserted row, which copies every index page the row
touches: with the service table's dozen indexes that cost 4 s of a 100,000-service first poll.
The poller now drops the trigger for its bulk insert instead, inside its snapshot transaction
(service_rows.bulk_inserting), so the pause has no use left.
"""

from django.db import migrations

SEARCH = "dashboard_service_search"
SEARCHED = "service_name, service_id, description"
LOWERED = ", ".join(f"lower(new.{column})" for column in SEARCHED.split(", "))
PAUSE = "dashboard_service_search_paused"

FORWARDS = [
    f"DROP TRIGGER {SEARCH}_insert",
    f"""CREATE TRIGGER {SEARCH}_insert AFTER INSERT ON dashboard_service BEGIN
        INSERT INTO {SEARCH}(rowid, {SEARCHED}) VALUES (new.id, {LOWERED});
    END""",
    f"DROP TABLE {PAUSE}",
]
BACKWARDS = [
    f"CREATE TABLE {PAUSE} (paused INTEGER NOT NULL)",
    f"DROP TRIGGER {SEARCH}_insert",
    f"""CREATE TRIGGER {SEARCH}_insert AFTER INSERT ON dashboard_service
        WHEN NOT EXISTS (SELECT 1 FROM {PAUSE}) BEGIN
        INSERT INTO {SEARCH}(rowid, {SEARCHED}) VALUES (new.id, {LOWERED});
    END""",
]


def run(statements):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "sqlite":
            for statement in statements:
                schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0004_source_samples_thinned_until")]

    operations = [migrations.RunPython(run(FORWARDS), run(BACKWARDS))]
