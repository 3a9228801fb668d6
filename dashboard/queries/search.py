"""The search box: a case-insensitive substring of a service's name, id or description."""

from __future__ import annotations

import string

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from dashboard.models import SEARCH_TABLE, Service

# The trigram search index cannot match fewer characters than this.
TRIGRAM = 3

ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def search(q: str) -> Q:
    """Case-insensitive substring of name, id or description (Django's icontains), found
    through each database's trigram index on its search table (see migrations 0002 and 0014),
    short queries aside."""
    if len(q) >= TRIGRAM:
        if connection.vendor == "sqlite":
            return _sqlite(q)
        # The search text joins the columns with line breaks: without one, q can only match
        # inside a column.
        if connection.vendor == "postgresql" and "\n" not in q:
            return _postgresql(q)
    return Q(service_name__icontains=q) | Q(service_id__icontains=q) | Q(description__icontains=q)


def _postgresql(q: str) -> Q:
    """The services whose search text holds q, compared as icontains compares on PostgreSQL:
    UPPER() of the column LIKE UPPER() of the escaped pattern."""
    pattern = f"%{connection.ops.prep_for_like_query(q)}%"
    table = connection.ops.quote_name(Service._meta.db_table)
    return Q(
        RawSQL(
            f"{table}.id IN (SELECT id FROM {SEARCH_TABLE} WHERE text LIKE UPPER(%s))",
            [pattern],
            output_field=BooleanField(),
        )
    )


def _sqlite(q: str) -> Q:
    # As lower() wrote the index: ASCII letters only, the way SQLite's LIKE folds case.
    phrase = '"' + q.translate(ASCII_LOWER).replace('"', '""') + '"'
    table = connection.ops.quote_name(Service._meta.db_table)
    # "+id": the matches are checked while a sort or status index is read in order; as
    # the driving index they would cost one row lookup per match before any sort.
    return Q(
        RawSQL(
            f"+{table}.id IN (SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH %s)",
            [phrase],
            output_field=BooleanField(),
        )
    )
