"""The compact rows a poll holds for each service until its snapshot is written."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dashboard.ingest.rows import STATE_COLUMNS, RowMaker
from dashboard.modelarts import ServiceRecord


def row_of(record: ServiceRecord):
    """The row of a service the table does not hold yet."""
    return RowMaker(())(record)


ITEM = {
    "service_id": "00000000-0000-4000-8000-000000000001",
    "service_name": "bert-ner-prod",
    "status": "running",
    "invocation_times": 120,
    "failed_times": 3,
    "operation_time": 1767225600123,
    "additional_properties": {"smn_notification": {"events": [1, 2]}},
    "schedule": [{"type": "stop", "time_unit": "HOURS", "duration": 2}],
}


def state(row) -> dict:
    return dict(zip(STATE_COLUMNS, row.state, strict=True))


def test_it_fingerprints_as_earlier_versions_did():
    # Rows written before keep their fingerprint: an upgrade must not rewrite every row.
    rest = {key: value for key, value in ITEM.items() if key != "operation_time"}
    encoded = json.dumps(rest, sort_keys=True, separators=(",", ":"), default=str)
    expected = hashlib.blake2b(encoded.encode(), digest_size=16).hexdigest()

    assert row_of(ServiceRecord.from_json(ITEM)).fingerprint == expected


def test_it_leaves_operation_time_out_of_the_fingerprint():
    later = {**ITEM, "operation_time": ITEM["operation_time"] + 30_000}

    assert row_of(ServiceRecord.from_json(later)).fingerprint == (
        row_of(ServiceRecord.from_json(ITEM)).fingerprint
    )


@pytest.mark.parametrize(
    "item",
    [
        ITEM,
        {key: value for key, value in ITEM.items() if key != "operation_time"},
        {"service_id": "x", "operation_time": None},
        {"service_id": "x", "operation_time": 'soon "quoted"'},
    ],
)
def test_it_stores_the_item_as_sent(item):
    stored = state(row_of(ServiceRecord.from_json(item)))

    assert json.loads(stored["raw"]) == item


def test_it_holds_no_parsed_json():
    # A snapshot of 100,000 services holds one of these each: text, not dicts and lists.
    row = row_of(ServiceRecord.from_json(ITEM))

    assert not [value for value in row.state if isinstance(value, dict | list)]
    assert json.loads(state(row)["schedule"]) == ITEM["schedule"]
    assert json.loads(state(row)["additional_properties"]) == ITEM["additional_properties"]


def test_it_cuts_long_texts_to_their_columns_and_keeps_them_whole_in_raw():
    row = row_of(ServiceRecord.from_json({**ITEM, "service_name": "n" * 10_000}))

    assert state(row)["service_name"] == "n" * 256
    assert json.loads(state(row)["raw"])["service_name"] == "n" * 10_000


def test_it_shares_one_string_for_texts_that_repeat_across_the_fleet():
    rows = [
        row_of(ServiceRecord.from_json(json.loads(json.dumps({**ITEM, "service_id": str(n)}))))
        for n in range(2)
    ]

    assert state(rows[0])["status"] is state(rows[1])["status"]


def test_it_stands_in_for_a_service_the_table_holds_unchanged():
    fingerprint = row_of(ServiceRecord.from_json(ITEM)).fingerprint
    keep = RowMaker([(ITEM["service_id"], fingerprint)])

    same = keep(ServiceRecord.from_json({**ITEM, "operation_time": 1}))

    assert (same.service_id, same.fingerprint, same.state) == (
        ITEM["service_id"],
        fingerprint,
        None,
    )
    assert keep(ServiceRecord.from_json(ITEM)) is same  # made once, before the poll


def test_it_makes_a_whole_row_for_a_changed_or_new_service():
    keep = RowMaker([(ITEM["service_id"], "0" * 32)])

    changed = keep(ServiceRecord.from_json(ITEM))
    new = keep(ServiceRecord.from_json({**ITEM, "service_id": "another"}))

    assert changed == row_of(ServiceRecord.from_json(ITEM))
    assert new.state is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 26, 22, 51, 56, 123456, tzinfo=UTC),
        datetime(2026, 11, 26, 22, 51, 56, tzinfo=UTC),
        datetime(2026, 11, 26, 23, 51, 56, 5, tzinfo=timezone(timedelta(hours=1))),
        None,
    ],
)
def test_it_writes_dates_as_django_would(moment):
    """The shortcut for UTC dates stores exactly what Django's own adapter stores."""
    from django.db import connection

    from dashboard.ingest.sql import _date_adapter

    assert _date_adapter()(moment) == connection.ops.adapt_datetimefield_value(moment)
