"""The service table at 100,000 services: an index for the status tiles, a search index on each
database, and on PostgreSQL the descending twins of the nullable sort columns' indexes."""

from django.db import DatabaseError, migrations, models

SEARCH = "dashboard_service_search"
SEARCHED = "service_name, service_id, description"

# SQLite: an FTS5 table with the trigram tokenizer (substring search) over the service table's
# rows, kept current by triggers, so the poller writes rows as it always did. It holds lower()
# of each column and matches case-sensitively: lower() and LIKE both fold ASCII only, so a match
# is exactly what `LIKE '%q%'` (Django's icontains) finds, and the rows need no second look.
# Only rowids are ever read from it (its text is not the content table's: never 'rebuild' it).
LOWERED = ", ".join(f"lower({{row}}.{column})" for column in SEARCHED.split(", "))
SQLITE_SEARCH = [
    f"CREATE VIRTUAL TABLE {SEARCH} USING fts5({SEARCHED}, content='dashboard_service', "
    "content_rowid='id', tokenize='trigram case_sensitive 1')",
    f"""CREATE TRIGGER {SEARCH}_insert AFTER INSERT ON dashboard_service BEGIN
        INSERT INTO {SEARCH}(rowid, {SEARCHED}) VALUES (new.id, {LOWERED.format(row="new")});
    END""",
    f"""CREATE TRIGGER {SEARCH}_delete AFTER DELETE ON dashboard_service BEGIN
        INSERT INTO {SEARCH}({SEARCH}, rowid, {SEARCHED})
        VALUES ('delete', old.id, {LOWERED.format(row="old")});
    END""",
    # Only when a searched column changes: counters change on every poll.
    f"""CREATE TRIGGER {SEARCH}_update AFTER UPDATE OF {SEARCHED} ON dashboard_service BEGIN
        INSERT INTO {SEARCH}({SEARCH}, rowid, {SEARCHED})
        VALUES ('delete', old.id, {LOWERED.format(row="old")});
        INSERT INTO {SEARCH}(rowid, {SEARCHED}) VALUES (new.id, {LOWERED.format(row="new")});
    END""",
    f"INSERT INTO {SEARCH}(rowid, {SEARCHED}) "
    f"SELECT id, {LOWERED.format(row='dashboard_service')} FROM dashboard_service",
]
SQLITE_SEARCH_UNDO = [
    *(f"DROP TRIGGER IF EXISTS {SEARCH}_{event}" for event in ("insert", "delete", "update")),
    f"DROP TABLE IF EXISTS {SEARCH}",
]

# PostgreSQL reads `UPPER(col::text) LIKE UPPER('%q%')` (Django's icontains) from these. Not
# partial: any search of these columns can use them (the admin's too).
POSTGRES_SEARCH = [
    f"CREATE INDEX service_search_{name} ON dashboard_service "
    f"USING gin (UPPER({column}::text) gin_trgm_ops)"
    for name, column in (("name", "service_name"), ("id", "service_id"), ("desc", "description"))
]
# Its ascending indexes read backwards give DESC NULLS FIRST; the table sorts NULLs last.
POSTGRES_DESCENDING = [
    f"CREATE INDEX service_{name}_desc ON dashboard_service "
    f"({column} DESC NULLS LAST, id DESC) WHERE gone_at IS NULL"
    for column, name in (
        ("invocation_times", "calls"),
        ("failed_times", "failures"),
        ("failure_rate", "rate"),
        ("calls_delta", "delta"),
        ("publish_at", "published"),
    )
]
POSTGRES_UNDO = [
    *(f"DROP INDEX IF EXISTS service_search_{name}" for name in ("name", "id", "desc")),
    *(
        f"DROP INDEX IF EXISTS service_{name}_desc"
        for name in ("calls", "failures", "rate", "delta", "published")
    ),
]


class MissingExtension(RuntimeError):
    pass


def _pg_trgm(schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone():
            return
        cursor.execute("SELECT current_database(), current_user")
        database, user = cursor.fetchone()
        try:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except DatabaseError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "42501":  # insufficient_privilege
                raise
            raise MissingExtension(
                f"The service search needs PostgreSQL's pg_trgm extension, and the user "
                f"{user!r} may not create it in database {database!r}. Have a superuser (or "
                f"the database owner) run CREATE EXTENSION pg_trgm; in {database!r}, then "
                f"migrate again."
            ) from exc


def forwards(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        statements = SQLITE_SEARCH
    elif vendor == "postgresql":
        _pg_trgm(schema_editor)
        statements = POSTGRES_SEARCH + POSTGRES_DESCENDING
    else:
        statements = []
    for statement in statements:
        schema_editor.execute(statement)


def backwards(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": SQLITE_SEARCH_UNDO, "postgresql": POSTGRES_UNDO}.get(vendor, [])
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="service",
            index=models.Index(
                condition=models.Q(("gone_at", None)),
                fields=["status", "source"],
                name="service_status",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
