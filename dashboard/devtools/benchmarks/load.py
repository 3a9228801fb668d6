"""The parts of `manage.py loadtest`: the served dashboard under load while the poller writes.

Everything runs in processes of its own, on loopback, against a scratch folder and database: the
simulated API, `poll_services`, gunicorn as `make serve` runs it, and wrk as the second process
that sends the requests. Every process is started in a session of its own and stopped by its id.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from dashboard.devtools.benchmarks.ingest import MANAGE, PROJECT_ID

ROOT = MANAGE.parent
USERNAME = "loadtest"
# Lines in any process's log that fail the run: the lock errors readers must never see, and
# whatever Django or gunicorn log as an error (a 500 logs its traceback).
TROUBLE = re.compile(r"database is locked|Traceback|\bERROR\b|\bCRITICAL\b|WORKER TIMEOUT")
POLL_LINE = re.compile(r": (\d+) services.*?(\d+) changed.* in (\d+) ms")
# wrk calls these per thread; done() adds the threads' counts up and prints one JSON line.
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("bad") end
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {"requests": %d, "seconds": %f, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_ms": %f, "p90_ms": %f, "p99_ms": %f, "max_ms": %f}\\n',
    summary.requests, summary.duration / 1e6, bad,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""
# What the second process asks for: the table as a browser first loads it, then as htmx
# refreshes it in place (the same URL; the header makes the view answer with its partial).
TARGETS = [("/ (full page)", {}), ("/ (HTMX partial)", {"HX-Request": "true"})]
# PostgreSQL's requests per second should be at least this share of SQLite's, in one run
# (issue 17's floor).
POSTGRES_SHARE_TARGET = 0.5


class LoadTestError(Exception):
    """The run could not be made, or it saw errors: the message says which and where."""


@dataclass
class Plan:
    services: int
    seconds: int
    interval: int
    speed: float
    connections: int
    workers: int
    database_url: str | None = None


@dataclass
class Result:
    label: str
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


@dataclass
class Processes:
    """Everything the run started, each in its own session, stopped by its id at the end."""

    scratch: Path
    started: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    # Seconds each may take to stop cleanly before it is killed.
    grace: dict[str, float] = field(default_factory=dict)

    def start(self, name: str, args: list[str], env: dict[str, str], grace: float = 30) -> Path:
        log = self.scratch / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                args,
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started.append((name, process))
        self.grace[name] = grace
        return log

    def check_alive(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                tail = (self.scratch / f"{name}.log").read_text()[-2000:]
                raise LoadTestError(f"{name} exited with {process.returncode}:\n{tail}")

    def stop_all(self) -> None:
        # Newest first, one at a time: the web server, then the poller (which finishes its poll)
        # and only then the API it polls, so no poll fails for want of it. SIGTERM to the
        # process's own group reaches gunicorn's workers too; what ignores it is killed.
        for name, process in reversed(self.started):
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=self.grace[name])
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=10)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # it ended just now
            os.killpg(process.pid, signum)


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if not wrk:
        raise LoadTestError(
            "wrk is not installed: `make loadtest` installs it (apt-get install wrk)"
        )
    return wrk


def child_env(plan: Plan, scratch: Path, simulator_url: str, token: str, bind: str) -> dict:
    """The environment of the poller and the web server: production-like, on scratch data."""
    env = {
        name: value
        for name, value in os.environ.items()
        # The run's own source only: inherited credentials would win over its token.
        if not name.startswith(("MODELARTS_", "HUAWEICLOUD_", "DASHBOARD_"))
        and name not in ("DATABASE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "WEB_CONCURRENCY")
    }
    env.update(
        DASHBOARD_VAR_DIR=str(scratch),
        DASHBOARD_HASHED_STATIC="1",
        DASHBOARD_BIND=bind,
        SECRET_KEY=secrets.token_urlsafe(64),
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        WEB_CONCURRENCY=str(plan.workers),
        MODELARTS_ENDPOINT=simulator_url,
        MODELARTS_PROJECT_ID=PROJECT_ID,
        MODELARTS_TOKEN=token,
        MODELARTS_POLL_INTERVAL=str(max(5, plan.interval)),
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    if plan.database_url:
        env["DATABASE_URL"] = plan.database_url
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> None:
    done = subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode:
        raise LoadTestError(
            f"manage.py {args[0]} failed:\n{done.stdout[-1000:]}{done.stderr[-2000:]}"
        )


def start_simulator(processes: Processes, plan: Plan, token: str) -> str:
    env = {**os.environ, "MODELARTS_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    log = processes.start(
        "simulator",
        [
            sys.executable, str(MANAGE), "simulate_modelarts", "--port", "0",
            "--services", str(plan.services), "--seed", "7", "--auth", "token",
            "--project-id", PROJECT_ID, "--speed", str(plan.speed),
        ],
        env,
    )  # fmt: skip
    line = wait_for(processes, log, re.compile(r"http://127\.0\.0\.1:\d+"), 60, "the simulator")
    return line


def wait_for(
    processes: Processes, log: Path, pattern: re.Pattern, seconds: float, what: str
) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = pattern.search(log.read_text())
        if found:
            return found.group(0)
        processes.check_alive()
        time.sleep(0.2)
    raise LoadTestError(f"{what} did not get ready in {seconds:.0f} s:\n{log.read_text()[-2000:]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(processes: Processes, url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise LoadTestError(f"{url} did not answer in {seconds:.0f} s")


def sign_in(base: str, password: str) -> str:
    """Log in through the form, as a person would; the session cookie wrk then sends."""
    browser = requests.Session()
    form = browser.get(f"{base}/login/", timeout=10).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    browser.post(
        f"{base}/login/",
        data={"username": USERNAME, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/login/"},
        timeout=30,
    )
    session = browser.cookies.get("sessionid")
    if not session:
        raise LoadTestError("signing in did not give a session cookie")
    return session


def check_targets(base: str, session: str) -> None:
    """Before timing anything: both answers are 200, and the partial really is the partial."""
    bodies = []
    for label, headers in TARGETS:
        answer = requests.get(
            f"{base}/",
            headers=headers,
            cookies={"sessionid": session},
            allow_redirects=False,
            timeout=60,
        )
        if answer.status_code != 200:
            raise LoadTestError(f"{label} answered {answer.status_code} before the load")
        bodies.append(answer.text)
    if "<html" not in bodies[0] or "<html" in bodies[1]:
        raise LoadTestError("the HX-Request answer is not the table's partial")


def run_wrk(wrk: str, scratch: Path, plan: Plan, base: str, session: str) -> list[Result]:
    script = scratch / "count_status.lua"
    script.write_text(WRK_SCRIPT)
    results = []
    for label, headers in TARGETS:
        args = [
            wrk, "--latency", "--threads", "2", "--connections", str(plan.connections),
            "--duration", f"{plan.seconds}s", "--timeout", "30s", "--script", str(script),
            "--header", f"Cookie: sessionid={session}",
            *(item for name, value in headers.items() for item in ("--header", f"{name}: {value}")),
            f"{base}/",
        ]  # fmt: skip
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=plan.seconds + 60, cwd=scratch
        )
        found = re.search(r"^RESULT (\{.*\})$", done.stdout, re.MULTILINE)
        if done.returncode or not found:
            raise LoadTestError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        results.append(Result(label=label, **json.loads(found.group(1))))
    return results


def trouble_in(logs: list[Path]) -> list[str]:
    return [
        f"{log.stem}: {line.strip()}"
        for log in logs
        for line in log.read_text(errors="replace").splitlines()
        if TROUBLE.search(line) or "poll failed" in line
    ]


def polls_in(poller_log: Path) -> list[tuple[int, int, int]]:
    """(services, changed, milliseconds) of each successful poll, in order."""
    return [
        tuple(int(group) for group in found.groups())
        for line in poller_log.read_text().splitlines()
        if (found := POLL_LINE.search(line))
    ]


@dataclass
class Outcome:
    results: list[Result]
    polls: list[tuple[int, int, int]]
    trouble: list[str]
    database: str
    # The machine's load average (1 min) as the run started and ended: other work shares it.
    load: tuple[float, float] = (0.0, 0.0)

    @property
    def failed(self) -> bool:
        return bool(self.trouble) or any(result.errors for result in self.results)


def run(plan: Plan, scratch: Path, report=print, logs_to: Path | None = None) -> Outcome:
    """The whole run in the scratch folder; every process it started is stopped on the way out.

    With `logs_to`, the processes' logs are copied there at the end, whatever happened.
    """
    wrk = require_wrk()
    load_before = os.getloadavg()[0]
    processes = Processes(scratch)
    token, password = secrets.token_urlsafe(24), secrets.token_urlsafe(18)
    try:
        report(f"starting the simulated API with {plan.services:,} services")
        simulator = start_simulator(processes, plan, token)
        port = free_port()
        env = child_env(plan, scratch, simulator, token, f"127.0.0.1:{port}")
        report("migrating, creating the user, collecting static files")
        manage(env, "migrate", "--noinput", "-v0")
        with_password = {**env, "LOADTEST_PASSWORD": password}
        manage(with_password, "add_user", USERNAME, "--password-env", "LOADTEST_PASSWORD")
        manage(env, "collectstatic", "--noinput", "-v0")
        report(f"first poll (poll_services --interval {plan.interval})")
        poller_log = processes.start(
            "poller",
            [sys.executable, str(MANAGE), "poll_services", "--interval", str(plan.interval)],
            env,
            # On SIGTERM it finishes the poll in progress, which may take up to an interval.
            grace=plan.interval + 60,
        )
        # The first poll writes the whole fleet; the load starts once it is in.
        wait_for(processes, poller_log, POLL_LINE, 900, "the first poll")
        polls_before = len(polls_in(poller_log))
        report(f"starting gunicorn ({plan.workers} workers) on 127.0.0.1:{port}")
        processes.start("web", [sys.executable, "-m", "gunicorn"], env)
        base = f"http://127.0.0.1:{port}"
        wait_for_http(processes, f"{base}/login/", 60)
        session = sign_in(base, password)
        check_targets(base, session)
        report(f"wrk: {plan.seconds} s per URL, {plan.connections} connections")
        results = run_wrk(wrk, scratch, plan, base, session)
        processes.check_alive()
        load_after = os.getloadavg()[0]
    finally:
        processes.stop_all()
        logs = [scratch / f"{name}.log" for name, _ in processes.started]
        if logs_to:
            logs_to.mkdir(parents=True, exist_ok=True)
            for log in logs:
                shutil.copy(log, logs_to / log.name)
    # Polls that began under load count, the one finished while stopping included.
    polls = polls_in(poller_log)[polls_before:]
    database = database_name(plan.database_url)
    return Outcome(results, polls, trouble_in(logs), database, (load_before, load_after))


def database_name(url: str | None) -> str:
    import sqlite3

    if not url:
        return f"SQLite {sqlite3.sqlite_version} (WAL)"
    import psycopg

    with psycopg.connect(url) as connection:
        version = connection.execute("SHOW server_version").fetchone()[0]
    return f"PostgreSQL {version.split()[0]}"


def render(plan: Plan, outcome: Outcome) -> str:
    polls = outcome.polls
    poll_note = (
        f"{len(polls)} polls under load, each listing {polls[0][0]:,} services "
        f"and changing {min(p[1] for p in polls):,}–{max(p[1] for p in polls):,} of them "
        f"in {min(p[2] for p in polls) / 1000:.2f}–{max(p[2] for p in polls) / 1000:.2f} s"
        if polls
        else "no poll ran under load"
    )
    lines = [
        "",
        f"{outcome.database}, simulated fleet of {plan.services:,}, gunicorn {plan.workers} "
        f"workers, wrk {plan.connections} connections, {plan.seconds} s per URL",
        f"poller every {plan.interval} s (simulator speed {plan.speed:g}): {poll_note}",
        f"{os.cpu_count()} cores, load average {outcome.load[0]:.1f} before the run and "
        f"{outcome.load[1]:.1f} at its end (the run's own processes and any others)",
        "",
        f"{'URL':<20} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'errors':>7}",
    ]
    for r in outcome.results:
        lines.append(
            f"{r.label:<20} {r.requests:>9,} {r.rate:>8.1f} {r.p50_ms:>8.0f} {r.p90_ms:>8.0f} "
            f"{r.p99_ms:>8.0f} {r.max_ms:>8.0f} {r.errors:>7}"
        )
    lines.append(f"lock errors, failed polls or tracebacks in the logs: {len(outcome.trouble)}")
    lines.extend(f"  {line}" for line in outcome.trouble[:20])
    return "\n".join(lines)


def compare(sqlite: Outcome, postgres: Outcome) -> str:
    """PostgreSQL's requests per second as a share of SQLite's, per URL, from one invocation."""
    lines = [
        "",
        f"{postgres.database} / {sqlite.database}, run back to back:",
        f"{'URL':<20} {'SQLite req/s':>13} {'PG req/s':>9} {'PG/SQLite':>10} {'target':>8}",
    ]
    for lite, pg in zip(sqlite.results, postgres.results, strict=True):
        share = pg.rate / lite.rate if lite.rate else 0.0
        miss = "  MISS" if share < POSTGRES_SHARE_TARGET else ""
        lines.append(
            f"{lite.label:<20} {lite.rate:>13.1f} {pg.rate:>9.1f} {share:>10.0%} "
            f"{f'>= {POSTGRES_SHARE_TARGET:.0%}':>8}{miss}"
        )
    errors = [
        sum(r.errors for r in outcome.results) + len(outcome.trouble)
        for outcome in (sqlite, postgres)
    ]
    lines.append(f"errors: SQLite {errors[0]}, PostgreSQL {errors[1]}")
    return "\n".join(lines)
