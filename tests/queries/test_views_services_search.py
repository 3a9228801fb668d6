"""The table's search (?q=): a case-insensitive substring of name, id or description, the same
on either database and whichever index serves it (short queries included)."""

from __future__ import annotations

import re

import pytest
from conftest import names
from django.db import connection

from dashboard.ingest.poll import poll_source
from dashboard.models import Service


def found(client, q: str) -> list[str]:
    response = client.get("/", {"q": q, "sort": "name"})
    assert response.status_code == 200
    return names(response)


@pytest.fixture
def searchable(make_service):
    return [
        make_service("infer-PROD-east", description="Serves the checkout page"),
        make_service("batch-nightly", description="Rebuilds 50% of the index"),
        make_service("staging_b", description='A "quoted" word'),
        make_service("Zürich-edge", description="500 calls a day"),
    ]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("prod", ["infer-PROD-east"]),
        ("PROD-EAST", ["infer-PROD-east"]),
        ("CHECKOUT", ["infer-PROD-east"]),
        ("nightly", ["batch-nightly"]),
        ("50%", ["batch-nightly"]),  # a literal percent sign, not a wildcard
        ("g_b", ["staging_b"]),  # a literal underscore
        ('"quoted"', ["staging_b"]),
        ('d" w', ["staging_b"]),
        ("zürich", ["Zürich-edge"]),
        ("00000000-0000-4000-8000-000000000002", ["batch-nightly"]),
        ("4000-8000-00000000000", ["Zürich-edge", "batch-nightly", "infer-PROD-east", "staging_b"]),
        ("no such thing", []),
    ],
)
def test_it_finds_a_substring_of_name_id_or_description(client, searchable, q, expected):
    assert found(client, q) == expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("PR", ["infer-PROD-east"]),
        ("%", ["batch-nightly"]),
        ("_", ["staging_b"]),
        ("z", ["Zürich-edge"]),
        ("ü", ["Zürich-edge"]),
    ],
)
def test_it_finds_queries_too_short_for_the_trigram_index(client, searchable, q, expected):
    assert found(client, q) == expected


def test_it_finds_a_service_by_its_new_name_and_not_its_old_one(client, searchable):
    renamed = searchable[0]
    renamed.service_name = "infer-canary-east"
    renamed.save()
    assert found(client, "canary") == ["infer-canary-east"]
    assert found(client, "prod") == []


def test_it_follows_the_pollers_plain_updates_and_deletes(client, searchable):
    table = connection.ops.quote_name(Service._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET description = %s WHERE id = %s", ["GPU box", searchable[1].pk]
        )
    assert found(client, "gpu") == ["batch-nightly"]
    assert found(client, "Rebuilds") == []
    Service.objects.filter(pk=searchable[2].pk).delete()
    assert found(client, "quoted") == []


def test_it_never_matches_across_two_columns(client, searchable):
    """PostgreSQL's search text holds the three columns one per line: a query with a line
    break must still match within one column only."""
    assert found(client, "east\n00000000") == []
    assert found(client, "EAST\nSERVES") == []


def test_it_finds_a_line_break_inside_a_column(client, make_service):
    make_service("multi-line", description="first line\nsecond line")
    assert found(client, "line\nsecond") == ["multi-line"]


@pytest.mark.postgresql
def test_a_counter_update_leaves_the_search_index_alone(searchable):
    """PostgreSQL: the poller rewrites counters on every poll, setting the searched columns to
    what they were; only a change of the text writes to the search table. (SQLite's trigger
    re-indexes a row whenever a searched column is written: the poller leaves them out.)"""
    service = searchable[0]
    before = search_row_version(service.pk)
    Service.objects.filter(pk=service.pk).update(
        invocation_times=99, failed_times=9, service_name=service.service_name
    )
    assert search_row_version(service.pk) == before
    Service.objects.filter(pk=service.pk).update(service_name="infer-renamed")
    assert search_row_version(service.pk) != before


def test_it_counts_and_tiles_the_matches_only(client, searchable, make_service):
    make_service("prod-two", "failed")
    body = client.get("/?q=prod").content.decode()
    assert "1–2 of 2" in body
    tiles = re.findall(r'<span class="tile-count">(\d+)</span>\s*<span class="tile-label">', body)
    assert sorted(tiles) == ["1", "1"]


def test_services_a_poll_inserts_are_found_like_any_other(
    client, polled, source, simulator, make_service
):
    """The poller indexes its new services in one statement, not through the insert trigger."""
    services = Service.objects.filter(source=source)
    for service in services[:5]:
        fragment = service.service_id[-12:].upper()  # case-insensitive, mid-id
        assert service.service_name in found(client, fragment)
    word = services[0].service_name.split("-")[0]
    expected = sorted(services.filter(service_name__icontains=word).values_list(
        "service_name", flat=True))  # fmt: skip
    assert found(client, word) == expected[:50]
    # The trigger is back once the poll has committed: other inserts are indexed as before.
    make_service("inserted-after-the-poll")
    assert found(client, "after-the-poll") == ["inserted-after-the-poll"]
    assert search_index_size() == Service.objects.count()
    if connection.vendor == "postgresql":
        # The poller's own INSERT … SELECT wrote what the trigger would have.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM dashboard_service s JOIN dashboard_service_search USING (id) "
                "WHERE text = dashboard_service_search_text(service_name, service_id, description)"
            )
            assert cursor.fetchone()[0] == Service.objects.count()


def test_it_keeps_the_insert_trigger_when_a_poll_fails_while_inserting(
    client, source, make_service, monkeypatch
):
    from dashboard.ingest import sql as service_sql

    def broken_insert(*args: object) -> None:
        raise RuntimeError("the disk filled up")

    schema = service_table_schema()
    monkeypatch.setattr(service_sql, "insert", broken_insert)
    run = poll_source(source)
    assert not run.ok and run.error_kind == "internal"
    assert not Service.objects.filter(source=source).exists()
    assert service_table_schema() == schema  # the indexes dropped for the import are back
    make_service("inserted-after-the-failed-poll")
    assert found(client, "failed-poll") == ["inserted-after-the-failed-poll"]
    assert search_index_size() == 1


def test_a_first_import_leaves_every_index_and_trigger_as_it_found_them(source, client):
    """On SQLite the import drops the table's indexes and insert trigger and builds them again."""
    schema = service_table_schema()
    assert poll_source(source).ok
    assert service_table_schema() == schema
    # A later poll that finds new services (fewer than the table holds) keeps the indexes.
    Service.objects.filter(pk__in=list(source.services.values_list("pk", flat=True)[:3])).delete()
    assert poll_source(source).ok
    assert service_table_schema() == schema
    assert search_index_size() == Service.objects.filter(source=source).count()


def service_table_schema() -> list[tuple]:
    """The service table's indexes and triggers as the database holds them."""
    if connection.vendor != "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY 1",
                [Service._meta.db_table],
            )
            return cursor.fetchall()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = %s ORDER BY 2",
            [Service._meta.db_table],
        )
        return cursor.fetchall()


def search_index_size() -> int:
    """Rows the search index holds (on SQLite, its own table: the FTS table itself would count
    the service table's rows, which is its content)."""
    table = "dashboard_service_search" + ("_docsize" if connection.vendor == "sqlite" else "")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        return cursor.fetchone()[0]


def search_row_version(pk: int) -> str:
    """PostgreSQL: where the search table holds a service's row (a write moves it)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT ctid::text FROM dashboard_service_search WHERE id = %s", [pk])
        return cursor.fetchone()[0]
