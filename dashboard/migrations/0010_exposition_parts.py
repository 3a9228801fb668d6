"""/metrics' per-service lines, stored by the poller (additive: until a source's next
successful poll, a scrape renders its services from their rows, as before)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('dashboard', '0009_service_windows'),
    ]

    operations = [
        migrations.CreateModel(
            name='ExpositionPart',
            # text last: SQLite reads a column stored after a long text through its overflow pages.
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('source', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='exposition_parts', to='dashboard.source')),
                ('family', models.CharField(max_length=64)),
                ('part', models.PositiveIntegerField()),
                ('rendered_at', models.DateTimeField()),
                ('source_name', models.CharField(max_length=64)),
                ('text', models.TextField()),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('family', 'source', 'part'), name='exposition_part_unique')],
            },
        ),
    ]
