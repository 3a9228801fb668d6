"""Alerts as the poller raises and sends them: once per transition, whatever happens to it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from io import StringIO

import pytest
from conftest import MANAGE, PROJECT_ID, manage
from django.core.management import call_command
from receivers import FakeReceiver, Reply

from dashboard.devtools.simulator import SimulatorServer
from dashboard.models import AlertChannel, AlertRule

# A Standard Webhooks secret: each request then carries its message's webhook-id.
SECRET = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM="


def failed_ids(fleet, clock) -> set[str]:
    return {item["service_id"] for item in fleet.items(clock()) if item["status"] == "failed"}


def announced(receiver: FakeReceiver) -> list[tuple[str, str]]:
    """Every (state, service id) the receiver was told, in order, repeats included."""
    return [
        (alert["status"], alert["labels"]["service_id"])
        for seen in receiver.seen
        for alert in seen.json()["alerts"]
    ]


def test_poll_once_delivers_what_its_poll_raised_before_it_exits(source, fleet, clock):
    with FakeReceiver() as receiver:
        channel = AlertChannel.objects.create(name="hook", kind="webhook", url=receiver.url)
        rule = AlertRule.objects.create(name="failing", condition="statuses", statuses=["failed"])
        rule.channels.add(channel)
        out = StringIO()
        call_command("poll_services", "--once", stdout=out)
    failed = failed_ids(fleet, clock)
    assert failed, "the simulated fleet has failed services"
    assert sorted(announced(receiver)) == sorted(("firing", sid) for sid in failed)
    assert "alerts: 1 message(s) sent" in out.getvalue()


@pytest.fixture
def open_simulator(fleet) -> Iterator[SimulatorServer]:
    with SimulatorServer(fleet, project_id=PROJECT_ID, auth="none") as server:
        yield server


def set_up(env: dict[str, str], simulator: SimulatorServer, receiver: FakeReceiver) -> None:
    manage(env, "migrate", "-v0")
    manage(
        env,
        "shell",
        "--no-imports",
        "-c",
        "from dashboard.models import AlertChannel, AlertRule, Source\n"
        f"Source.objects.create(name='sim', endpoint='{simulator.url}', project_id='{PROJECT_ID}',"
        " auth_kind='none', interval_seconds=1)\n"
        f"channel = AlertChannel.objects.create(name='hook', kind='webhook', url='{receiver.url}',"
        f" secret='{SECRET}')"
        "\nrule = AlertRule.objects.create(name='failing', condition='statuses',"
        " statuses=['failed'])\n"
        "rule.channels.add(channel)",
    )


def attempts(env: dict[str, str]) -> list[int]:
    """Each stored message's delivery attempts so far, as another process sees them."""
    code = (
        "from dashboard.models import Notification\n"
        "print(list(Notification.objects.values_list('attempts', flat=True)))"
    )
    return json.loads(manage(env, "shell", "--no-imports", "-c", code))


def poller(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(MANAGE), "poll_services"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_two_pollers_announce_each_alert_once(shared_database, open_simulator, fleet, clock):
    with FakeReceiver() as receiver:
        set_up(shared_database, open_simulator, receiver)
        pollers = [poller(shared_database) for _ in range(2)]
        time.sleep(6)  # several polls each, the fleet standing still
        for process in pollers:
            process.send_signal(signal.SIGTERM)
        for process in pollers:
            _, errors = process.communicate(timeout=30)
            assert process.returncode == 0, errors
    failed = failed_ids(fleet, clock)
    assert sorted(announced(receiver)) == sorted(("firing", sid) for sid in failed)


def test_a_killed_pollers_message_is_sent_by_the_next_one(shared_database, open_simulator):
    # The first delivery fails (and is noted so); the poller dies before its retry is due.
    with FakeReceiver(Reply(500)) as receiver:
        set_up(shared_database, open_simulator, receiver)
        first = poller(shared_database)
        wait_for(lambda: len(receiver.seen) == 1, 30)
        first.kill()
        first.wait(timeout=10)
        # The next poller (here a cron-style --once) sends what is pending, retry included.
        manage(shared_database, "poll_services", "--once")
    ids = [seen.headers["webhook-id"] for seen in receiver.seen]
    assert len(ids) == 2 and ids[0] and ids[0] == ids[1]
    assert receiver.seen[0].json() == receiver.seen[1].json()
