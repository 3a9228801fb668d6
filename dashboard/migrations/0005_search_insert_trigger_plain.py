"""SQLite: undo 0003. The search index's insert trigger fires unconditionally again, and the
pause table goes.

0003 made the trigger ask the pause table, per row, whether to stand aside. But any trigger
makes SQLite keep a statement journal for each inserted row, which copies every index page the
row touches: with the service table's dozen indexes, 95,000 rows took 4.0 s to insert with the
trigger present, paused or not, and 1.8 s without it. The poller now drops the trigger for its
bulk insert instead, inside its snapshot's transaction (service_rows._inserting_in_bulk),
so the pause has no use left.
"""

import importlib

from django.db import migrations

pause = importlib.import_module("dashboard.migrations.0003_search_bulk_insert")


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0004_source_samples_thinned_until")]

    operations = [migrations.RunPython(pause.run(pause.BACKWARDS), pause.run(pause.FORWARDS))]
