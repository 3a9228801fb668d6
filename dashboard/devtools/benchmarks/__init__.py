"""The parts of `manage.py benchmark`: ingest (polls) and pages (the table against the admin)."""
