import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0012_userpreference_visits"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=80)),
                ("prefix", models.CharField(max_length=16)),
                ("digest", models.CharField(max_length=64, unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="api_tokens",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["-created_at", "-id"]},
        ),
        # Saved views: personal unless shared. Views saved before were everyone's: they stay
        # shared (the field's default while it is added), and new ones default to personal.
        migrations.AddField(
            model_name="savedview",
            name="shared",
            field=models.BooleanField(default=True),
        ),
        migrations.AlterField(
            model_name="savedview",
            name="shared",
            field=models.BooleanField(default=False),
        ),
        migrations.AlterField(
            model_name="savedview",
            name="name",
            field=models.CharField(max_length=80),
        ),
        migrations.AddConstraint(
            model_name="savedview",
            constraint=models.UniqueConstraint(
                condition=models.Q(("shared", True)),
                fields=("name",),
                name="savedview_shared_name_unique",
            ),
        ),
        migrations.AddConstraint(
            model_name="savedview",
            constraint=models.UniqueConstraint(
                condition=models.Q(("shared", False)),
                fields=("created_by", "name"),
                name="savedview_personal_name_unique",
            ),
        ),
        migrations.CreateModel(
            name="OwnerName",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("owner_id", models.CharField(max_length=64, unique=True)),
                ("name", models.CharField(max_length=150)),
            ],
            options={"ordering": ["name", "owner_id"]},
        ),
    ]
