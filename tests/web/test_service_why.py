"""The service page's "Why" panel (ModelArts' stored detail of the service), the request for a
fresh fetch (POST /services/<id>/detail), the console link and the merged timeline.

The web never calls ModelArts: these tests write ServiceDetail rows as the poller would.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from django.db import DatabaseError
from django.test import Client

from dashboard.models import PollRun, ServiceDetail, Source, StatusChange
from dashboard.queries.details import region_of, timeline
from dashboard.web import service_page
from dashboard.web.accounts import create_user

NOW = datetime(2026, 1, 3, 12, 0, 30, tzinfo=UTC)
HTMX = {"HX-Request": "true"}
HOSTILE = "<script>alert(1)</script>"
SECRET = "sk-live-7f3a9c1e5b2d4f60-do-not-show"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("django.utils.timezone.now", lambda: clock.now)
    return clock


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).isoformat()


def store(service, **fields) -> ServiceDetail:
    """A detail as the poller stores it after a good fetch 10 s ago, plus `fields`."""
    values = {
        "fetched_at": NOW - timedelta(seconds=10),
        "attempted_at": NOW - timedelta(seconds=10),
        "running_instances": 2,
        "desired_instances": 2,
    }
    values.update(fields)
    return ServiceDetail.objects.create(service=service, **values)


def page(client: Client, service, **headers: str) -> str:
    response = client.get(f"/services/{service.service_id}/", headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def why_of(body: str) -> str:
    return re.search(r'<section id="why".*?</section>', body, re.S).group(0)


def panel(client: Client, service) -> str:
    url = f"/services/{service.service_id}/?panel=why&source=fixture"
    response = client.get(url, headers=HTMX)
    assert response.status_code == 200
    return response.content.decode()


def ask(client: Client, service, **headers: str):
    return client.post(f"/services/{service.service_id}/detail?source=fixture", headers=headers)


def asks(body: str) -> bool:
    return "hx-post=" in body and "data-ask-detail" in body


def signed_in(role: str) -> Client:
    client = Client()
    client.force_login(create_user(f"{role}-user", "a-password-for-tests-only", role))
    return client


def test_it_shows_what_modelarts_said_first_on_the_page(clock, make_service, client):
    service = make_service("broken", "failed")
    store(
        service,
        error_msg="Image pull failed: manifest unknown",
        running_instances=1,
        desired_instances=3,
        requests_per_minute=1234,
        access_address="https://infer.example/v1/x",
        model_configs=[
            {
                "model_name": "resnet",
                "model_version": "1.0.2",
                "specification": "modelarts.vm.cpu.2u",
                "instance_count": 3,
                "weight": 100,
                "status": "failed",
                "env_names": ["MODEL_PATH", "BATCH_SIZE"],
                "running_instances": 1,
                "desired_instances": 3,
                "cpu_core_usage": 1.5,
                "cpu_memory_usage": 2048,
                "gpu_usage": None,
            }
        ],
        events=[
            {"type": "abnormal", "info": "Container crashed: OOMKilled", "at": ago(60)},
            {"type": "normal", "info": "Instance scheduled", "at": ago(120)},
        ],
        update_logs=[
            {
                "at": ago(3600),
                "result": "FAIL",
                "models": [{"model_name": "resnet", "model_version": "1.0.2"}],
                "success": 0,
                "failed": 3,
            },
            {"at": ago(7200), "result": "SUCCESS", "models": [], "success": 3, "failed": 0},
        ],
    )
    body = page(client, service)
    why = why_of(body)
    assert body.index('id="why"') < body.index('id="calls-heading"')
    assert "Image pull failed: manifest unknown" in why
    assert 'class="why-below"' in why and "1 / 3" in why and "below desired" in why
    assert "1,234" in why and "https://infer.example/v1/x" in why
    for text in (
        "resnet",
        "1.0.2",
        "modelarts.vm.cpu.2u",
        "(1 of 3 running)",
        "CPU 1.5 cores · 2,048 MB",
    ):
        assert text in why
    assert "<code>MODEL_PATH</code>, <code>BATCH_SIZE</code>" in why
    assert "Container crashed: OOMKilled" in why
    assert "Instance scheduled" not in why  # the panel lists abnormal events only
    assert '<span class="badge badge-bad">FAIL</span>' in why
    assert '<span class="badge badge-ok">SUCCESS</span>' in why
    fetched = NOW - timedelta(seconds=10)
    assert f'title="{fetched.isoformat().replace("+00:00", "Z")}"' in why
    assert ">10 s ago</time>" in why


def test_it_lists_the_latest_five_abnormal_events(clock, make_service, client):
    service = make_service("noisy", "failed")
    events = [{"type": "abnormal", "info": f"crash #{n}", "at": ago(60 * n)} for n in range(1, 9)]
    store(service, events=events)
    why = why_of(page(client, service))
    assert re.findall(r"crash #(\d+)", why) == ["1", "2", "3", "4", "5"]


def test_it_never_shows_the_values_of_environment_variables(clock, make_service, client):
    service = make_service("secretive")
    model = {
        "model_name": "m",
        "env_names": ["DB_PASSWORD"],
        # What a careless poller or a future API field could leave behind: values.
        "envs": {"DB_PASSWORD": SECRET},
        "env": [{"name": "TOKEN", "value": SECRET}],
    }
    store(
        service,
        model_configs=[model, {"model_name": "n", "env_names": {"API_KEY": SECRET}}],
        update_logs=[{"at": ago(60), "result": "SUCCESS", "models": [model]}],
    )
    for body in (page(client, service), panel(client, service)):
        assert SECRET not in body
        assert "<code>DB_PASSWORD</code>" in body
        assert "<code>API_KEY</code>" in body  # a mapping shows its names only


def test_it_shows_an_api_error_with_its_code_and_keeps_the_last_good_data(
    clock, make_service, client
):
    service = make_service("flaky", "failed")
    store(
        service,
        attempted_at=NOW - timedelta(seconds=5),
        fetched_at=NOW - timedelta(minutes=10),
        error_code="ModelArts.3505",
        error_message="Too many requests.",
        error_msg="Out of quota",
    )
    why = why_of(page(client, service))
    assert "Could not fetch the detail: ModelArts.3505: Too many requests." in why
    assert "Out of quota" in why  # the last good data, with its time
    assert ">10 min ago</time>" in why


def test_it_shows_an_error_rather_than_empty_data_when_nothing_was_fetched(
    clock, make_service, client
):
    service = make_service("unreachable")
    store(service, fetched_at=None, error_code="unreachable", error_message="timed out")
    why = why_of(page(client, service))
    assert "Could not fetch the detail: unreachable: timed out" in why
    assert "Nothing was fetched before." in why
    assert "Asking ModelArts" not in why and "Instances running" not in why


def test_it_says_when_modelarts_no_longer_knows_the_service(clock, make_service, client):
    service = make_service("deleted")
    store(service, not_found=True, error_code="ModelArts.3502", error_message="not found")
    why = why_of(page(client, service))
    assert "ModelArts no longer knows this service (ModelArts.3502)" in why
    assert "Could not fetch the detail" not in why


def test_it_asks_modelarts_when_never_fetched(clock, make_service, client):
    service = make_service("new")
    why = why_of(page(client, service))
    assert "Asking ModelArts…" in why
    assert f'hx-post="/services/{service.service_id}/detail?source=fixture"' in why
    assert 'hx-trigger="load delay:200ms"' in why
    assert not ServiceDetail.objects.exists()  # a GET only reads


def test_it_does_not_ask_again_for_a_fresh_detail(clock, make_service, client):
    service = make_service("fresh")
    store(service)
    body = page(client, service)
    assert not asks(body)
    assert "every 15s" in why_of(body)  # with the page's pace (DASHBOARD_REFRESH_SECONDS)


def test_it_asks_again_once_the_detail_is_older_than_its_max_age(clock, make_service, client):
    service = make_service("aging")
    store(service)
    clock.advance(55)  # 65 s old
    assert asks(page(client, service))


def test_it_waits_after_a_failed_try_instead_of_asking_at_once(clock, make_service, client):
    service = make_service("failing api")
    old = NOW - timedelta(minutes=10)
    store(service, fetched_at=old, attempted_at=NOW, error_code="unreachable")
    assert not asks(page(client, service))


def test_it_looks_every_2_s_while_a_fetch_is_pending_and_never_asks(clock, make_service, client):
    service = make_service("pending")
    store(service, fetched_at=None, attempted_at=None, requested_at=NOW - timedelta(seconds=3))
    body = page(client, service)
    assert 'hx-trigger="every 2s"' in why_of(body)
    assert "fetching…" in body
    assert not asks(body)
    assert 'hx-trigger="every 2s"' in panel(client, service)


def test_it_says_when_no_poller_takes_the_request(clock, make_service, client):
    service = make_service("orphan")
    store(service, requested_at=NOW - timedelta(seconds=45))
    why = why_of(page(client, service))
    assert "not taken by any poller" in why
    assert "every 15s" in why  # no point looking every 2 s for a poller that is not there


def test_a_post_asks_once_and_never_polls(clock, make_service, client):
    service = make_service("asked")
    response = ask(client, service, **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('<section id="why"') == 1 and "<html" not in body
    assert not asks(body)  # the answer never asks again: no loops
    assert 'hx-trigger="every 2s"' in body
    detail = ServiceDetail.objects.get(service=service)
    assert detail.requested_at == NOW
    clock.advance(3)
    assert ask(client, service, **HTMX).status_code == 200
    detail.refresh_from_db()
    assert detail.requested_at == NOW  # the first request's time stays
    # Nothing was fetched or polled: only the poller does that.
    assert (detail.fetched_at, detail.attempted_at) == (None, None)
    assert not PollRun.objects.exists()
    assert Source.objects.get(name="fixture").poll_requested_at is None


def test_a_post_without_javascript_goes_back_to_the_page(clock, make_service, client):
    service = make_service("no js")
    response = ask(client, service)
    assert response.status_code == 302
    assert response["Location"] == f"/services/{service.service_id}/?source=fixture"
    assert ServiceDetail.objects.get(service=service).requested_at == NOW


def test_the_answer_to_a_post_never_asks_even_when_the_request_failed(
    clock, make_service, client, monkeypatch
):
    service = make_service("busy db")

    def busy(*args, **kwargs):
        raise DatabaseError("database is locked")

    monkeypatch.setattr(ServiceDetail, "request", busy)
    body = ask(client, service, **HTMX).content.decode()
    assert "The database is busy" in body
    assert not asks(body)


def test_it_asks_nothing_for_a_disabled_source(clock, make_service, client):
    service = make_service("disabled")
    Source.objects.filter(pk=service.source_id).update(enabled=False)
    assert not asks(page(client, service))
    body = ask(client, service, **HTMX).content.decode()
    assert "is disabled" in body
    assert not ServiceDetail.objects.filter(requested_at__isnull=False).exists()


def test_a_viewer_may_ask_but_an_anonymous_visitor_may_not(clock, make_service, anonymous_client):
    service = make_service("shared")
    assert ask(anonymous_client, service, **HTMX).status_code == 302  # to the login page
    assert not ServiceDetail.objects.exists()
    assert ask(signed_in("viewer"), service, **HTMX).status_code == 200
    assert ServiceDetail.objects.get(service=service).requested_at == NOW


def test_it_answers_404_for_an_unknown_service(clock, make_service, client):
    service = make_service("known")
    assert client.post("/services/no-such-service/detail", headers=HTMX).status_code == 404
    assert client.post(f"/services/{service.service_id}/detail?source=other").status_code == 404
    assert client.get("/services/no-such-service/?panel=why", headers=HTMX).status_code == 404
    assert client.get(f"/services/{service.service_id}/detail").status_code == 405
    assert not ServiceDetail.objects.exists()


def test_it_serves_the_panel_alone_to_htmx_and_the_page_otherwise(clock, make_service, client):
    service = make_service("partial")
    store(service)
    url = f"/services/{service.service_id}/?panel=why&source=fixture"
    partial = client.get(url, headers=HTMX)
    assert partial.content.decode().lstrip().startswith('<section id="why"')
    assert "HX-Request" in partial["Vary"]
    whole = client.get(url)
    assert "<html" in whole.content.decode() and "HX-Request" in whole["Vary"]
    assert client.get(f"/services/{service.service_id}/?panel=nope").status_code == 400


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.texts.append(data)


def test_it_shows_hostile_strings_only_escaped(clock, make_service, client):
    service = make_service("hostile", "failed")
    store(
        service,
        error_msg=HOSTILE,
        error_code=f"E{HOSTILE}",
        error_message=HOSTILE,
        access_address=HOSTILE,
        model_configs=[{"model_name": HOSTILE, "env_names": [HOSTILE], "weight": "<b>"}],
        events=[
            {"type": HOSTILE, "info": HOSTILE, "at": ago(5)},
            {"type": "abnormal", "info": HOSTILE, "at": ago(6)},
            {"type": "<b>", "info": "<img src=x onerror=alert(1)>", "at": "<i>"},
        ],
        update_logs=[{"at": "<i>", "result": HOSTILE, "models": [{"model_name": HOSTILE}]}],
    )
    body = page(client, service)
    for raw in (HOSTILE, "<b>", "<img", "<i>"):
        assert raw not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in why_of(body)
    markup = _Markup()
    markup.feed(body)
    for tag, attrs in markup.tags:
        assert "style" not in attrs, (tag, attrs)
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        if tag == "script":
            assert attrs.get("src", "").startswith("/static/"), attrs
    assert sum(HOSTILE in text for text in markup.texts) >= 5  # shown as text, as sent


def test_it_links_to_the_console_with_the_region_of_the_source(clock, make_service, client):
    source = Source.objects.create(
        name="north",
        endpoint="https://modelarts.cn-north-4.myhuaweicloud.com",
        project_id="p",
        region="cn-north-4",
    )
    service = make_service("linked", source=source)
    why = why_of(page(client, service))
    expected = (
        "https://console.huaweicloud.com/modelarts/?region=cn-north-4"
        f"#/dashboard/realtime/{service.service_id}"
    )
    assert f'href="{expected}"' in why
    assert "Open in the ModelArts console" in why


def test_it_finds_the_region_in_the_endpoint_host(db):
    def source(endpoint: str, region: str = "") -> Source:
        return Source(name="s", endpoint=endpoint, project_id="p", region=region)

    assert region_of(source("https://modelarts.ap-southeast-1.myhuaweicloud.com")) == (
        "ap-southeast-1"
    )
    assert region_of(source("https://MODELARTS.cn-east-3.myhuaweicloud.cn:443/")) == "cn-east-3"
    assert region_of(source("https://example.com", "cn-north-4_analytics")) == "cn-north-4"
    assert region_of(source("http://127.0.0.1:9")) == ""
    assert region_of(source("https://modelarts.evil.example.com")) == ""


def test_it_quotes_the_id_in_the_console_link_and_leaves_it_out_without_a_region(
    clock, make_service, client, settings
):
    settings.DASHBOARD_CONSOLE_URL = "https://console.example/{region}/{service_id}?x={y}"
    source = Source.objects.create(
        name="east", endpoint="https://modelarts.cn-east-3.myhuaweicloud.com", project_id="p"
    )
    service = make_service("odd", source=source)
    service.service_id = "a b/c?d#e"
    assert service_page.console_url(service) == (
        "https://console.example/cn-east-3/a%20b%2Fc%3Fd%23e?x={y}"
    )
    plain = make_service("no region")  # the fixture source: http://127.0.0.1:9
    assert service_page.console_url(plain) == ""
    assert "Open in the ModelArts console" not in page(client, plain)


def test_it_merges_modelarts_events_into_the_timeline(clock, make_service, client):
    service = make_service("merged", "failed", first_seen_at=NOW - timedelta(days=2))
    run = PollRun.objects.create(source=service.source, started_at=NOW, ok=True)
    changes = [
        StatusChange.objects.create(
            service=service,
            source=service.source,
            poll_run=run,
            at=NOW - timedelta(minutes=minutes),
            from_status=from_status,
            to_status=to_status,
        )
        for minutes, from_status, to_status in [(50, "running", "concerning"), (10, "", "failed")]
    ]
    store(
        service,
        events=[
            {"type": "abnormal", "info": "crashed", "at": ago(5 * 60)},
            {"type": "normal", "info": "scaled", "at": ago(30 * 60)},
            {"type": "abnormal", "info": "too old", "at": ago(3 * 86400)},
            {"type": "normal", "info": "undated", "at": None},
        ],
    )
    body = page(client, service)
    listed = re.search(r'<ol class="changes">.*?</ol>', body, re.S).group(0)
    items = re.findall(r'<li (?:data-change-id="(\d+)"|class="([a-z -]+)")', listed)
    assert items == [
        ("", "event event-abnormal"),
        (str(changes[1].pk), ""),
        ("", "event"),
        (str(changes[0].pk), ""),
        ("", "event"),  # undated, last
    ]
    assert listed.index("crashed") < listed.index("scaled") < listed.index("undated")
    assert "too old" not in listed  # before the 24 h range
    assert "time not given" in listed


def test_timeline_orders_both_kinds_newest_first():
    class Change:
        def __init__(self, minutes: int, to_status: str) -> None:
            self.at, self.from_status, self.to_status = (
                NOW - timedelta(minutes=minutes),
                "",
                to_status,
            )

    def event(minutes: int | None, kind: str = "normal") -> dict:
        at = None if minutes is None else NOW - timedelta(minutes=minutes)
        return {"type": kind, "info": f"e{minutes}", "at": at, "abnormal": kind == "abnormal"}

    rows = timeline(
        [Change(20, "failed"), Change(5, "running")],
        [event(None), event(10, "abnormal"), event(5), event(90)],
        since=NOW - timedelta(hours=1),
    )
    assert [(row["kind"], row["at"]) for row in rows] == [
        ("status", NOW - timedelta(minutes=5)),
        ("event", NOW - timedelta(minutes=5)),
        ("event", NOW - timedelta(minutes=10)),
        ("status", NOW - timedelta(minutes=20)),
        ("event", None),
    ]
    assert [row["abnormal"] for row in rows] == [False, False, True, True, False]
    assert rows[2]["info"] == "e10" and "change" in rows[0]


def test_it_reads_a_constant_number_of_queries_however_many_events(
    clock, make_service, client, django_assert_max_num_queries
):
    service = make_service("chatty", "failed")
    detail = store(service)

    def grow(n: int) -> None:
        detail.events = [
            {"type": "abnormal" if i % 2 else "normal", "info": f"e{i}", "at": ago(i)}
            for i in range(n)
        ]
        detail.update_logs = [{"at": ago(i), "result": "FAIL", "models": []} for i in range(n)]
        detail.model_configs = [{"model_name": f"m{i}", "env_names": ["A"]} for i in range(n)]
        detail.save()

    grow(2)
    with django_assert_max_num_queries(30) as small:
        page(client, service)
        panel(client, service)
    grow(500)
    with django_assert_max_num_queries(len(small.captured_queries)):
        body = page(client, service)
        panel(client, service)
    assert body.count('<li class="event') == 500
