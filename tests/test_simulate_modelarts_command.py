from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import requests

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"


def test_it_serves_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "DASHBOARD_VAR_DIR": str(tmp_path), "MODELARTS_TOKEN": "secret-7c1d"}
    command = [sys.executable, str(MANAGE), "simulate_modelarts", "--port", "0", "--services", "30"]
    process = subprocess.Popen(
        [*command, "--auth", "token", "--project-id", "a" * 32],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the command printed nothing within 30 s"
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        assert "a" * 32 in line and "secret-7c1d" not in line
        response = requests.get(
            f"{url}/v1/{'a' * 32}/services", headers={"X-Auth-Token": "secret-7c1d"}, timeout=10
        )
        assert response.json()["total_count"] > 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "secret-7c1d" not in process.stderr.read()
