"""Hostile strings from the API: stored as sent, rendered inert and readable.

Anyone who can create a ModelArts service writes its name, description, owner, type and (through
a misbehaving backend) its status. Here a simulated API sends markup, script, `javascript:` URLs,
attribute breakers, template syntax, bidi and zero-width characters, control characters, emoji
and 10,000-character strings through the real poller; every page must show them as text.
(Metrics and CSV exports do not exist yet: their hostile-data tests come with them.)
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from chromium import in_chromium
from conftest import PROJECT_ID, TOKEN, TOKEN_ENV

from dashboard.devtools.simulator import Fleet, SimulatorServer
from dashboard.devtools.simulator.wire import ApiError
from dashboard.ingest.poll import poll_source
from dashboard.models import PollRun, Service, Source, StatusChange
from dashboard.statuses import UNKNOWN_SEVERITY
from dashboard.web.accounts import create_user

# With the browser tests' Playwright running in this thread, this thread's ORM calls are still
# plain synchronous code (see tests/test_browser.py).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Each payload that could run sets window.__pwned, so the browser test can tell.
SCRIPT = "<script>window.__pwned=1;alert(1)</script>"
IMG = '<img src=x onerror="window.__pwned=1;alert(1)">'
SVG = "<svg onload=window.__pwned=1>"
JS_URL = "javascript:window.__pwned=1;alert(1)"
ATTR = '" onmouseover="window.__pwned=1;alert(1)" x="'
SINGLE_QUOTED_ATTR = "' onfocus='window.__pwned=1' autofocus x='"
TEMPLATE = "{{ 7*7 }}{% debug %}"
RTL = "invoice-\u202egpj.exe"  # shows as "invoice-exe.jpg"
ZERO_WIDTH = "adm\u200bin\u200d-svc"
EMOJI = "🔥🚀"
CONTROL = "".join(chr(c) for c in [*range(1, 32), 0x7F, 0x85, 0x9B])  # everything but NUL
LONG = SCRIPT + "x" * 10_000
BOLD_STATUS = "<b>failed</b>"
ZERO_WIDTH_STATUS = "run\u200bning"  # looks like "running" but is not
ANSI_STATUS = "\x1b[31mfailed\x1b[0m"  # control characters, as a terminal-minded backend sends
ANSI_TYPE = "edge\x07\x08"
PADDED = "  padded-owner\t"

# Markup that must never reach a page as markup (raw, unescaped).
LIVE_FRAGMENTS = (
    "<script>window",
    "<img src=x",
    "<svg onload",
    "<b>failed",
    '" onmouseover="',
    "' onfocus='",
)
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "hx-get", "hx-post", "xlink:href"}


def item(n: int, **fields: object) -> dict:
    """A ListServices item with the usual fields and the given (hostile) strings."""
    return {
        "service_id": f"5e1ec7ed-0000-4000-8000-{n:012d}",
        "service_name": f"svc-{n}",
        "description": "",
        "tenant": "t" * 32,
        "project": PROJECT_ID,
        "owner": "owner",
        "publish_at": 1_767_139_200_000 + n * 60_000,
        "infer_type": "real-time",
        "workspace_id": "0",
        "status": "running",
        "progress": 100,
        "invocation_times": 1000 * n,
        "failed_times": n,
        "is_shared": False,
        "shared_count": 0,
        "operation_time": 1_767_225_600_000,
        "transition_at": 1_767_139_200_000,
        **fields,
    }


def hostile_items() -> list[dict]:
    return [
        item(
            1,
            service_name=SCRIPT,
            description=IMG,
            owner=ATTR,
            infer_type=JS_URL,  # longer than the column: truncated
            status=BOLD_STATUS,
        ),
        item(
            2,
            service_name=IMG,
            description=f"{SCRIPT} {SVG}",
            owner=SINGLE_QUOTED_ATTR,
            infer_type="{{ 7*7 }}",
            status="{{ 7*7 }}",
        ),
        item(
            3,
            service_name=TEMPLATE,
            description=TEMPLATE,
            owner=TEMPLATE,
            infer_type="{% debug %}",
        ),
        item(4, service_name=LONG, description=LONG, owner=LONG, infer_type=LONG, status=LONG),
        item(
            5,
            service_name=f"{RTL} {ZERO_WIDTH} {EMOJI}",
            description=CONTROL,
            owner=EMOJI,
            infer_type=ZERO_WIDTH,
            status=ZERO_WIDTH_STATUS,
        ),
        item(
            6,
            service_id=f"x'\">{SVG}",
            service_name=JS_URL,
            description=SVG,
            owner=f"own{CONTROL[:20]}er",
            infer_type=EMOJI,
            status="🔥",
        ),
        item(7, service_name=f"{ATTR}{SINGLE_QUOTED_ATTR}", description=JS_URL, owner=IMG[:64]),
        item(8, service_name="ansi", owner=PADDED, infer_type=ANSI_TYPE, status=ANSI_STATUS),
    ]


class HostileFleet(Fleet):
    """A fleet that lists exactly `listed`, or answers every list request with `error`."""

    def __init__(self, listed: list[dict], clock) -> None:
        super().__init__(size=0, clock=clock)
        self.listed = listed
        self.error: ApiError | None = None

    def items(self, now: float | None = None) -> list[dict]:
        return copy.deepcopy(self.listed)

    def select(self, query, now: float | None = None) -> tuple[int, list[dict]]:
        if self.error is not None:
            raise self.error
        items = self.items(now)
        return len(items), items[query.start : query.start + query.limit]

    def select_body(self, query, now: float | None = None) -> bytes:
        total, items = self.select(query, now)
        body = {"total_count": total, "count": len(items), "services": items}
        return json.dumps(body, separators=(",", ":")).encode()


def column_width(name: str) -> int:
    return Service._meta.get_field(name).max_length


@pytest.fixture
def hostile_fleet(clock) -> HostileFleet:
    return HostileFleet(hostile_items(), clock)


@pytest.fixture
def hostile_source(db, hostile_fleet, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    server = SimulatorServer(hostile_fleet, project_id=PROJECT_ID, auth="token", token=TOKEN)
    with server:
        yield Source.objects.create(
            name="hostile",
            endpoint=server.url,
            project_id=PROJECT_ID,
            token_env=TOKEN_ENV,
            interval_seconds=30,
        )


@dataclass
class Polled:
    source: Source
    fleet: HostileFleet
    ok: PollRun
    partial: PollRun
    failed: PollRun


@pytest.fixture
def hostile(hostile_source, hostile_fleet) -> Polled:
    """Three polls: every hostile item, then one more that cannot be read, then an error
    answer whose code and message are hostile too."""
    ok = poll_source(hostile_source)
    assert ok.ok, ok.error_message
    hostile_fleet.listed = [*hostile_items(), {"service_id": [SCRIPT], "service_name": IMG}]
    partial = poll_source(hostile_source)
    assert partial.ok and not partial.complete
    assert SCRIPT in partial.warnings
    hostile_fleet.error = ApiError(403, f"ModelArts.{SVG}", f"{IMG} {ATTR} {SCRIPT}")
    failed = poll_source(hostile_source)
    assert not failed.ok and IMG in failed.error_message
    hostile_source.refresh_from_db()
    assert SCRIPT in hostile_source.last_error
    return Polled(hostile_source, hostile_fleet, ok, partial, failed)


# Layer 1: through the real poller into the database


def test_it_stores_hostile_items_exactly_as_sent(hostile_source, hostile_fleet):
    run = poll_source(hostile_source)
    assert run.ok, run.error_message
    assert run.complete and run.warnings == ""
    assert run.fetched_count == run.created_count == len(hostile_fleet.listed)
    for sent in hostile_fleet.listed:
        stored = Service.objects.get(source=hostile_source, service_id=sent["service_id"])
        assert stored.raw == sent
        assert stored.description == sent["description"]  # a text column keeps everything
        for name in ("service_name", "owner", "infer_type", "status"):
            assert getattr(stored, name) == sent[name][: column_width(name)], name
    long = Service.objects.get(service_id=item(4)["service_id"])
    assert len(long.service_name) == column_width("service_name") < len(LONG)
    assert long.raw["service_name"] == LONG
    bold = Service.objects.get(service_id=item(1)["service_id"])
    assert (bold.status, bold.severity) == (BOLD_STATUS, UNKNOWN_SEVERITY)
    # Looks healthy, is not: an unknown status ranks with the urgent ones.
    lookalike = Service.objects.get(service_id=item(5)["service_id"])
    assert (lookalike.status, lookalike.severity) == (ZERO_WIDTH_STATUS, UNKNOWN_SEVERITY)


def test_it_updates_rows_to_other_hostile_values(hostile_source, hostile_fleet):
    assert poll_source(hostile_source).ok
    changed = hostile_items()
    changed[0].update(status=f"<i>{CONTROL[:8]}</i>", service_name=LONG[::-1], owner=RTL)
    changed[2].update(description=SVG * 200)
    hostile_fleet.listed = changed
    run = poll_source(hostile_source)
    assert run.ok, run.error_message
    assert run.updated_count == 2
    first = Service.objects.get(service_id=changed[0]["service_id"])
    assert first.raw == changed[0]
    assert first.status == changed[0]["status"]
    assert first.service_name == LONG[::-1][: column_width("service_name")]
    assert first.owner == RTL
    move = StatusChange.objects.get(service=first)
    assert (move.from_status, move.to_status) == (BOLD_STATUS, changed[0]["status"])
    assert Service.objects.get(service_id=changed[2]["service_id"]).description == SVG * 200


# Layer 2: every page shows them as text


class Markup(HTMLParser):
    """The elements of a page and the text inside its <script> elements."""

    def __init__(self, body: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.script_text: list[str] = []
        self._in_script = False
        self.feed(body)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, attrs))
        self._in_script = tag == "script"

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, attrs))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.script_text.append(data)


def assert_inert(body: str) -> None:
    """No injected element, event handler, script URL or inline script anywhere in the page."""
    for fragment in LIVE_FRAGMENTS:
        assert fragment not in body, f"unescaped {fragment!r}"
    markup = Markup(body)
    assert markup.script_text == [], "inline script"
    for tag, attrs in markup.elements:
        assert tag not in {"img", "iframe", "object", "embed", "base"}, tag
        for name, value in attrs:
            assert not name.startswith("on"), f"<{tag} {name}=…>"
            if name in URL_ATTRIBUTES and value:
                assert not value.strip().lower().startswith("javascript:"), f"<{tag} {name}>"
        if tag == "script":
            assert (dict(attrs).get("src") or "").startswith("/static/"), attrs


def shown(body: str, css_class: str) -> list[str]:
    """The text of every element with this exact class, as a reader sees it."""
    pattern = rf'<(?:span|td|div)[^>]* class="{css_class}"[^>]*>([^<]*)</(?:span|td|div)>'
    return [html.unescape(text) for text in re.findall(pattern, body)]


def stored(name: str) -> set[str]:
    return set(Service.objects.values_list(name, flat=True))


def test_the_table_shows_hostile_strings_as_text(client, hostile):
    response = client.get("/?per_page=200")
    body = response.content.decode()
    assert response.status_code == 200
    assert_inert(body)
    assert set(shown(body, "service-name")) == stored("service_name")
    badges = shown(body, "badge badge-unknown")
    assert f"unknown: {BOLD_STATUS}" in badges
    assert f"unknown: {ZERO_WIDTH_STATUS}" in badges
    assert "unknown: {{ 7*7 }}" in badges
    assert "unknown: &lt;b&gt;failed&lt;/b&gt;" in body
    assert "&lt;script&gt;window.__pwned=1;alert(1)&lt;/script&gt;" in body
    assert "&quot; onmouseover=&quot;" in body
    # Template syntax is text, never evaluated: no 49, no debug dump.
    assert TEMPLATE in html.unescape(body)
    assert "sql_queries" not in body
    # The owner's full value (a tooltip) and the type filter keep the hostile text, escaped.
    assert f'title="{html.escape(ATTR)}"' in body
    assert f'<option value="{html.escape(JS_URL[:32])}">' in body
    # The failing source's error (its code and message are hostile too) is shown as text.
    assert html.escape(f"ModelArts.{SVG}") in body


def test_the_tiles_show_hostile_statuses_as_text_and_link_to_them(client, hostile):
    body = client.get("/").content.decode()
    labels = shown(body, "tile-label")
    for status in (BOLD_STATUS, "{{ 7*7 }}", "🔥", ZERO_WIDTH_STATUS, ANSI_STATUS):
        assert f"unknown: {status}" in labels
    links = [
        html.unescape(link) for link in re.findall(r'<a class="tile [^"]*"\s+href="([^"]+)"', body)
    ]
    assert len(links) == len(labels) == len(stored("status"))
    broken = []
    for link in links:
        response = client.get(link)
        assert_inert(response.content.decode())
        if response.status_code != 200 or not shown(response.content.decode(), "service-name"):
            broken.append((link, response.status_code))
    assert broken == [], "tiles that link to an error or an empty table"


def test_every_type_and_owner_the_filter_offers_can_be_chosen(client, hostile):
    body = client.get("/").content.decode()
    broken = []
    for name in ("infer_type", "owner"):
        select = re.search(rf'<select name="{name}">(.*?)</select>', body, re.S)[1]
        offered = [html.unescape(v) for v in re.findall(r'<option value="([^"]*)"', select)]
        assert set(offered) == {""} | stored(name)
        for value in offered:
            response = client.get("/", {name: value})
            if response.status_code != 200 or not shown(response.content.decode(), "service-name"):
                broken.append((name, value, response.status_code))
    assert broken == [], "choices that lead to an error or an empty table"


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        (SCRIPT, [1, 2, 4]),
        ("{{ 7*7 }}", [3]),
        (EMOJI, [5]),
        (ZERO_WIDTH, [5]),
        (RTL, [5]),
        (SVG, [2, 6]),
        (JS_URL, [6, 7]),
    ],
)
def test_a_search_for_hostile_text_finds_it_and_shows_it_as_text(client, hostile, query, ids):
    for partial in (False, True):
        headers = {"HX-Request": "true"} if partial else {}
        response = client.get("/", {"q": query}, headers=headers)
        body = response.content.decode()
        assert response.status_code == 200
        assert_inert(body)
        assert ("<html" in body) is not partial
        sent = hostile_items()
        expected = {sent[n - 1]["service_name"][: column_width("service_name")] for n in ids}
        assert set(shown(body, "service-name")) == expected
        # The search box and the filter chip give the query back as text.
        assert f'value="{html.escape(query)}"' in body or partial
        assert f"search: {html.escape(query)}" in body


def test_the_htmx_partial_shows_hostile_strings_as_text(client, hostile):
    response = client.get("/", {"status": BOLD_STATUS}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert_inert(body)
    assert shown(body, "service-name") == [SCRIPT]
    assert f"status: {html.escape(BOLD_STATUS)}" in body


def test_the_poll_history_shows_hostile_errors_and_warnings_as_text(client, hostile):
    for headers in ({}, {"HX-Request": "true"}):
        for query in ("", "?outcome=failed", "?outcome=ok"):
            response = client.get(f"/polls/{query}", headers=headers)
            assert response.status_code == 200
            assert_inert(response.content.decode())
    body = client.get("/polls/").content.decode()
    assert shown(body, "error-message") == [hostile.failed.error_message]
    assert shown(body, "warning-message") == [hostile.partial.warnings]
    assert html.escape(SCRIPT) in body


def test_the_json_api_gives_hostile_strings_back_exactly_as_data(client, hostile):
    for path, query in [
        ("/api/services", {"per_page": 200}),
        ("/api/services", {"q": SCRIPT}),
        ("/healthz", {}),
    ]:
        response = client.get(path, query)
        assert response.status_code in (200, 503)
        assert response["Content-Type"] == "application/json"
        # Never sniffed as HTML, never allowed to run anything even if it were.
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "script-src 'self'" in response["Content-Security-Policy"]
    data = client.get("/api/services?per_page=200").json()
    by_id = {row["service_id"]: row for row in data["services"]}
    assert len(by_id) == Service.objects.count()
    for service in Service.objects.all():
        row = by_id[service.service_id]
        for name in ("service_name", "description", "owner", "infer_type", "status"):
            assert row[name] == getattr(service, name)
    health = json.loads(client.get("/healthz").content)
    assert health["sources"][0]["last_error"] == hostile.source.last_error


def test_the_admin_shows_hostile_strings_as_text(client, hostile):
    client.force_login(create_user("root", "a-long-password-for-tests-1", "admin"))
    pages = [
        "/admin/dashboard/service/",
        f"/admin/dashboard/service/?q={SCRIPT[:20]}",
        "/admin/dashboard/pollrun/",
        f"/admin/dashboard/pollrun/{hostile.failed.pk}/change/",
        f"/admin/dashboard/source/{hostile.source.pk}/change/",
    ]
    pages += [f"/admin/dashboard/service/{pk}/change/" for pk in stored("pk")]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.content.decode()
        for fragment in LIVE_FRAGMENTS:
            assert fragment not in body, (path, fragment)


# In a real browser: nothing runs, nothing opens


@pytest.mark.browser
def test_no_injected_script_runs_in_a_browser(hostile, live_server, operator):
    base, count = live_server.url, Service.objects.count()
    dialogs: list[str] = []
    seen: dict[str, object] = {}

    def steps(page) -> None:
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{base}/?per_page=200")
        rows = page.locator("#results tbody tr[data-service-id]")
        assert rows.count() == count
        for row in rows.all():
            row.locator(".service-name").hover()  # a link: opened one by one below
            for cell in (row.locator("td.owner"), row.locator(".badge")):
                cell.hover()
                cell.click()
        seen["names"] = page.locator("#results .service-name").all_inner_texts()
        ids = [row.get_attribute("data-service-id") for row in rows.all()]
        for service_id in ids:
            # Each service page, charts and raw item included, shows the same strings inert.
            page.goto(f"{base}/services/{service_id}/")
            page.locator("svg").first.hover()
            page.locator("details").last.click()

        for label in (f"unknown: {BOLD_STATUS}", "unknown: {{ 7*7 }}"):
            page.goto(f"{base}/")
            tile = page.locator("#tiles a.tile", has_text=label)
            tile.hover()
            tile.click()
            page.wait_for_selector("#tiles a.tile-selected")
            assert page.locator("#tiles a.tile-selected .tile-label").inner_text() == label

        page.get_by_role("link", name=re.compile("^Owner")).click()
        page.wait_for_url(re.compile(r"sort=owner"))
        page.wait_for_selector('th[aria-sort="ascending"]')
        page.get_by_role("link", name="Service", exact=True).click()
        page.wait_for_url(re.compile(r"sort=name"))

        page.goto(f"{base}/")
        page.get_by_placeholder("Search name, id, description").fill(SCRIPT)
        page.wait_for_url(re.compile(r"q="))
        page.wait_for_function(
            "n => document.querySelectorAll('#results tbody tr[data-service-id]').length === n",
            arg=3,
        )
        page.locator(".chip", has_text="search:").first.hover()

        page.goto(f"{base}/polls/")
        page.locator(".error-message").hover()
        page.locator(".warning-message").hover()

        seen["pwned"] = page.evaluate("window.__pwned")
        seen["injected"] = page.evaluate(
            """() => [...document.querySelectorAll('*')].filter(el =>
                [...el.attributes].some(a => a.name.startsWith('on'))
                || (el.getAttribute('href') || '').trim().toLowerCase().startsWith('javascript:')
                || el.matches('img[src="x"], .badge *, .tile-label *, .service-name *')).length"""
        )

    errors = in_chromium(base, operator.username, steps)
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert dialogs == []
    assert seen["pwned"] is None
    assert seen["injected"] == 0
    assert "{{ 7*7 }}{% debug %}" in seen["names"] and SCRIPT in seen["names"]


@pytest.mark.browser
def test_a_search_keeps_an_unknown_status_chosen_from_its_tile(hostile, live_server, operator):
    seen: dict[str, object] = {}

    def steps(page) -> None:
        page.goto(f"{live_server.url}/")
        page.locator("#tiles a.tile", has_text=f"unknown: {BOLD_STATUS}").click()
        page.wait_for_selector("#tiles a.tile-selected")
        page.get_by_placeholder("Search name, id, description").fill("script")
        page.wait_for_url(re.compile(r"q=script"))
        page.wait_for_selector("#results .chip >> text=search: script")
        seen["url"] = page.url
        seen["names"] = page.locator("#results .service-name").all_inner_texts()

    assert in_chromium(live_server.url, operator.username, steps) == []
    assert "status=%3Cb%3Efailed%3C%2Fb%3E" in seen["url"]
    assert seen["names"] == [SCRIPT]


def test_the_events_and_service_pages_show_hostile_strings_as_text(client, hostile):
    # A later poll gives every hostile service a status change to list.
    hostile.fleet.error = None
    hostile.fleet.listed = [{**item, "status": "running"} for item in hostile_items()]
    assert poll_source(hostile.source).ok
    assert StatusChange.objects.exclude(from_status="").exists()
    for url in ("/events/", "/events/?to=running"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_inert(response.content.decode())
    data = client.get("/api/events")  # data, exactly as sent, in a type no browser runs
    assert data["Content-Type"] == "application/json"
    assert SCRIPT in {event["service_name"] for event in data.json()["events"]}
    for service in Service.objects.all():
        response = client.get(f"/services/{service.service_id}/")
        assert response.status_code == 200
        assert_inert(response.content.decode())


def test_the_csv_and_metrics_carry_hostile_strings_as_data(client, anonymous_client, hostile):
    import csv
    import io

    from prometheus_client.parser import text_string_to_metric_families

    text = b"".join(client.get("/services.csv").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    names = {row["service_name"].removeprefix("'") for row in rows}
    assert names == stored("service_name")
    assert all(not row["service_name"].startswith(("=", "+", "@")) for row in rows)
    metrics = b"".join(anonymous_client.get("/metrics").streaming_content).decode()
    labels = {
        sample.labels.get("service_name")
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
    }
    assert SCRIPT in labels
