"""Detectors: stuck deployments, idle services and flapping ones, as filters and badges."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

import pytest
from conftest import names
from django.utils import timezone

from dashboard.models import Service, ServiceSample, StatusChange


def ago(minutes: float) -> datetime:
    return timezone.now() - timedelta(minutes=minutes)


@pytest.fixture(autouse=True)
def thresholds(settings):
    settings.DASHBOARD_STUCK_MINUTES = 10
    settings.DASHBOARD_IDLE_MINUTES = 30
    settings.DASHBOARD_FLAP_CHANGES = 3
    settings.DASHBOARD_FLAP_MINUTES = 20
    return settings


@pytest.fixture
def service(make_service, run):
    """A service with a history: samples (minutes ago, calls) and status changes."""

    def make(name: str, status: str, *, samples=(), changes=(), calls: int = 100, **fields):
        fields.setdefault("first_seen_at", ago(24 * 60))
        row = make_service(name, status, invocation_times=calls, failed_times=0, **fields)
        for minutes, sample_calls in samples:
            ServiceSample.objects.create(
                service=row,
                poll_run=run,
                at=ago(minutes),
                status=status,
                invocation_times=sample_calls,
                failed_times=0,
            )
        for minutes, from_status in changes:
            StatusChange.objects.create(
                service=row,
                source=row.source,
                poll_run=run,
                at=ago(minutes),
                from_status=from_status,
                to_status=status,
            )
        return row

    return make


def flags(client, query: str = "") -> dict[str, list[str]]:
    data = client.get(f"/api/services?per_page=200&{query}").json()
    return {
        s["service_name"]: [name for name, on in s["detectors"].items() if on]
        for s in data["services"]
    }


@pytest.fixture
def stuck_rows(service):
    return [
        service("stuck", "deploying", samples=[(11, 0)]),  # no progress for 11 minutes
        service("progressing", "deploying", samples=[(30, 0), (9, 0)]),  # a sample 9 min ago
        service("no-history", "deploying"),  # never sampled, first seen a day ago
        service("new", "deploying", first_seen_at=ago(5)),
        service("running-old", "running", samples=[(11, 100)], calls=101),
    ]


def test_it_detects_deployments_that_stopped_progressing(client, stuck_rows):
    assert flags(client) == {
        "stuck": ["stuck"],
        "progressing": [],
        "no-history": ["stuck"],
        "new": [],
        "running-old": [],
    }


def test_it_follows_the_stuck_threshold(client, stuck_rows, thresholds):
    thresholds.DASHBOARD_STUCK_MINUTES = 12
    assert flags(client)["stuck"] == []
    thresholds.DASHBOARD_STUCK_MINUTES = 8
    assert flags(client)["progressing"] == ["stuck"]


@pytest.fixture
def idle_rows(service):
    return [
        service("idle", "running", samples=[(31, 100)]),  # no new calls for 31 minutes
        service("busy", "running", samples=[(40, 90), (29, 100)]),  # new calls 29 minutes ago
        # A sample written for a status change, not a call, does not end the idle time.
        service("idle-after-reboot", "running", samples=[(60, 100), (10, 100)]),
        service("stopped", "stopped", samples=[(60, 100)]),
        service("young", "running", samples=[(10, 100)], first_seen_at=ago(10)),
        service("unknown", "running", calls=None),
    ]


def test_it_detects_running_services_without_new_calls(client, idle_rows):
    assert flags(client) == {
        "idle": ["idle"],
        "busy": [],
        "idle-after-reboot": ["idle"],
        "stopped": [],
        "young": [],
        "unknown": [],
    }


def test_it_follows_the_idle_threshold(client, idle_rows, thresholds):
    thresholds.DASHBOARD_IDLE_MINUTES = 32
    assert flags(client)["idle"] == []
    thresholds.DASHBOARD_IDLE_MINUTES = 28
    assert flags(client)["busy"] == ["idle"]


@pytest.fixture
def flap_rows(service):
    return [
        service("flapping", "failed", changes=[(19, "running"), (10, "failed"), (2, "running")]),
        service("twice", "failed", changes=[(10, "running"), (2, "failed")]),
        service("spread", "failed", changes=[(25, "running"), (10, "failed"), (2, "running")]),
        # A service appearing is not a change of status.
        service("appeared", "failed", changes=[(15, ""), (10, "running"), (2, "failed")]),
    ]


def test_it_detects_flapping_services(client, flap_rows, thresholds):
    assert flags(client) == {"flapping": ["flapping"], "twice": [], "spread": [], "appeared": []}
    thresholds.DASHBOARD_FLAP_MINUTES = 30
    assert flags(client)["spread"] == ["flapping"]
    thresholds.DASHBOARD_FLAP_CHANGES = 2
    assert flags(client)["twice"] == ["flapping"]
    assert flags(client)["appeared"] == ["flapping"]


@pytest.fixture
def every_kind(stuck_rows, idle_rows, flap_rows):
    return [*stuck_rows, *idle_rows, *flap_rows]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("detect=stuck", ["no-history", "stuck"]),
        ("detect=idle", ["idle", "idle-after-reboot"]),
        ("detect=flapping", ["flapping"]),
        ("detect=stuck&detect=flapping", ["flapping", "no-history", "stuck"]),
        ("detect=idle&status=deploying", []),
    ],
)
def test_it_filters_by_detector(client, every_kind, query, expected):
    assert names(client.get(f"/?{query}&sort=name")) == expected
    data = client.get(f"/api/services?{query}&sort=name").json()
    assert [s["service_name"] for s in data["services"]] == expected


def test_it_shows_a_badge_beside_the_status(client, every_kind):
    body = client.get("/?detect=stuck&sort=name").content.decode()
    assert body.count('<span class="detector detector-stuck"') == 2
    assert 'title="Deploying, no progress for over 10 min">stuck</span>' in body
    assert 'class="detector' not in client.get("/?status=stopped").content.decode()


def test_it_counts_tiles_under_the_detector_filter(client, every_kind):
    body = client.get("/?detect=stuck").content.decode()
    tiles = re.findall(r'<span class="tile-count">([^<]*)</span>', body)
    assert tiles == ["2"]


def test_it_offers_removable_chips_for_each_detector(client, every_kind):
    body = client.get("/?detect=stuck&detect=idle").content.decode()
    assert '<a class="chip" href="/?detect=idle" aria-label="Remove filter detect: stuck">' in body
    assert '<a class="chip" href="/?detect=stuck" aria-label="Remove filter detect: idle">' in body


def test_it_exports_the_detector_flags_like_the_table(client, every_kind):
    response = client.get("/services.csv?sort=name&detect=idle&detect=stuck&detect=flapping")
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["service_name"] for r in rows] == names(
        client.get("/?sort=name&detect=idle&detect=stuck&detect=flapping")
    )
    assert {r["service_name"]: (r["stuck"], r["idle"], r["flapping"]) for r in rows} == {
        "flapping": ("False", "False", "True"),
        "idle": ("False", "True", "False"),
        "idle-after-reboot": ("False", "True", "False"),
        "no-history": ("True", "False", "False"),
        "stuck": ("True", "False", "False"),
    }


@pytest.mark.parametrize("query", ["detect=lazy", "detect=stuck&detect=STUCK", "detect="])
def test_it_refuses_unknown_detectors(client, every_kind, query):
    response = client.get(f"/?{query}")
    assert response.status_code == 400
    assert "<li><code>detect</code>:" in response.content.decode()
    assert client.get(f"/api/services?{query}").status_code == 400


def test_it_reads_thresholds_from_the_environment(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    from dashboard import settings as project_settings

    monkeypatch.setenv("DASHBOARD_STUCK_MINUTES", "5")
    monkeypatch.setenv("DASHBOARD_FLAP_CHANGES", "4")
    try:
        reloaded = importlib.reload(project_settings)
        assert (reloaded.DASHBOARD_STUCK_MINUTES, reloaded.DASHBOARD_FLAP_CHANGES) == (5, 4)
        assert (reloaded.DASHBOARD_IDLE_MINUTES, reloaded.DASHBOARD_FLAP_MINUTES) == (60, 60)
        monkeypatch.setenv("DASHBOARD_FLAP_CHANGES", "1")
        with pytest.raises(ImproperlyConfigured, match="DASHBOARD_FLAP_CHANGES"):
            importlib.reload(project_settings)
    finally:
        monkeypatch.undo()
        importlib.reload(project_settings)


def test_the_detectors_follow_the_simulator(client, polled, source, clock):
    """End to end: nothing the first poll just saw can be stuck, idle or flapping yet."""
    data = client.get("/api/services?per_page=200").json()
    assert data["count"] == Service.objects.filter(gone_at=None).count()
    assert all(not any(s["detectors"].values()) for s in data["services"])
