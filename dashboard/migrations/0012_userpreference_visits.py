from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0011_userpreference"),
    ]

    operations = [
        migrations.AddField(
            model_name="userpreference",
            name="seen_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="userpreference",
            name="last_visit_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
