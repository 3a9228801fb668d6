from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from conftest import names
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.ingest.claims import SourceBusy
from dashboard.ingest.poll import poll_source
from dashboard.ingest.scheduler import run_due_polls
from dashboard.models import PollRun, Service, Source


@pytest.fixture
def fleet_rows(make_service):
    other = Source.objects.create(name="other", endpoint="http://127.0.0.1:9", project_id="p")
    return [
        make_service("alpha", "running", invocation_times=1000, failed_times=1),
        make_service("bravo", "failed", invocation_times=50, failed_times=40, owner="owner-b"),
        make_service("charlie", "concerning", invocation_times=5000, failed_times=500),
        make_service(
            "delta",
            "deploying",
            progress=40,
            infer_type="batch",
            invocation_times=0,
            failed_times=0,
        ),
        make_service("echo", "stopped", invocation_times=10, failed_times=0, description="GPU box"),
        make_service("foxtrot", "rebooting", source=other),
    ]


def test_it_shows_every_service_most_urgent_first(client, fleet_rows):
    response = client.get("/")
    assert response.status_code == 200
    assert names(response) == ["bravo", "charlie", "foxtrot", "delta", "alpha", "echo"]


def test_it_serves_the_partial_to_htmx_and_the_full_page_otherwise(client, fleet_rows):
    full = client.get("/?status=failed")
    partial = client.get("/?status=failed", headers={"HX-Request": "true"})
    body = partial.content.decode()
    assert '<section id="results"' in full.content.decode()
    assert '<form id="filters"' in full.content.decode()
    assert '<section id="results"' in body
    assert '<div id="freshness" class="freshness" hx-swap-oob="true"' in body
    assert re.search(r'<nav id="tiles"[^>]* hx-swap-oob="true"', body)
    assert "<html" not in body
    assert 'id="filters"' not in body
    assert names(partial) == names(full) == ["bravo"]
    assert "HX-Request" in partial["Vary"]


def test_it_serves_the_full_page_to_a_history_restore(client, fleet_rows):
    response = client.get(
        "/?status=failed", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=failed&status=concerning", ["bravo", "charlie"]),
        ("status=rebooting", ["foxtrot"]),
        ("infer_type=batch", ["delta"]),
        ("owner=owner-b", ["bravo"]),
        ("source=other", ["foxtrot"]),
        ("q=ECH", ["echo"]),
        ("q=gpu", ["echo"]),
        ("q=00000000-0000-4000-8000-000000000001", ["alpha"]),
        ("status=running&infer_type=batch", []),
    ],
)
def test_it_filters(client, fleet_rows, query, expected):
    assert names(client.get(f"/?{query}")) == expected


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]),
        ("-name", ["foxtrot", "echo", "delta", "charlie", "bravo", "alpha"]),
        ("-status", ["echo", "alpha", "delta", "foxtrot", "charlie", "bravo"]),
        ("calls", ["delta", "echo", "bravo", "foxtrot", "alpha", "charlie"]),
        ("-calls", ["charlie", "alpha", "foxtrot", "bravo", "echo", "delta"]),
        ("-failures", ["charlie", "bravo", "foxtrot", "alpha", "echo", "delta"]),
        ("-rate", ["bravo", "charlie", "foxtrot", "alpha", "echo", "delta"]),
        ("published", ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]),
        ("-published", ["foxtrot", "echo", "delta", "charlie", "bravo", "alpha"]),
    ],
)
def test_it_sorts(client, fleet_rows, sort, expected):
    assert names(client.get(f"/?sort={sort}")) == expected


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        # Ties break by id, the order the rows were made in; descending reverses that too.
        ("type", ["delta", "alpha", "bravo", "charlie", "echo", "foxtrot"]),
        ("-type", ["foxtrot", "echo", "charlie", "bravo", "alpha", "delta"]),
        ("owner", ["alpha", "charlie", "delta", "echo", "foxtrot", "bravo"]),
        ("-owner", ["bravo", "foxtrot", "echo", "delta", "charlie", "alpha"]),
        # An unknown delta (bravo) goes last either way.
        ("delta", ["delta", "foxtrot", "alpha", "echo", "charlie", "bravo"]),
        ("-delta", ["charlie", "echo", "alpha", "foxtrot", "delta", "bravo"]),
    ],
)
def test_it_sorts_by_every_other_column(client, fleet_rows, sort, expected):
    deltas = {"alpha": 5, "bravo": None, "charlie": 50, "delta": 0, "echo": 7, "foxtrot": 1}
    for name, delta in deltas.items():
        Service.objects.filter(service_name=name).update(calls_delta=delta)
    response = client.get(f"/?sort={sort}")
    assert response.status_code == 200
    assert names(response) == expected


def test_it_filters_by_two_unknown_statuses_of_the_same_severity(client, fleet_rows, make_service):
    make_service("golf", "zombie")
    make_service("hotel", "Running")  # not "running": an unknown status as well
    assert names(client.get("/?status=zombie&status=rebooting")) == ["foxtrot", "golf"]
    assert names(client.get("/?status=Running&status=zombie&sort=name")) == ["golf", "hotel"]


def test_it_pages_with_a_stable_order(client, make_service):
    for n in range(60):
        make_service(f"svc-{n:02d}", "running")
    first = names(client.get("/?sort=name&per_page=25"))
    second = names(client.get("/?sort=name&per_page=25&page=2"))
    third = client.get("/?sort=name&per_page=25&page=3")
    assert first == [f"svc-{n:02d}" for n in range(25)]
    assert second == [f"svc-{n:02d}" for n in range(25, 50)]
    assert names(third) == [f"svc-{n:02d}" for n in range(50, 60)]
    assert "51–60 of 60" in third.content.decode()


def test_it_sends_a_page_past_the_end_to_the_last_page(client, fleet_rows):
    response = client.get("/?per_page=25&page=9", follow=True)
    assert response.redirect_chain == [("/?per_page=25", 302)]  # 6 rows: one page
    assert len(names(response)) == 6


def test_it_corrects_the_address_of_a_partial_past_the_end(client, fleet_rows):
    response = client.get("/?per_page=25&page=9", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Replace-Url"] == "/?per_page=25"
    assert len(names(response)) == 6


@pytest.mark.parametrize(
    "query",
    [
        "sort=bogus",
        "per_page=7",
        "per_page=abc",
        "page=0",
        "page=-1",
        "page=1e9999",
        "status=" + "x" * 33,
        "infer_type=" + "x" * 33,
        "q=" + "x" * 201,
        "source=../etc",
        "q=%00",
    ],
)
def test_it_answers_bad_parameters_with_400_and_the_error(client, fleet_rows, query):
    response = client.get(f"/?{query}")
    body = response.content.decode()
    assert response.status_code == 400
    assert 'role="alert"' in body
    assert names(response) == []
    assert "<script>" not in body.split('role="alert"')[1]


@pytest.mark.parametrize("query", ["status=Running", "status=<script>", "infer_type=REAL TIME"])
def test_it_filters_on_any_printable_value_the_api_could_send(client, fleet_rows, query):
    response = client.get(f"/?{query}")
    assert response.status_code == 200
    assert names(response) == []
    assert "<script>" not in response.content.decode()


def test_it_links_tiles_of_unusual_statuses_to_views_that_work(client, make_service):
    make_service("odd", "Running_v2")
    body = client.get("/").content.decode()
    link = re.search(r'href="(/\?status=Running_v2)"', body).group(1)
    assert names(client.get(link)) == ["odd"]


def test_it_hides_services_of_disabled_sources(client, fleet_rows):
    Source.objects.filter(name="other").update(enabled=False)
    assert "foxtrot" not in names(client.get("/"))


def test_it_links_the_real_page_when_asked_for_one_past_the_end(client, make_service):
    for n in range(30):
        make_service(f"svc-{n:02d}")
    body = client.get("/?per_page=25&page=9", follow=True).content.decode()
    assert 'data-query="page=2&amp;per_page=25"' in body
    assert 'href="/?per_page=25"' in body  # "first" goes to the plain address, not "/?"
    assert 'href="/?"' not in body


def test_it_keeps_other_filters_in_sort_links_and_resets_the_page(client, fleet_rows):
    body = client.get("/?status=failed&q=b&page=1&per_page=25").content.decode()
    assert 'href="/?status=failed&amp;q=b&amp;sort=name&amp;per_page=25"' in body


def test_it_marks_the_sorted_column_for_screen_readers(client, fleet_rows):
    body = client.get("/?sort=-calls").content.decode()
    assert re.search(r'aria-sort="descending"[^>]*>\s*<a[^>]*>Invocations', body)


def _tiles(body: str) -> dict[str, int]:
    return {
        label: int(count.replace(",", ""))
        for count, label in re.findall(
            r'<span class="tile-count">([\d,]+)</span>\s*<span class="tile-label">([^<]+)</span>',
            body,
        )
    }


def test_it_counts_statuses_under_the_other_filters(client, fleet_rows):
    body = client.get("/?owner=owner-a&status=running").content.decode()
    assert _tiles(body) == {
        "concerning": 1,
        "unknown: rebooting": 1,
        "deploying": 1,
        "running": 1,
        "stopped": 1,
    }
    assert 'href="/?owner=owner-a"' in body  # the selected running tile toggles off


def test_it_labels_unknown_statuses_as_unknown(client, fleet_rows):
    body = client.get("/?status=rebooting").content.decode()
    assert 'class="badge badge-unknown">unknown: rebooting<' in body


def test_it_shows_deployment_progress(client, fleet_rows):
    body = client.get("/?status=deploying").content.decode()
    assert '<progress class="progress" value="40" max="100">' in body


def test_it_formats_counts_and_rates(client, make_service):
    make_service("busy", invocation_times=1234567, failed_times=12345)
    body = client.get("/").content.decode()
    assert "1,234,567" in body
    assert "12,345" in body
    assert "1.00%" in body


def test_it_renders_every_cell_of_a_row(client, make_service):
    """The rows are built in Python (service_table), not by the template: each cell, exactly."""
    make_service(
        "hot <b>&</b>",
        "failed",
        owner='team-"platform"-long',
        invocation_times=1000,
        failed_times=50,
        calls_delta=None,
        publish_at=datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
    )
    make_service("", invocation_times=None, failed_times=None, infer_type="", owner="")
    body = client.get("/?sort=name").content.decode()
    rows = re.findall(r"<tr data-service-id=.*?</tr>", body, re.S)
    hot, unnamed = rows[1], rows[0]
    assert '<span class="service-name">hot &lt;b&gt;&amp;&lt;/b&gt;</span>' in hot
    assert '<span class="badge badge-bad">failed</span>' in hot
    assert (
        '<td class="owner" title="team-&quot;platform&quot;-long"><code>team-&quot;pla…</code>'
        in hot
    )
    cells = re.findall(r'<td class="([^"]*)">([^<]*)</td>', hot)
    assert cells == [
        ("num", "1,000"),
        ("num", "50"),
        ("num hot", "5.00%"),
        ("num", "—"),
        ("num", "—"),  # instances and reason: no detail fetched yet
        ("reason", "—"),
    ]
    assert '<time datetime="2026-03-01T12:30:00Z" title="2026-03-01T12:30:00Z">' in hot
    assert '<span class="service-name">(no name)</span>' in unnamed
    assert "<td>—</td>" in unnamed and "<code>—</code>" in unnamed
    cells = re.findall(r'<td class="([^"]*)">([^<]*)</td>', unnamed)
    assert cells == [("num", "—")] * 5 + [("reason", "—")]


def test_it_keeps_a_constant_number_of_queries_as_rows_grow(
    client, make_service, django_assert_max_num_queries
):
    for n in range(5):
        make_service(f"a{n}")
    # The page's own, plus the alerts' bells, the stored details and the user's last visit
    # (read, and written on a first visit): a query each.
    with django_assert_max_num_queries(16) as small:
        client.get("/?per_page=200")
    for n in range(150):
        make_service(f"b{n}", "failed" if n % 3 else "running", owner=f"o{n % 7}")
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get("/?per_page=200")


def test_it_labels_stale_data_and_asks_for_a_poll(client, fleet_rows):
    source = Source.objects.get(name="fixture")
    old = timezone.now() - timedelta(minutes=10)
    Source.objects.filter(pk=source.pk).update(last_success_at=old, last_poll_at=old)
    body = client.get("/").content.decode()
    assert "fresh-stale" in body
    assert 'hx-trigger="load' in body


def test_it_shows_a_failing_source_in_red_with_its_error(client, fleet_rows):
    source = Source.objects.get(name="fixture")
    now = timezone.now()
    Source.objects.filter(pk=source.pk).update(
        last_success_at=now - timedelta(minutes=5),
        last_poll_at=now,
        failures_since_success=3,
        last_error="ModelArts.0202: token expired (HTTP 401)",
    )
    body = client.get("/").content.decode()
    assert "fresh-failing" in body
    assert "ModelArts.0202: token expired (HTTP 401)" in body
    assert "3 polls failed" in body


def test_it_does_not_ask_for_a_poll_when_data_is_fresh(client, fleet_rows):
    now = timezone.now()
    Source.objects.update(last_success_at=now, last_poll_at=now)
    assert 'hx-trigger="load' not in client.get("/").content.decode()


def a_while_ago(source: Source) -> None:
    """Make the source's last poll older than the refresh button's minimum gap."""
    earlier = timezone.now() - timedelta(seconds=10)
    Source.objects.filter(pk=source.pk).update(last_poll_at=earlier, last_success_at=earlier)


def test_it_asks_the_poller_for_a_poll_and_returns_the_partial(client, polled, source, clock):
    clock.advance(300)
    a_while_ago(source)
    response = client.post("/refresh/?status=running", headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.content.decode()
    assert '<section id="results"' in body
    assert "<html" not in body
    assert "sim: poll requested" in body
    # The web request only asked: the poller's next round polls, once.
    assert PollRun.objects.filter(source=source).count() == 1
    source.refresh_from_db()
    assert source.poll_requested_at is not None
    run_due_polls(print)
    run_due_polls(print)
    assert PollRun.objects.filter(source=source).count() == 2
    source.refresh_from_db()
    assert source.poll_requested_at is None
    running = Service.objects.filter(status="running").values_list("service_name", flat=True)
    assert set(names(client.get("/?status=running"))) <= set(running)


def test_it_looks_for_a_requested_polls_result_soon(client, polled, source):
    a_while_ago(source)
    client.post("/refresh/", headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' in client.get("/").content.decode()
    run_due_polls(print)
    assert 'hx-trigger="every 2s"' not in client.get("/").content.decode()


def test_it_says_when_no_poller_takes_a_requested_poll(client, polled, source):
    a_while_ago(source)
    client.post("/refresh/", headers={"HX-Request": "true"})
    assert "not taken by any poller" not in client.get("/").content.decode()
    Source.objects.filter(pk=source.pk).update(
        poll_requested_at=timezone.now() - timedelta(seconds=31)
    )
    body = client.get("/").content.decode()
    assert "not taken by any poller: is <code>manage.py poll_services</code> running?" in body


def test_two_pollers_take_one_request_once(client, polled, source):
    a_while_ago(source)
    client.post("/refresh/", headers={"HX-Request": "true"})
    stale_copy = Source.objects.get(pk=source.pk)  # what a second poller read before
    run_due_polls(print)
    with pytest.raises(SourceBusy):
        poll_source(stale_copy, requested=True)
    assert PollRun.objects.filter(source=source).count() == 2


def test_it_rate_limits_refresh_now(client, polled, source):
    body = client.post("/refresh/", headers={"HX-Request": "true"}).content.decode()
    assert "sim: polled 0 s ago" in body
    assert PollRun.objects.filter(source=source).count() == 1


def test_it_never_asks_for_another_poll_in_the_answer_to_one(client, polled, source):
    Source.objects.filter(pk=source.pk).update(
        claimed_by="elsewhere:1", claim_expires_at=timezone.now() + timedelta(minutes=1)
    )
    Source.objects.filter(pk=source.pk).update(last_poll_at=timezone.now() - timedelta(hours=1))
    body = client.post("/refresh/", {"due": "1"}, headers={"HX-Request": "true"}).content.decode()
    assert "a poll is already running" in body
    assert 'hx-trigger="load' not in body


def test_it_does_not_ask_for_a_poll_while_one_is_running(client, polled, source):
    Source.objects.filter(pk=source.pk).update(
        last_poll_at=timezone.now() - timedelta(hours=1),
        claimed_by="elsewhere:1",
        claim_expires_at=timezone.now() + timedelta(minutes=1),
    )
    assert 'hx-trigger="load' not in client.get("/").content.decode()


def test_it_redirects_a_refresh_without_javascript_back_to_the_view(client, polled):
    response = client.post("/refresh/?status=failed")
    assert response.status_code == 302
    assert response["Location"] == "/?status=failed"


def test_it_asks_only_for_overdue_sources_when_a_stale_page_asks(client, polled, source):
    client.post("/refresh/", {"due": "1"}, headers={"HX-Request": "true"})
    source.refresh_from_db()
    assert source.poll_requested_at is None  # just polled: not due
    Source.objects.filter(pk=source.pk).update(last_poll_at=timezone.now() - timedelta(hours=1))
    client.post("/refresh/", {"due": "1"}, headers={"HX-Request": "true"})
    source.refresh_from_db()
    assert source.poll_requested_at is not None


def test_it_refuses_refresh_by_get(client, db):
    assert client.get("/refresh/").status_code == 405


def test_it_tells_a_refresh_that_another_poll_is_running(client, polled, source):
    a_while_ago(source)
    Source.objects.filter(pk=source.pk).update(
        claimed_by="elsewhere:1", claim_expires_at=timezone.now() + timedelta(minutes=1)
    )
    body = client.post("/refresh/", headers={"HX-Request": "true"}).content.decode()
    assert "a poll is already running" in body


def test_it_explains_what_to_do_when_no_source_is_configured(client, db):
    body = client.get("/").content.decode()
    assert "No ModelArts source is configured" in body


@pytest.mark.parametrize("url", ["/", "/?status=failed", "/polls/", "/?per_page=3"])
def test_it_never_shows_template_comments(client, fleet_rows, url):
    body = client.get(url).content.decode()
    assert "{#" not in body and "#}" not in body and "{%" not in body


def test_it_links_each_name_to_its_service_page(client, fleet_rows):
    body = client.get("/?status=failed").content.decode()
    service_id = fleet_rows[1].service_id
    link = f"/services/{service_id}/?source=fixture"
    assert f'<a class="service-link" href="{link}"' in body
    assert client.get(f"/services/{service_id}/").status_code == 200


def test_it_marks_the_services_an_alert_fires_for(client, make_service):
    from dashboard.models import Alert, AlertRule

    loud, quiet = make_service("loud", "failed"), make_service("quiet", "failed")
    fine = make_service("fine")
    rule = AlertRule.objects.create(name="failing", condition="statuses", statuses=["failed"])
    for service, silenced in ((loud, False), (quiet, True)):
        Alert.objects.create(
            rule=rule,
            source=service.source,
            service=service,
            fingerprint=service.service_id[-8:],
            started_at=timezone.now(),
            silenced=silenced,
        )
    body = client.get("/?sort=name").content.decode()
    rows = dict(re.findall(r'<tr data-service-id="([^"]+)"[^>]*>(.*?)</tr>', body, re.S))
    assert 'class="tag tag-alert"' in rows[loud.service_id]
    assert "tag-alert" not in rows[quiet.service_id] + rows[fine.service_id]


def _counted(client, url: str) -> tuple[dict[str, int], int]:
    """The page's tiles, and how many times it counted the services per status."""
    with CaptureQueriesContext(connection) as queries:
        body = client.get(url).content.decode()
    counts = [q for q in queries.captured_queries if 'COUNT(*) AS "n"' in q["sql"]]
    return _tiles(body), len(counts)


def _stored_tiles() -> dict[str, int]:
    live = Service.objects.filter(gone_at=None).values_list("status", flat=True)
    return dict(Counter(live))


def test_tiles_are_counted_once_per_poll_and_again_when_the_next_one_lands(
    client, polled, source, clock
):
    tiles, counted = _counted(client, "/")
    assert counted == 1 and tiles == _stored_tiles()
    assert _counted(client, "/?sort=name&page=2") == (tiles, 0)
    # Each filter counts its own services.
    owner = Service.objects.values_list("owner", flat=True).first()
    mine, counted = _counted(client, f"/?owner={owner}")
    assert counted == 1 and sum(mine.values()) == Service.objects.filter(owner=owner).count()
    assert sum(mine.values()) < sum(tiles.values())
    # Detectors depend on the clock: counted on every page.
    assert _counted(client, "/?detect=stuck")[1] == 1
    assert _counted(client, "/?detect=stuck")[1] == 1

    clock.advance(3600)
    assert poll_source(source).ok
    after, counted = _counted(client, "/")
    assert counted == 1 and after == _stored_tiles() != tiles
    # A failed poll writes no service: the count stands.
    source.endpoint = "http://127.0.0.1:9"
    source.save()
    assert not poll_source(source).ok
    assert _counted(client, "/") == (after, 0)
