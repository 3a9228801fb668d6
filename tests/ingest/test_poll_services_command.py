from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
from conftest import PROJECT_ID, ROOT, TOKEN
from django.core.management import CommandError, call_command

from dashboard.ingest.scheduler import poll_forever
from dashboard.models import PollRun, Service, Source


@pytest.fixture
def env_source(simulator, settings, monkeypatch):
    settings.MODELARTS_ENDPOINT = simulator.url
    settings.MODELARTS_PROJECT_ID = PROJECT_ID
    monkeypatch.setenv("MODELARTS_TOKEN", TOKEN)


def test_it_polls_the_environment_source_once(db, env_source, fleet, capsys):
    call_command("poll_services", "--once")
    run = PollRun.objects.get()
    assert run.ok
    assert Source.objects.get().name == "default"
    assert Service.objects.count() == len(fleet.items())
    assert f"default: {len(fleet.items())} services" in capsys.readouterr().out


def test_it_fails_once_mode_when_a_poll_fails(db, env_source, monkeypatch):
    monkeypatch.setenv("MODELARTS_TOKEN", "expired")
    with pytest.raises(CommandError, match="1 poll"):
        call_command("poll_services", "--once")
    assert PollRun.objects.get().ok is False


def test_it_explains_that_there_is_nothing_to_poll(db):
    with pytest.raises(CommandError, match="MODELARTS_ENDPOINT"):
        call_command("poll_services", "--once")


def test_it_rejects_an_unknown_source_name(db, env_source):
    with pytest.raises(CommandError, match="no source named 'nope'"):
        call_command("poll_services", "--once", "--source", "nope")


def test_it_polls_due_sources_until_stopped(transactional_db, source):
    # Transactional: the loop closes stale connections between rounds, as a long-lived
    # process must, which a test wrapped in one transaction would not survive.
    stop = threading.Event()
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        stop.set()

    poll_forever(stop, report)
    # The poll, then (same round) the details of its unhealthy services.
    assert lines[0].startswith("sim: ") and " new, " in lines[0]
    assert all("detail of" in line for line in lines[1:]) and len(lines) <= 2
    assert PollRun.objects.filter(source=source, ok=True).count() == 1


def test_the_poller_finishes_cleanly_on_sigterm(tmp_path, simulator):
    env = {
        **os.environ,
        "DASHBOARD_VAR_DIR": str(tmp_path),
        "MODELARTS_ENDPOINT": simulator.url,
        "MODELARTS_PROJECT_ID": PROJECT_ID,
        "MODELARTS_TOKEN": TOKEN,
    }
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, timeout=120)
    poller = subprocess.Popen(
        [*manage, "poll_services", "--interval", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = [poller.stdout.readline() for _ in range(2)]
        assert "services" in first[1], first
    finally:
        poller.send_signal(signal.SIGTERM)
        rest, _ = poller.communicate(timeout=30)
    assert poller.returncode == 0
    assert rest.rstrip().endswith("stopped")
    assert TOKEN not in "".join(first) + rest
