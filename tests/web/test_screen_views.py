"""The server's side of the screen ops teams live in: last visits, the partial's out-of-band
header, page numbers past the end, the service page's range and refresh, error pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.alerts.conditions import fingerprint
from dashboard.models import Alert, AlertRule, UserPreference
from dashboard.web import charts
from dashboard.web.services import refresh_choices
from dashboard.web.visits import last_visit, record_visit

NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_it_starts_with_no_last_visit(operator):
    assert record_visit(operator, NOON) is None
    assert UserPreference.objects.get(user=operator).seen_at == NOON


def test_it_keeps_the_same_last_visit_through_one_visit(operator):
    record_visit(operator, NOON - timedelta(hours=3))
    assert record_visit(operator, NOON) == NOON - timedelta(hours=3)
    # Reloads and clicks within the visit point at the same moment.
    assert record_visit(operator, NOON + timedelta(seconds=30)) == NOON - timedelta(hours=3)
    assert record_visit(operator, NOON + timedelta(minutes=20)) == NOON - timedelta(hours=3)
    assert last_visit(operator) == NOON - timedelta(hours=3)


def test_it_starts_a_new_visit_after_half_an_hour_away(operator):
    record_visit(operator, NOON)
    record_visit(operator, NOON + timedelta(minutes=10))
    assert record_visit(operator, NOON + timedelta(hours=2)) == NOON + timedelta(minutes=10)


def test_an_anonymous_visitor_has_no_last_visit():
    from django.contrib.auth.models import AnonymousUser

    assert record_visit(AnonymousUser(), NOON) is None
    assert last_visit(AnonymousUser()) is None


def test_the_page_links_the_last_visit_in_words(client, operator, make_service):
    make_service("alpha", "failed")
    UserPreference.objects.create(user=operator, seen_at=timezone.now() - timedelta(hours=3))
    body = client.get("/?status=failed").content.decode()
    assert "Show what changed since my last visit (3\xa0hours ago)" in body
    assert 'href="/?status=failed&amp;since=' in body


def test_the_last_visit_is_told_in_chinese(client, operator, make_service):
    make_service("alpha", "failed")
    UserPreference.objects.create(user=operator, seen_at=timezone.now() - timedelta(hours=3))
    client.cookies["django_language"] = "zh-hans"
    body = client.get("/", headers={"Accept-Language": "zh-hans"}).content.decode()
    assert "查看我上次访问（3\xa0小时前）以来的变化" in body


def test_a_refresh_does_not_count_as_a_visit(client, operator, make_service):
    make_service("alpha")
    seen = timezone.now() - timedelta(hours=3)
    UserPreference.objects.create(user=operator, seen_at=seen)
    body = client.get("/", headers={"HX-Request": "true"}).content.decode()
    assert "since-last-visit" not in body  # no visit has ended yet
    assert UserPreference.objects.get(user=operator).seen_at == seen


def test_the_partial_updates_the_headers_alert_count_out_of_band(client, make_service):
    rule = AlertRule.objects.create(name="failed", condition="statuses", statuses=["failed"])
    service = make_service("alpha", "failed")
    Alert.objects.create(
        rule=rule,
        source=service.source,
        service=service,
        fingerprint=fingerprint(rule.name, service.source.name, service.service_id),
        labels={},
        started_at=timezone.now(),
        notified_at=timezone.now(),
    )
    body = client.get("/", headers={"HX-Request": "true"}).content.decode()
    assert '<span id="alerts-firing" hx-swap-oob="true"> <span class="count">1' in body
    full = client.get("/").content.decode()
    assert '<span id="alerts-firing"> <span class="count">1' in full


def test_a_page_past_the_end_sends_to_the_last_pages_address(client, make_service):
    for n in range(30):
        make_service(f"s{n:02}", "failed" if n % 2 else "running")
    response = client.get("/", {"page": "9", "per_page": "25", "sort": "name", "q": "s"})
    assert response.status_code == 302
    assert response["Location"] == "/?q=s&sort=name&page=2&per_page=25"
    assert client.get(response["Location"]).status_code == 200
    # The partial keeps its answer and corrects the address bar instead.
    partial = client.get("/", {"page": "9"}, headers={"HX-Request": "true"})
    assert partial.status_code == 200 and partial["HX-Replace-Url"] == "/"


def test_the_skip_link_goes_to_the_table_and_rows_have_one_tab_stop(client, make_service):
    make_service("alpha")
    body = client.get("/").content.decode()
    assert '<a class="skip-link" href="#results">' in body
    assert 'class="copy" tabindex="-1"' in body


def test_it_offers_slower_refreshes_than_the_servers(settings, client, make_service):
    assert refresh_choices(15) == [
        ("auto", "every 15 s"),
        ("30", "every 30 s"),
        ("60", "every 1 min"),
        ("300", "every 5 min"),
    ]
    assert refresh_choices(60) == [("auto", "every 1 min"), ("300", "every 5 min")]
    body = client.get("/").content.decode()
    assert '<select id="refresh-every">' in body


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (timedelta(minutes=40), "1h"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=3), "6h"),
        (timedelta(hours=20), "24h"),
        (timedelta(days=40), "24h"),
        (None, "24h"),
    ],
)
def test_the_default_range_covers_the_services_history(age, expected):
    first_seen = None if age is None else NOON - age
    assert charts.default_range(first_seen, NOON).key == expected


def test_the_service_page_opens_on_a_range_that_fits_and_keeps_an_explicit_one(
    client, make_service
):
    young = make_service("young", first_seen_at=timezone.now() - timedelta(hours=2))
    body = client.get(f"/services/{young.service_id}/").content.decode()
    assert '<a class="chip chip-on" href="?range=6h" aria-current="true">6h</a>' in body
    body = client.get(f"/services/{young.service_id}/?range=24h").content.decode()
    assert '<a class="chip chip-on" href="?range=24h" aria-current="true">24h</a>' in body


def test_the_service_page_refreshes_itself(client, make_service, settings):
    settings.DASHBOARD_REFRESH_SECONDS = 20
    service = make_service("alpha")
    body = client.get(f"/services/{service.service_id}/?range=7d").content.decode()
    assert f'hx-get="/services/{service.service_id}/?range=7d" hx-trigger="every 20s"' in body
    assert 'hx-select="#service-live"' in body
    assert 'id="service-live"' in body and 'id="service-head-live"' in body


@pytest.mark.parametrize("url", ["/nowhere/", "/services/not-a-service/x/"])
def test_error_pages_are_in_the_dashboards_layout(url, db):
    response = Client().get(url)
    assert response.status_code == 404
    body = response.content.decode()
    assert '<nav class="sections"' in body
    assert "dashboard/prefs.js" in body  # the reader's theme


def test_a_bad_time_zone_stops_the_dashboard_at_startup():
    import os
    import subprocess
    import sys

    env = {**os.environ, "DASHBOARD_TIME_ZONE": "Mars/Olympus", "SECRET_KEY": "x" * 50}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "DASHBOARD_TIME_ZONE must be an IANA time zone" in result.stderr


def test_chart_labels_carry_their_moment_for_the_readers_zone(client, make_service, settings):
    settings.DASHBOARD_TIME_ZONE = "Asia/Shanghai"
    service = make_service("alpha", first_seen_at=timezone.now() - timedelta(days=3))
    body = client.get(f"/services/{service.service_id}/").content.decode()
    assert re.search(r'data-tick="\d{4}-\d\d-\d\dT\d\d:00:00Z" data-tick-format="clock"', body)
    assert "data-zone-caption>UTC</text>" in body
    assert '<meta name="dashboard-time-zone" content="Asia/Shanghai">' in body
    assert '<input type="radio" name="times" value="server"> Asia/Shanghai' in body
