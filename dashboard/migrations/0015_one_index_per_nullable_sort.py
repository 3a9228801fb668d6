"""PostgreSQL: the DESC NULLS LAST twins of the nullable sort columns' indexes go (0002 made
them on the service table, 0009 on the window table).

The table sorts NULLs last both ways; PostgreSQL reads an ascending index backwards as DESC
NULLS FIRST, hence the twins. But a poll that moves a service's counters rewrites its row and
its four window rows, and each row version goes into every index of its table: the twins were 5
of the service table's 19 indexes and 3 of the window table's 9. A descending sort on one of
these columns now reads the rows with a value, then those without, each from the one ascending
index read backwards (queries.services.ONE_INDEX_NULLABLE). Nothing but indexes is dropped.
"""

from django.db import migrations

TWINS = {
    "dashboard_service": (
        "({column} DESC NULLS LAST, id DESC) WHERE gone_at IS NULL",
        {
            "service_calls_desc": "invocation_times",
            "service_failures_desc": "failed_times",
            "service_rate_desc": "failure_rate",
            "service_delta_desc": "calls_delta",
            "service_published_desc": "publish_at",
        },
    ),
    "dashboard_servicewindow": (
        '("window", {column} DESC NULLS LAST, service_id DESC)',
        {f"window_{column}_desc": column for column in ("calls", "failures", "rate")},
    ),
}


def drop_twins(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for _, names in TWINS.values():
        for name in names:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


def make_twins(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, (shape, names) in TWINS.items():
        for name, column in names.items():
            schema_editor.execute(f"CREATE INDEX {name} ON {table} {shape.format(column=column)}")


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0014_search_table"),
    ]

    operations = [migrations.RunPython(drop_twins, make_twins, elidable=False)]
