from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from dashboard.devtools.simulator import Fleet, ManualClock, SimulatorServer

# The project's root, its manage.py, and the API's documented bodies.
ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "manage.py"
EXAMPLES = ROOT / "tests" / "data" / "modelarts"

PROJECT_ID = "0123456789abcdef0123456789abcdef"
TOKEN = "test-token-5f0e2c"


def on_postgresql() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith("postgres")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of PostgreSQL's own behaviour belong to the suite's PostgreSQL run (CI runs both):
    on SQLite they are deselected, not skipped, so a skip always means something is missing."""
    if on_postgresql():
        return
    elsewhere = [item for item in items if item.get_closest_marker("postgresql")]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if not item.get_closest_marker("postgresql")]


def names(response) -> list[str]:
    """Service names in the order the table shows them."""
    return re.findall(r'<span class="service-name">([^<]*)</span>', response.content.decode())


@pytest.fixture
def clock() -> ManualClock:
    # A fixed start keeps every simulated fleet the same from run to run.
    return ManualClock(1_767_225_600.0)  # 2026-01-01T00:00:00Z


@pytest.fixture
def fleet(clock: ManualClock) -> Fleet:
    return Fleet(size=120, seed=7, clock=clock)


@pytest.fixture
def simulator(fleet: Fleet) -> Iterator[SimulatorServer]:
    server = SimulatorServer(fleet, project_id=PROJECT_ID, auth="token", token=TOKEN).start()
    yield server
    server.stop()


TOKEN_ENV = "MODELARTS_TEST_TOKEN"


@pytest.fixture
def source(db, simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch):
    """A source pointing at the simulator, its token in an environment variable."""
    from dashboard.models import Source

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return Source.objects.create(
        name="sim",
        endpoint=simulator.url,
        project_id=PROJECT_ID,
        token_env=TOKEN_ENV,
        interval_seconds=30,
    )


@pytest.fixture
def polled(source, clock: ManualClock):
    """One successful poll of the simulated fleet."""
    from dashboard.ingest.poll import poll_source

    run = poll_source(source)
    assert run.ok, run.error_message
    source.refresh_from_db()
    return run


@pytest.fixture
def run(db):
    """A successful poll run of the make_service fixture's source, for history rows."""
    from django.utils import timezone

    from dashboard.models import PollRun, Source

    source, _ = Source.objects.get_or_create(
        name="fixture", defaults={"endpoint": "http://127.0.0.1:9", "project_id": PROJECT_ID}
    )
    return PollRun.objects.create(source=source, started_at=timezone.now(), ok=True)


@pytest.fixture
def make_service(db):
    """Services written straight to the database, for exact filter and sort tests."""
    from datetime import UTC, datetime, timedelta

    from dashboard.ingest.rows import RowMaker
    from dashboard.modelarts import ServiceRecord
    from dashboard.models import Source
    from dashboard.statuses import severity

    counter = iter(range(1, 1_000_000))

    def make(name: str, status: str = "running", *, source: Source | None = None, **fields):
        n = next(counter)
        source = (
            source
            or Source.objects.get_or_create(
                name="fixture",
                defaults={"endpoint": "http://127.0.0.1:9", "project_id": PROJECT_ID},
            )[0]
        )
        calls = fields.pop("invocation_times", 100 * n)
        # A service that was never called has never failed either.
        failures = fields.pop("failed_times", n if calls else 0)
        item = {"service_id": f"00000000-0000-4000-8000-{n:012d}", "service_name": name}
        values = {
            "service_name": name,
            "status": status,
            "severity": severity(status),
            "infer_type": "real-time",
            "owner": "owner-a",
            "invocation_times": calls,
            "failed_times": failures,
            "failure_rate": failures / calls if calls else None,
            "publish_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n),
            "first_seen_at": datetime(2026, 1, 2, tzinfo=UTC),
            "raw": item,
            "fingerprint": RowMaker(())(ServiceRecord.from_json(item)).fingerprint,
        }
        values.update(fields)
        return source.services.create(service_id=item["service_id"], **values)

    return make


def work_out_windows(now=None) -> None:
    """What a poll does to its source's windows, for services and samples made straight in the
    database: every service's windows worked out afresh, ending `now`."""
    from django.utils import timezone

    from dashboard.ingest.windows import keep_windows
    from dashboard.models import Source

    for source in Source.objects.all():
        source.windows_as_of = None
        keep_windows(source, now or timezone.now(), [], fresh=[])


OPERATOR_PASSWORD = "operator-password-for-tests"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Production hashing is slow on purpose; tests log in hundreds of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    # Rows rolled back with one test may come back with the same ids and times in the next:
    # what the cache holds of them belongs to the test that counted it.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def operator(db):
    from dashboard.web.accounts import create_user

    return create_user("ops", OPERATOR_PASSWORD, "operator")


@pytest.fixture
def client(operator):
    """Django's test client, signed in as an operator (every page needs a login)."""
    from django.test import Client

    signed_in = Client()
    signed_in.force_login(operator)
    return signed_in


@pytest.fixture
def anonymous_client():
    from django.test import Client

    return Client()


@pytest.fixture
def shared_database(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a database other processes can share: a fresh PostgreSQL database
    when the suite runs on PostgreSQL, else an SQLite file (the test database of the suite
    itself lives in memory or in one transaction, out of other processes' reach)."""
    env = {**os.environ, "DASHBOARD_VAR_DIR": str(tmp_path)}
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        env.pop("DATABASE_URL", None)
        yield env
        return
    import psycopg

    name = f"race_{uuid.uuid4().hex[:10]}"
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    try:
        yield env
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str) -> str:
    """manage.py ARGS in a process of its own, with that environment; its output."""
    done = subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout
