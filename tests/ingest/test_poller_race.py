"""Two poll_services processes sharing the same sources through the database's claims."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from conftest import MANAGE, PROJECT_ID, manage

from dashboard.devtools.simulator import SimulatorServer


@pytest.fixture
def open_simulator(fleet) -> Iterator[SimulatorServer]:
    with SimulatorServer(fleet, project_id=PROJECT_ID, auth="none") as server:
        yield server


def test_two_pollers_never_poll_the_same_source_at_once(shared_database, open_simulator):
    simulator, env = open_simulator, shared_database
    manage(env, "migrate", "-v0")
    manage(
        env,
        "shell",
        "--no-imports",
        "-c",
        "from dashboard.models import Source\n"
        "for n in range(3):\n"
        f"    Source.objects.create(name=f'region-{{n}}', endpoint='{simulator.url}',"
        f" project_id='{PROJECT_ID}', auth_kind='none', interval_seconds=1)",
    )
    # Every list request takes a while, so the two pollers' polls would overlap if they could.
    simulator.inject("latency:0.25", times=10_000)

    pollers = [
        subprocess.Popen(
            [sys.executable, str(MANAGE), "poll_services"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(6)
    for poller in pollers:
        poller.send_signal(signal.SIGTERM)
    for poller in pollers:
        _, errors = poller.communicate(timeout=30)
        assert poller.returncode == 0, errors

    runs = json.loads(
        manage(
            env,
            "shell",
            "--no-imports",
            "-c",
            "import json\n"
            "from dashboard.models import PollRun\n"
            "print(json.dumps([[r.source.name, r.poller, r.ok, r.started_at.timestamp(),"
            " r.finished_at.timestamp()] for r in PollRun.objects.order_by('started_at')]))",
        ).strip()
    )
    assert len(runs) >= 9, runs
    assert all(ok for _, _, ok, _, _ in runs), runs
    by_source: dict[str, list] = {}
    for name, _, _, started, finished in runs:
        by_source.setdefault(name, []).append((started, finished))
    assert set(by_source) == {"region-0", "region-1", "region-2"}
    for name, spans in by_source.items():
        for (_, finished), (started, _) in zip(spans, spans[1:], strict=False):
            assert started >= finished, f"{name}: two polls overlapped"
    # Both processes took part: the claims shared the work rather than one poller hogging it.
    processes = {poller.split(":")[1] for _, poller, _, _, _ in runs}
    assert len(processes) == 2
