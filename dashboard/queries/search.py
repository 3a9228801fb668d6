"""The search box: a case-insensitive substring of a service's name, id or description."""

from __future__ import annotations

import string

from django.db import connection
from django.db.models import (
    BooleanField,
    Q,
)
from django.db.models.expressions import RawSQL

from dashboard.models import SEARCH_TABLE, Service

# The trigram search index cannot match fewer characters than this.
TRIGRAM = 3

ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def search(q: str) -> Q:
    """Case-insensitive substring of name, id or description, served by a trigram index:
    on PostgreSQL pg_trgm's GIN indexes serve the LIKE itself; on SQLite the FTS5 table
    finds the same rows (see the 0002 migration), short queries aside."""
    if connection.vendor != "sqlite" or len(q) < TRIGRAM:
        return (
            Q(service_name__icontains=q) | Q(service_id__icontains=q) | Q(description__icontains=q)
        )
    # As lower() wrote the index: ASCII letters only, the way SQLite's LIKE folds case.
    phrase = '"' + q.translate(ASCII_LOWER).replace('"', '""') + '"'
    table = connection.ops.quote_name(Service._meta.db_table)
    # "+id": the matches are checked while a sort or status index is read in order; as
    # the driving index they would cost one row lookup per match before any sort.
    matches = RawSQL(
        f"+{table}.id IN (SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH %s)",
        [phrase],
        output_field=BooleanField(),
    )
    return Q(matches)
