"""Each service's numbers over the table's windows, kept by the poller (additive: the first
poll after this migration works them out for every service)."""

import django.db.models.deletion
from django.db import migrations, models

# PostgreSQL reads its ascending indexes backwards as DESC NULLS FIRST; the table sorts NULLs
# last (see 0002), so the descending sorts get twins.
POSTGRES_DESCENDING = [
    "CREATE INDEX window_failing_desc ON dashboard_servicewindow "
    "(\"window\", rank_rate DESC NULLS LAST, severity, service_name, service_id)",
    *(
        f"CREATE INDEX window_{column}_desc ON dashboard_servicewindow "
        f"(\"window\", {column} DESC NULLS LAST, service_id DESC)"
        for column in ("calls", "failures", "rate")
    ),
]
POSTGRES_UNDO = [
    f"DROP INDEX IF EXISTS window_{name}_desc" for name in ("failing", "calls", "failures", "rate")
]


def forwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for statement in POSTGRES_DESCENDING:
            schema_editor.execute(statement)


def backwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for statement in POSTGRES_UNDO:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0008_service_detail"),
    ]

    operations = [
        migrations.AddField(
            model_name="source",
            name="windows_as_of",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="source",
            name="windows_min_calls",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="ServiceWindow",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("window", models.CharField(max_length=8)),
                ("base_calls", models.BigIntegerField(blank=True, null=True)),
                ("base_failures", models.BigIntegerField(blank=True, null=True)),
                ("calls", models.BigIntegerField(blank=True, null=True)),
                ("failures", models.BigIntegerField(blank=True, null=True)),
                ("rate", models.FloatField(blank=True, null=True)),
                ("rank_rate", models.FloatField(blank=True, null=True)),
                ("severity", models.PositiveSmallIntegerField()),
                ("service_name", models.CharField(max_length=256)),
                (
                    "service",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="windows",
                        to="dashboard.service",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["window", "-rank_rate", "severity", "service_name", "service"],
                        name="window_failing",
                    ),
                    models.Index(fields=["window", "calls", "service"], name="window_calls"),
                    models.Index(fields=["window", "failures", "service"], name="window_failures"),
                    models.Index(fields=["window", "rate", "service"], name="window_rate"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("service", "window"), name="window_unique_per_service"
                    )
                ],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
