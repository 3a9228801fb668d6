from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests
from conftest import ROOT
from local_http import free_port


def log_in(browser: requests.Session, base: str, username: str, password: str) -> str:
    """Sign in through the login form as a person would; the page it lands on."""
    form = browser.get(f"{base}/login/", timeout=5).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    answer = browser.post(
        f"{base}/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/login/"},
        timeout=10,
    )
    return answer.text


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_the_demo_serves_a_polled_fleet_and_stops_on_a_signal(tmp_path, stop_signal):
    """`make run` in miniature: a fresh var/ directory, migrate, demo, one page, Ctrl-C."""
    env = {**os.environ, "DASHBOARD_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, timeout=120)
    port = free_port()
    demo = subprocess.Popen(
        [*manage, "demo", "--port", str(port), "--services", "30"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        head = [demo.stdout.readline() for _ in range(3)]
        assert head[2].startswith("Log in as demo with password "), head
        password = head[2].split()[-1]
        browser = requests.Session()
        body = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "data-service-id" not in body:
            time.sleep(0.3)
            try:
                body = log_in(browser, f"http://127.0.0.1:{port}", "demo", password)
            except requests.ConnectionError:
                continue
        assert "data-service-id" in body
        assert "demo" in body
    finally:
        demo.send_signal(stop_signal)
        output, _ = demo.communicate(timeout=30)
    assert demo.returncode == 0
    assert f"Dashboard: http://127.0.0.1:{port}/" in "".join(head)
    assert "poller: demo: " in output


def test_the_demo_leaves_its_source_disabled_when_it_stops(tmp_path):
    env = {**os.environ, "DASHBOARD_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, timeout=120)
    demo = subprocess.Popen(
        [*manage, "demo", "--port", str(free_port()), "--services", "5"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert demo.stdout.readline().startswith("Simulated ModelArts API")
    demo.send_signal(signal.SIGTERM)
    demo.communicate(timeout=30)
    shown = subprocess.run(
        [*manage, "shell", "--no-imports", "-c",
         "from dashboard.models import Source; print(Source.objects.get(name='demo').enabled)"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert shown.strip() == "False"


def test_the_benchmark_prints_its_table(tmp_path):
    """A smoke run at a tiny size, on the suite's database (the benchmark makes a fresh one of
    its own there): the figures themselves are for people, not assertions."""
    env = {**os.environ, "DASHBOARD_VAR_DIR": str(tmp_path)}
    url = env.pop("DATABASE_URL", "")
    server = url if url.startswith("postgres") else None
    command = [sys.executable, str(ROOT / "manage.py"), "benchmark", "--services", "40"]
    command += ["--repeat", "1", *(["--database-url", server] if server else [])]
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "40 services" in done.stdout
    assert "unchanged poll:" in done.stdout and "0 rows rewritten" in done.stdout
    for label in ("default (most urgent first)", "free-text search", "last page"):
        # median, p95, then the request's query count: the same few queries on every view
        # (one of them the signed-in user's last visit).
        row = re.search(rf"^  {re.escape(label)} +[\d.]+ +[\d.]+ +(\d+) ", done.stdout, re.M)
        assert row and 5 <= int(row[1]) <= 13, done.stdout
    # PostgreSQL's pages are timed as autovacuum leaves the table, not right after the polls.
    assert ("after VACUUM ANALYZE" in done.stdout) == bool(server)
    # Every ratio beside its target: the windowed views, /metrics and the exports' memory.
    for label in ("window 1h", "window 7d by rate", "API window 1h"):
        assert re.search(rf"^  {label} / default view: [\d.]+x \(target <= 3x\)", done.stdout, re.M)
    assert re.search(r"/metrics median [\d,]+ ms = [\d.]+x the default view .*<= 10x", done.stdout)
    for url in ("/metrics", "/services.csv", "/services.json"):
        assert re.search(
            rf"^  {url} .*peak Python memory [\d.]+ MB .*(OK|MISS)$", done.stdout, re.M
        )


def test_the_history_benchmark_reports_storage_and_speed(tmp_path):
    env = {**os.environ, "DASHBOARD_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "benchmark", "--services", "30", "--repeat",
         "1", "--history"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "KiB for the last day (full resolution)" in done.stdout
    # A day of samples every five minutes for each of the 30 services.
    assert "(8,640 samples" in done.stdout
    for label in ("window 1h", "window 7d by rate", "flapping"):
        assert label in done.stdout
