"""/metrics from the parts each successful poll stores (see ingest.exposition)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import PROJECT_ID, TOKEN, TOKEN_ENV
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from dashboard import exposition
from dashboard.devtools.simulator import Fleet, SimulatorServer
from dashboard.exposition import FAMILIES, SERIES_COLUMNS, Renderer, label_value
from dashboard.ingest.exposition import render_exposition
from dashboard.ingest.poll import poll_source
from dashboard.models import ExpositionPart, PollRun, Service, Source

SERVICE_LABELS = ("source", "service_id", "service_name", "infer_type", "owner")
STATUS = "modelarts_service_status"


@pytest.fixture(autouse=True)
def small_parts(monkeypatch):
    # A few services per part, so that the simulated fleets make many parts of each family.
    monkeypatch.setattr(exposition, "PART_SIZE", 7)


@pytest.fixture
def second(db, clock, monkeypatch):
    """A second source, its own simulated fleet behind its own server."""
    server = SimulatorServer(
        Fleet(size=40, seed=11, clock=clock), project_id=PROJECT_ID, auth="token", token=TOKEN
    ).start()
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    source = Source.objects.create(
        name="second", endpoint=server.url, project_id=PROJECT_ID, token_env=TOKEN_ENV
    )
    yield source
    server.stop()


def text_of(client: Client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.streaming
    return b"".join(response.streaming_content).decode("utf-8")


def families(text: str) -> dict[str, tuple[str, str, list]]:
    """Each family by name: its help, type and samples in a stable order. A family whose
    samples are split in two places of the text would appear twice: that fails here."""
    parsed = list(text_string_to_metric_families(text))
    names = [family.name for family in parsed]
    assert len(names) == len(set(names)), names
    return {
        family.name: (
            family.documentation,
            family.type,
            sorted(family.samples, key=lambda s: (s.name, sorted(s.labels.items()))),
        )
        for family in parsed
    }


def service_families(text: str) -> dict[str, tuple[str, str, list]]:
    return {name: f for name, f in families(text).items() if name.startswith("modelarts_service")}


class Made(Collector):
    """The service families as prometheus_client itself writes them, from rows shaped as
    exposition.SERIES_COLUMNS."""

    def __init__(self, rows: list[tuple]):
        self.rows = rows

    def collect(self):
        made = {
            family.name: (CounterMetricFamily if family.type == "counter" else GaugeMetricFamily)(
                family.name.removesuffix("_total"),
                family.documentation,
                labels=[*SERVICE_LABELS, *(["status"] if family.column is None else [])],
            )
            for family in FAMILIES
        }
        for row in self.rows:
            labels = [label_value(value) for value in row[:5]]
            for family in FAMILIES:
                if family.column is None:
                    made[family.name].add_metric([*labels, label_value(row[5])], 1)
                elif row[family.column] is not None:
                    made[family.name].add_metric(labels, row[family.column])
        return list(made.values())


def reference() -> str:
    """What the scrape's service families should hold: every visible service, now."""
    shown = Service.objects.filter(gone_at=None, source__enabled=True)
    return generate_latest(Made(list(shown.values_list(*SERIES_COLUMNS)))).decode("utf-8")


def test_it_serves_what_prometheus_client_would_across_sources_and_parts(
    polled, source, second, anonymous_client
):
    assert poll_source(second).ok
    for each in (source, second):
        parts = ExpositionPart.objects.filter(source=each, family=STATUS)
        assert parts.count() > 2
    scraped = service_families(text_of(anonymous_client))
    assert scraped == families(reference())
    assert len(scraped[STATUS][2]) == Service.objects.filter(gone_at=None).count()


def test_it_reads_stored_parts_in_a_few_queries(
    polled, source, second, anonymous_client, django_assert_max_num_queries
):
    assert poll_source(second).ok
    # Session-less: the sources, every stored part at once, the alerts per rule.
    with django_assert_max_num_queries(3):
        text_of(anonymous_client)


def test_it_serves_the_stored_parts_not_the_rows_between_polls(polled, anonymous_client):
    service = Service.objects.filter(gone_at=None).first()
    Service.objects.filter(pk=service.pk).update(status="Made-Up")  # not by a poll
    samples = service_families(text_of(anonymous_client))[STATUS][2]
    [shown] = [s for s in samples if s.labels["service_id"] == service.service_id]
    assert shown.labels["status"] == service.status


def test_a_new_poll_replaces_the_parts(polled, source, clock, anonymous_client):
    before = text_of(anonymous_client)
    clock.advance(6 * 3600)  # the simulated fleet moves on
    assert poll_source(source).ok
    after = text_of(anonymous_client)
    assert service_families(after) != service_families(before)
    assert service_families(after) == families(reference())
    assert set(ExpositionPart.objects.values_list("rendered_at", flat=True)) == {
        Source.objects.get(pk=source.pk).last_success_at
    }


def test_an_unchanged_poll_writes_no_part(
    polled, source, anonymous_client, django_assert_max_num_queries
):
    before = list(ExpositionPart.objects.order_by("pk").values_list("pk", "rendered_at", "text"))
    with CaptureQueriesContext(connection) as queries:
        again = poll_source(source)  # the simulated fleet's clock stands still: nothing changed
    assert again.ok
    assert (again.created_count, again.updated_count, again.gone_count) == (0, 0, 0)
    written = [q["sql"] for q in queries.captured_queries if "dashboard_expositionpart" in q["sql"]]
    assert not [sql for sql in written if sql.startswith(("INSERT", "UPDATE", "DELETE"))]
    assert list(ExpositionPart.objects.order_by("pk").values_list("pk", "rendered_at", "text")) == (
        before
    )
    with django_assert_max_num_queries(3):  # still current: read as stored
        scraped = text_of(anonymous_client)
    assert service_families(scraped) == families(reference())


def test_a_renamed_source_is_shown_under_its_new_name_before_its_next_poll(
    polled, source, anonymous_client
):
    Source.objects.filter(pk=source.pk).update(name="renamed")
    scraped = service_families(text_of(anonymous_client))
    assert labelled_sources(scraped) == {"renamed"}
    assert scraped == families(reference())
    assert poll_source(source).ok  # unchanged, but its parts carry the old name: rendered anew
    assert set(ExpositionPart.objects.values_list("source_name", flat=True)) == {"renamed"}
    assert service_families(text_of(anonymous_client)) == scraped


def test_a_failed_poll_keeps_the_previous_parts(polled, source, clock, monkeypatch):
    kept = list(ExpositionPart.objects.order_by("pk").values_list("family", "part", "text"))
    clock.advance(6 * 3600)
    monkeypatch.setenv(TOKEN_ENV, "a-revoked-token")
    failed = poll_source(source)
    assert not failed.ok
    assert list(ExpositionPart.objects.order_by("pk").values_list("family", "part", "text")) == (
        kept
    )
    scraped = service_families(text_of(Client()))
    assert len(scraped[STATUS][2]) == polled.fetched_count


def test_a_disabled_sources_series_disappear(polled, source, second, anonymous_client):
    assert poll_source(second).ok
    Source.objects.filter(pk=source.pk).update(enabled=False)
    text = text_of(anonymous_client)
    assert labelled_sources(service_families(text)) == {"second"}
    assert "sim" not in labelled_sources(families(text))
    Source.objects.filter(pk=source.pk).update(enabled=True)
    assert labelled_sources(service_families(text_of(anonymous_client))) == {"sim", "second"}


def labelled_sources(parsed: dict[str, tuple[str, str, list]]) -> set[str]:
    return {s.labels.get("source") for _, _, samples in parsed.values() for s in samples}


def test_every_worker_answers_the_same(polled, source, clock):
    one, other = Client(), Client()
    assert text_of(one) == text_of(other)
    clock.advance(6 * 3600)
    assert poll_source(source).ok
    assert text_of(other) == text_of(one)


def test_it_renders_a_source_from_its_rows_when_a_poll_wrote_them_without_parts(make_service, run):
    # Parts of an earlier poll, then a poll (of an older version, say) that wrote rows only.
    source = make_service("alpha").source
    render_exposition(source, run)
    make_service("beta")
    later = PollRun.objects.create(
        source=source, started_at=run.started_at + timedelta(seconds=30), ok=True, created_count=1
    )
    assert service_names(text_of(Client())) == {"alpha", "beta"}
    # Once a poll has stored them again, they are what a scrape reads.
    render_exposition(source, later)
    make_service("gamma")  # not by a poll
    assert service_names(text_of(Client())) == {"alpha", "beta"}


def service_names(text: str) -> set[str]:
    return {s.labels["service_name"] for s in service_families(text)[STATUS][2]}


def test_it_keeps_empty_families_for_a_source_without_services(db, anonymous_client):
    source = Source.objects.create(name="empty", endpoint="http://127.0.0.1:9", project_id="p")
    run = PollRun.objects.create(source=source, started_at=timezone.now(), ok=True)
    render_exposition(source, run)
    Source.objects.filter(pk=source.pk).update(last_success_at=run.started_at)
    assert ExpositionPart.objects.filter(source=source).count() == len(FAMILIES)
    scraped = service_families(text_of(anonymous_client))
    assert set(scraped) == {family.name.removesuffix("_total") for family in FAMILIES}
    assert all(samples == [] for _, _, samples in scraped.values())


HOSTILE_VALUES = [
    'quote " and \\" escaped',
    "back\\slash\\",
    "new\nline\r\n",
    "lone \ud800 surrogate \udfff",
    "x" * 10_000,
    "y" * 199 + "😀" * 3,
    "}\n# TYPE evil gauge\nevil 1",
    "",
]


def test_hostile_label_values_are_written_as_prometheus_client_writes_them():
    rows = [
        ("src" + value[:5], f"id-{n}", value, value[:40], value[:8], value[:30], n, 1, None, 2**60)
        for n, value in enumerate(HOSTILE_VALUES)
    ]
    text = "".join(
        family.header() + lines
        for family, lines in zip(FAMILIES, Renderer().render(rows), strict=True)
    )
    text.encode("utf-8")  # no lone surrogate is left to fail the scrape
    assert text == generate_latest(Made(rows)).decode("utf-8")
    parsed = families(text)
    assert len(parsed[STATUS][2]) == len(HOSTILE_VALUES)
    assert max(len(s.labels["service_name"]) for s in parsed[STATUS][2]) == exposition.LABEL_MAX
    assert "evil" not in parsed


def test_hostile_names_polled_and_stored_stay_valid(make_service, run, anonymous_client):
    for n, value in enumerate(HOSTILE_VALUES):
        if "\ud800" not in value:  # no database stores a lone surrogate
            make_service(value[:256] or f"empty-{n}", value[:32] or "running", owner=value[:64])
    source = Source.objects.get(name="fixture")
    render_exposition(source, run)
    Source.objects.filter(pk=source.pk).update(last_success_at=run.started_at)
    assert service_families(text_of(anonymous_client)) == families(reference())
