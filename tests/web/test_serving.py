"""`make serve` in miniature: gunicorn, DEBUG off, a real SECRET_KEY, collected static files."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import ROOT
from local_http import free_port

MANAGE = [sys.executable, str(ROOT / "manage.py")]


def production_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DASHBOARD_VAR_DIR": str(var_dir),
        "DASHBOARD_HASHED_STATIC": "1",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEB_CONCURRENCY": "2",
        **extra,
    }
    env.pop("DATABASE_URL", None)
    return env


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """gunicorn as `make serve` starts it, on a free loopback port; stopped by its id."""
    port = free_port()
    env = production_env(tmp_path_factory.mktemp("var"), DASHBOARD_BIND=f"127.0.0.1:{port}")
    subprocess.run([*MANAGE, "migrate", "-v0"], env=env, check=True, timeout=120, cwd=ROOT)
    subprocess.run(
        [*MANAGE, "collectstatic", "--noinput", "-v0"], env=env, check=True, timeout=120, cwd=ROOT
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                requests.get(f"{base}/login/", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield base
    finally:
        # gunicorn's master stops its workers on SIGTERM.
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert "Traceback" not in output, output


def test_it_serves_the_login_page_with_debug_off(served):
    answer = requests.get(f"{served}/login/", timeout=10)
    assert answer.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in answer.text
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_it_serves_hashed_compressed_static_files_cached_for_a_year(served):
    page = requests.get(f"{served}/login/", timeout=10).text
    # Pages link to the content-hashed copies collectstatic made.
    css = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', page)
    assert css, "the login page links no hashed stylesheet"
    for encoding in ("br", "gzip"):
        answer = requests.get(
            f"{served}{css.group(1)}", headers={"Accept-Encoding": encoding}, timeout=10
        )
        assert answer.status_code == 200
        assert answer.headers["Content-Encoding"] == encoding
        assert "immutable" in answer.headers["Cache-Control"]
        assert "max-age=315360000" in answer.headers["Cache-Control"]


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (
            [sys.executable, "-m", "gunicorn"],
            "set SECRET_KEY to a random string of at least 50 characters",
        ),
        (["make", "--no-print-directory", "serve"], "make serve: set SECRET_KEY"),
    ],
)
def test_it_refuses_to_serve_without_a_secret_key(tmp_path, command, says):
    env = production_env(tmp_path, DASHBOARD_BIND=f"127.0.0.1:{free_port()}")
    del env["SECRET_KEY"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert says in done.stderr
