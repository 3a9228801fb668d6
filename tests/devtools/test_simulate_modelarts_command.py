from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from conftest import MANAGE
from django.core.management import CommandError, call_command

from dashboard.modelarts.signer import format_sdk_date, sign_headers

PROJECT_ID = "a" * 32
SECRETS = {
    "MODELARTS_TOKEN": "secret-7c1d",
    "MODELARTS_AK": "SIMAK00000000000",
    "MODELARTS_SK": "secret-sk-0b6e1f",
    "MODELARTS_SECURITY_TOKEN": "secret-st-92ad",
    "HUAWEICLOUD_DOMAIN": "sim-domain",
    "HUAWEICLOUD_USERNAME": "sim-user",
    "HUAWEICLOUD_PASSWORD": "secret-pw-4410",
}


@contextmanager
def simulate(tmp_path: Path, *options: str) -> Iterator[tuple[str, str]]:
    """Run the command on a free port; yield its URL and first line, then SIGTERM it."""
    env = {**os.environ, "DASHBOARD_VAR_DIR": str(tmp_path), **SECRETS}
    command = [sys.executable, str(MANAGE), "simulate_modelarts", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--services", "30", "--project-id", PROJECT_ID, *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the command printed nothing within 30 s"
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line + process.stderr.read()
        yield match.group(0), line
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = line + process.stdout.read() + process.stderr.read()
    assert not [name for name, secret in SECRETS.items() if secret in output]


def test_it_serves_until_sigterm(tmp_path: Path) -> None:
    with simulate(tmp_path, "--auth", "token") as (url, line):
        assert PROJECT_ID in line and "auth token (set)" in line and "faults none" in line
        response = requests.get(
            f"{url}/v1/{PROJECT_ID}/services",
            headers={"X-Auth-Token": SECRETS["MODELARTS_TOKEN"]},
            timeout=10,
        )
        assert response.json()["total_count"] > 0


def test_it_injects_faults_given_by_flag(tmp_path: Path) -> None:
    options = ("--fault", "503", "--fault", "latency:0.01@0")
    with simulate(tmp_path, *options) as (url, line):
        assert "faults 503@1, latency:0.01@0" in line
        response = requests.get(f"{url}/v1/{PROJECT_ID}/services", timeout=10)
        assert response.status_code == 503
        assert response.json()["error_code"] == "ModelArts.4700"


def test_it_checks_aksk_signatures(tmp_path: Path) -> None:
    with simulate(tmp_path, "--auth", "aksk") as (url, line):
        assert "auth aksk (AK/SK set, security token set)" in line
        target = f"{url}/v1/{PROJECT_ID}/services?limit=2"
        headers = {
            "Host": url.removeprefix("http://"),
            # The command's fleet runs on the real clock.
            "X-Sdk-Date": format_sdk_date(time.time()),
            "X-Security-Token": SECRETS["MODELARTS_SECURITY_TOKEN"],
        }
        headers = sign_headers(
            "GET", target, headers, b"", SECRETS["MODELARTS_AK"], SECRETS["MODELARTS_SK"]
        )
        assert requests.get(target, headers=headers, timeout=10).json()["count"] == 2
        unsigned = requests.get(target, timeout=10)
        assert unsigned.status_code == 401
        assert unsigned.json()["error_code"] == "APIGW.0301"


def test_it_issues_iam_tokens(tmp_path: Path) -> None:
    options = ("--auth", "iam", "--project-name", "eu-west-101", "--token-ttl", "60")
    with simulate(tmp_path, *options) as (url, line):
        assert "auth iam (1 user," in line and "eu-west-101" in line
        user = {
            "name": SECRETS["HUAWEICLOUD_USERNAME"],
            "password": SECRETS["HUAWEICLOUD_PASSWORD"],
            "domain": {"name": SECRETS["HUAWEICLOUD_DOMAIN"]},
        }
        body = {
            "auth": {
                "identity": {"methods": ["password"], "password": {"user": user}},
                "scope": {"project": {"name": "eu-west-101"}},
            }
        }
        login = requests.post(f"{url}/v3/auth/tokens", json=body, timeout=10)
        assert login.status_code == 201
        assert login.json()["token"]["project"]["id"] == PROJECT_ID
        token = login.headers["X-Subject-Token"]
        services = requests.get(
            f"{url}/v1/{PROJECT_ID}/services", headers={"X-Auth-Token": token}, timeout=10
        )
        assert services.status_code == 200


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--fault", "418"], "unknown fault"),
        (["--fault", "503@2"], "between 0 and 1"),
        (["--fault", "503@often"], "--fault 503@often"),
        (["--auth", "iam", "--iam-user", "just-a-name"], "DOMAIN:USER:PASSWORD"),
        (["--token-ttl", "0"], "--token-ttl"),
    ],
)
def test_it_refuses_bad_options(options: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("simulate_modelarts", "--port", "0", *options)


@pytest.mark.parametrize(
    ("auth", "message"),
    [("token", "MODELARTS_TOKEN"), ("aksk", "MODELARTS_AK"), ("iam", "HUAWEICLOUD_DOMAIN")],
)
def test_it_needs_credentials_for_each_auth_mode(
    monkeypatch: pytest.MonkeyPatch, auth: str, message: str
) -> None:
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CommandError, match=message):
        call_command("simulate_modelarts", "--port", "0", "--auth", auth)


def test_it_moves_a_manual_clock_only_when_told(tmp_path: Path) -> None:
    env = {**os.environ, "DASHBOARD_VAR_DIR": str(tmp_path)}
    command = [sys.executable, str(MANAGE), "simulate_modelarts", "--port", "0", "--services"]
    process = subprocess.Popen(
        [*command, "30", "--project-id", PROJECT_ID, "--manual-clock"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline()).group(0)

        def listing() -> list[dict]:
            return requests.get(f"{url}/v1/{PROJECT_ID}/services", timeout=10).json()["services"]

        first = listing()
        time.sleep(0.05)
        assert listing() == first  # operation_time included: time stands still
        process.stdin.write("60\n")
        process.stdin.flush()
        assert process.stdout.readline().startswith("clock at")
        moved = {item["service_id"]: item["operation_time"] for item in listing()}
        assert {moved[item["service_id"]] - item["operation_time"] for item in first} == {60_000}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
