"""A service's life across snapshots, against an API whose list each test writes itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from conftest import PROJECT_ID
from local_http import LocalHTTPServer, QuietHandler

from dashboard.ingest import poll as poll_module
from dashboard.ingest import snapshot, windows
from dashboard.ingest.poll import poll_source
from dashboard.models import PollRun, Service, ServiceSample, Source, StatusChange


def item(name: str, *, status: str = "running", calls: int = 10, failures: int = 1) -> dict:
    return {
        "service_id": f"00000000-0000-4000-8000-{sum(map(ord, name)):012d}",
        "service_name": name,
        "status": status,
        "infer_type": "real-time",
        "owner": "owner-a",
        "invocation_times": calls,
        "failed_times": failures,
    }


class Listing(list):
    """The API's service list: what a test puts in it is what the next poll reads."""

    url = ""


@pytest.fixture
def listing() -> Iterator[Listing]:
    items = Listing()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            first_page = "offset=0" in self.path or "offset" not in self.path
            services = items if first_page else []
            body = {"total_count": len(items), "count": len(services), "services": services}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with LocalHTTPServer(Handler) as server:
        items.url = server.url
        yield items


@pytest.fixture
def api_source(db, listing: Listing) -> Source:
    return Source.objects.create(
        name="listed",
        endpoint=listing.url,
        project_id=PROJECT_ID,
        auth_kind=Source.AuthKind.NONE,
    )


def poll(source: Source, items: list[dict], listing: Listing) -> PollRun:
    listing[:] = items
    run = poll_source(source)
    assert run.ok, run.error_message
    return run


def test_a_gone_service_that_returns_unchanged_comes_back(api_source, listing):
    alpha, bravo = item("alpha"), item("bravo")
    poll(api_source, [alpha, bravo], listing)
    poll(api_source, [alpha], listing)
    assert Service.objects.get(service_name="bravo").gone_at is not None
    run = poll(api_source, [alpha, bravo], listing)  # exactly as it was
    assert Service.objects.get(service_name="bravo").gone_at is None
    assert run.gone_count == 0


def test_windows_are_worked_out_afresh_for_new_and_returning_services_only(
    api_source, listing, monkeypatch
):
    """A service back from gone had no windows kept while gone: they are worked out from its
    samples, as a new service's are; the others' move on from the baselines their rows hold."""
    kept = []

    def keep_windows(source, now, rewritten, *, fresh):
        kept.append((sorted(rewritten), sorted(fresh)))
        windows.keep_windows(source, now, rewritten, fresh=fresh)

    monkeypatch.setattr(poll_module, "keep_windows", keep_windows)
    poll(api_source, [item("alpha"), item("bravo")], listing)
    poll(api_source, [item("alpha", calls=11)], listing)
    poll(api_source, [item("alpha", calls=12), item("bravo"), item("charlie")], listing)
    pk = dict(Service.objects.values_list("service_name", "pk"))
    first, gone, back = kept
    assert first == (sorted([pk["alpha"], pk["bravo"]]),) * 2
    assert gone == ([pk["alpha"]], [])
    assert back == (sorted(pk.values()), sorted([pk["bravo"], pk["charlie"]]))


def test_a_second_complete_poll_leaves_gone_at_where_it_was(api_source, listing):
    alpha, bravo = item("alpha"), item("bravo")
    poll(api_source, [alpha, bravo], listing)
    gone = poll(api_source, [alpha], listing)
    again = poll(api_source, [alpha], listing)
    assert Service.objects.get(service_name="bravo").gone_at == gone.started_at
    assert again.gone_count == 0


def test_a_change_of_status_alone_leaves_no_calls_since_the_previous_poll(api_source, listing):
    poll(api_source, [item("alpha", calls=10)], listing)
    poll(api_source, [item("alpha", calls=15)], listing)
    assert Service.objects.get().calls_delta == 5
    poll(api_source, [item("alpha", calls=15, status="failed")], listing)
    service = Service.objects.get()
    assert (service.status, service.calls_delta, service.failures_delta) == ("failed", 0, 0)


def test_a_write_failing_late_in_the_snapshot_rolls_back_every_earlier_write(
    api_source, listing, monkeypatch
):
    poll(api_source, [item("alpha"), item("bravo")], listing)
    before = list(Service.objects.order_by("id").values())
    counts = (ServiceSample.objects.count(), StatusChange.objects.count())

    def disk_full(rows: list[tuple]) -> None:
        raise OSError("the disk filled up")

    # The last write of a snapshot: services were inserted and updated, samples written.
    monkeypatch.setattr(snapshot, "insert_changes", disk_full)
    listing[:] = [item("alpha", status="failed", calls=20), item("charlie")]
    run = poll_source(api_source)

    assert (run.ok, run.error_kind) == (False, "internal")
    assert list(Service.objects.order_by("id").values()) == before
    assert (ServiceSample.objects.count(), StatusChange.objects.count()) == counts
    api_source.refresh_from_db()
    assert api_source.last_success_at < run.started_at + timedelta(seconds=1)
    assert api_source.failures_since_success == 1
