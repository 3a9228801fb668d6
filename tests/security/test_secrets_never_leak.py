"""Known secrets, every way of signing in, every outcome: none of them shows up anywhere.

Sources of each kind (token, AK/SK with a security token, IAM password) point at simulators
that accept the secrets, reject them, cannot be reached, or are gateways that quote the whole
request back in their error (the classic leak). After polling them all, every page, API, error
path, log record (DEBUG, urllib3 included), the poller command's output and a dump of the
database are searched for each secret and for every 16-character piece of one.
"""

from __future__ import annotations

import html
import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from functools import partial

import pytest
from conftest import ROOT
from django.core.management import call_command
from django.test import Client
from local_http import free_port

from dashboard.devtools.simulator import Fleet, SimulatorServer, identity
from dashboard.devtools.simulator.wire import Reply
from dashboard.ingest import credentials
from dashboard.ingest import poll as polling
from dashboard.modelarts import RetryPolicy
from dashboard.modelarts import auth as auth_module
from dashboard.modelarts import client as client_module
from dashboard.models import PollRun, Source
from dashboard.web.accounts import create_user

PROJECT = "5ec7e75ec7e75ec7e75ec7e75ec7e700"
DOMAIN, USER, REGION = "leak-domain", "leak-user", "cn-north-4"
SECRETS = {
    "MODELARTS_TOKEN": "SECRET-TOKEN-4b1d9e7c2a6f40d8b3e5",
    "MODELARTS_AK": "SECRETAK7Q2W9E4R1T6Y8U3I",
    "MODELARTS_SK": "SECRET-SK-e8a1c4f7b2d9460a9c3e5f1b7d2a8c64",
    "MODELARTS_SECURITY_TOKEN": "SECRET-STS-2c7e9a4f1b6d3e8a0c5f7b9d1e3a5c7f",
    "HUAWEICLOUD_PASSWORD": "SECRET-PASSWORD-9d2f7b4e1a6c3e8b",
}
TOKEN, AK, SK = SECRETS["MODELARTS_TOKEN"], SECRETS["MODELARTS_AK"], SECRETS["MODELARTS_SK"]
STS, PASSWORD = SECRETS["MODELARTS_SECURITY_TOKEN"], SECRETS["HUAWEICLOUD_PASSWORD"]
KINDS = ("token", "aksk", "iam-password")
WINDOW = 16  # no piece of a secret this long may show anywhere


def pieces(secret: str) -> set[str]:
    return {secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1)}


def leaks(places: list[tuple[str, str | bytes]], secrets: dict[str, str]) -> list[str]:
    """'where: which secret' for every place that holds a secret or a piece of one."""
    found = []
    for where, text in places:
        for name, secret in secrets.items():
            needles = pieces(secret)
            if isinstance(text, bytes):
                needles = {needle.encode() for needle in needles}
            if any(needle in text for needle in needles):
                found.append(f"{where}: {name}")
    return found


class EchoingGateway(SimulatorServer):
    """A gateway or proxy that quotes the request it refused (headers and body) in its answer.

    style "json": ModelArts' (or IAM's) own error shape; "html": a proxy's error page listing
    the credentials it got first; "text": 200 with a body that is not JSON at all.
    """

    def __init__(self, fleet: Fleet, style: str) -> None:
        super().__init__(fleet)
        self.style = style

    def answer(self, method, target, headers, body=b""):
        credentials = [
            f"{name}: {value}"
            for name, value in headers.items()
            if name.lower() in ("x-auth-token", "authorization", "x-security-token")
        ]
        others = [f"{name}: {value}" for name, value in headers.items()]
        quoted = "\n".join([*credentials, f"{method} {target}", *others, "", body.decode()])
        iam = target.startswith("/v3/auth/tokens")
        if self.style == "json" and iam:
            error = {"code": 401, "message": f"Rejected: {quoted}", "title": "Unauthorized"}
            return Reply.json(401, {"error": error})
        if self.style == "json":
            return Reply.json(
                401,
                {
                    "error_code": "APIGW.0301",
                    "error_msg": f"Incorrect IAM authentication information: {quoted}",
                    "request_id": uuid.uuid4().hex,
                },
            )
        if self.style == "html":
            page = f"<h1>502</h1><p>Refused:</p><pre>{html.escape(quoted)}</pre>"
            return Reply(502, page.encode(), content_type="text/html")
        return Reply(200, f"OK {quoted}".encode(), content_type="text/plain")


class CuttingGateway(SimulatorServer):
    """An error page whose one quoted credential starts `at` characters into its text: the
    client keeps only the first 200 characters of a page that is not JSON."""

    LABEL = "credential: "

    def __init__(self, fleet: Fleet, at: int) -> None:
        super().__init__(fleet)
        self.at = at

    def answer(self, method, target, headers, body=b""):
        value = headers.get("X-Security-Token") or headers.get("X-Auth-Token")
        if value is None:  # an IAM login: the password is in the body
            value = json.loads(body)["auth"]["identity"]["password"]["user"]["password"]
        filler = "x" * (self.at - 1 - len(self.LABEL))
        page = f"<html><body><p>{filler}</p><pre>{self.LABEL}{value}</pre></body></html>"
        return Reply(401, page.encode(), content_type="text/html")


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def make_source(name: str, kind: str, endpoint: str, iam_endpoint: str = "") -> Source:
    fields = {
        "token": {"token_env": "MODELARTS_TOKEN", "project_id": PROJECT},
        "aksk": {
            "ak_env": "MODELARTS_AK",
            "sk_env": "MODELARTS_SK",
            "security_token_env": "MODELARTS_SECURITY_TOKEN",
            "project_id": PROJECT,
        },
        "iam-password": {
            "iam_endpoint": iam_endpoint or endpoint,
            "iam_domain": DOMAIN,
            "iam_username": USER,
            "password_env": "HUAWEICLOUD_PASSWORD",
            "region": REGION,
        },
    }[kind]
    return Source.objects.create(
        name=name, endpoint=endpoint, auth_kind=kind, interval_seconds=30, **fields
    )


@pytest.fixture
def fleet() -> Fleet:
    # The gateway checks X-Sdk-Date against this clock: it must be the real one.
    return Fleet(size=4, seed=11, clock=time.time)


@pytest.fixture(autouse=True)
def secrets_in_env(db, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(credentials, "_iam_auths", {})
    # Retries as usual, without the waits.
    quick = partial(RetryPolicy, backoff=0.01, max_backoff=0.02, retry_after_cap=0.05)
    monkeypatch.setattr(client_module, "RetryPolicy", quick)
    # The real gateway may well quote a security token in its canonical request; the
    # simulator's own politeness must not be what keeps it out of sight.
    monkeypatch.setattr(identity, "SECRET_SIGNED_HEADERS", ())


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """IAM tokens the poller obtained with the password: secrets too."""
    made: list[str] = []
    request_token = auth_module.request_token

    def login(*args, **kwargs):
        token = request_token(*args, **kwargs)
        made.append(token.value)
        return token

    monkeypatch.setattr(auth_module, "request_token", login)
    return made


@pytest.fixture
def servers(fleet: Fleet) -> Iterator[dict[str, SimulatorServer]]:
    def sim(**options) -> SimulatorServer:
        return SimulatorServer(fleet, project_id=PROJECT, **options)

    iam_users = {(DOMAIN, USER): PASSWORD}
    made = {
        "token-ok": sim(auth="token", token=TOKEN),
        "token-revoked": sim(auth="token", token="a-token-issued-after-ours-was-revoked"),
        "aksk-ok": sim(auth="aksk", ak=AK, sk=SK, security_token=STS),
        "aksk-wrong-sk": sim(auth="aksk", ak=AK, sk="the-right-sk-not-ours", security_token=STS),
        "iam-ok": sim(auth="iam", iam_users=iam_users, project_name=REGION),
        "iam-wrong-password": sim(
            auth="iam", iam_users={(DOMAIN, USER): "not-our-password"}, project_name=REGION
        ),
        **{f"echo-{style}": EchoingGateway(fleet, style) for style in ("json", "html", "text")},
    }
    for server in made.values():
        server.start()
    yield made
    for server in made.values():
        server.stop()


@pytest.fixture
def sources(servers: dict[str, SimulatorServer]) -> list[Source]:
    nowhere = closed_port_url()
    made = [
        make_source("token-ok", "token", servers["token-ok"].url),
        make_source("token-revoked", "token", servers["token-revoked"].url),
        make_source("aksk-ok", "aksk", servers["aksk-ok"].url),
        make_source("aksk-wrong-sk", "aksk", servers["aksk-wrong-sk"].url),
        make_source("iam-ok", "iam-password", servers["iam-ok"].url),
        make_source("iam-wrong-password", "iam-password", servers["iam-wrong-password"].url),
        # IAM issues a token, then a gateway quotes it back.
        make_source(
            "iam-token-echoed", "iam-password", servers["echo-json"].url, servers["iam-ok"].url
        ),
    ]
    for kind in KINDS:
        made.append(make_source(f"{kind}-unreachable", kind, nowhere))
        for style in ("json", "html", "text"):
            made.append(make_source(f"{kind}-echo-{style}", kind, servers[f"echo-{style}"].url))
    return made


def poll_everything(sources: list[Source], servers: dict[str, SimulatorServer]) -> None:
    runs = {source.name: polling.poll_source(source) for source in sources}
    assert {name for name, run in runs.items() if run.ok} == {"token-ok", "aksk-ok", "iam-ok"}
    # A revoked IAM token: the poller is refused, logs in again, and goes on.
    servers["iam-ok"].revoke_tokens()
    iam = next(source for source in sources if source.name == "iam-ok")
    assert polling.poll_source(iam).ok
    # What each failure says, so the test checks what it means to.
    failures = {run.source.name: run.error_message for run in PollRun.objects.filter(ok=False)}
    assert "signature does not match" in failures["aksk-wrong-sk"]
    assert "x-security-token" in failures["aksk-wrong-sk"]  # the canonical request, quoted
    assert "The username or password is wrong" in failures["iam-wrong-password"]
    assert "X-Auth-Token" in failures["token-echo-json"]
    assert "X-Security-Token" in failures["aksk-echo-json"]
    assert '"password"' in failures["iam-password-echo-json"]  # the login body, quoted
    assert "connection refused" in failures["token-unreachable"]


def every_page(sources: list[Source]) -> list[tuple[str, str]]:
    """Every page and API, signed in with each role and not, the error paths included."""
    operator, viewer, anonymous, admin = Client(), Client(), Client(), Client()
    operator.force_login(create_user("ops", "operator-password-for-tests", "operator"))
    viewer.force_login(create_user("look", "viewer-password-for-tests", "viewer"))
    admin.force_login(create_user("root", "admin-password-for-tests", "admin"))
    gets = [
        "/",
        "/?q=token",
        "/?status=failed&sort=-calls",
        "/api/services",
        "/api/services?per_page=200",
        "/services.csv",
        "/polls/",
        "/polls/?outcome=failed",
        "/polls/?outcome=ok",
        *(f"/polls/?source={source.name}" for source in sources),
        "/views/",
        "/events/",
        "/api/events",
        "/metrics",
        "/healthz",
        # Error paths.
        "/?per_page=7",
        "/?q=" + "x" * 300,
        "/api/services?sort=nope",
        "/services.csv?page=0",
        "/polls/?page=0",
        "/nowhere",
        "/refresh/",
    ]
    answers = []
    for client, role in ((operator, "operator"), (viewer, "viewer")):
        for path in gets:
            for headers in ({}, {"HX-Request": "true"}):
                answers.append((f"{role} GET {path}", client.get(path, headers=headers)))
    for path in ["/", "/login/", "/healthz", "/api/services", "/login/?next=/polls/"]:
        answers.append((f"anonymous GET {path}", anonymous.get(path)))
    answers.append(("viewer POST /refresh/", viewer.post("/refresh/")))
    answers.append(("operator POST /refresh/", operator.post("/refresh/")))
    answers.append(
        ("operator POST /refresh/ htmx", operator.post("/refresh/", headers={"HX-Request": "1"}))
    )
    answers.append(("anonymous POST /login/", anonymous.post("/login/", {"username": "x"})))
    assert answers[-4][1].status_code == 403
    admin_pages = [
        "/admin/",
        "/admin/dashboard/source/",
        "/admin/dashboard/pollrun/",
        "/admin/dashboard/service/",
        *(f"/admin/dashboard/source/{source.pk}/change/" for source in sources),
        *(
            f"/admin/dashboard/pollrun/{pk}/change/"
            for pk in PollRun.objects.values_list("pk", flat=True)
        ),
    ]
    for path in admin_pages:
        answers.append((f"admin GET {path}", admin.get(path)))
    for where, response in answers:
        assert response.status_code != 500, where
    return [(where, text_of(response)) for where, response in answers]


def text_of(response) -> str:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    head = "\n".join(f"{name}: {value}" for name, value in response.items())
    return f"{head}\n\n{body.decode('utf-8', 'replace')}"


def test_no_secret_appears_in_any_page_log_output_or_database(
    sources, servers, issued, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    poll_everything(sources, servers)
    assert issued, "the IAM sources logged in"
    secrets = {**SECRETS, **{f"IAM token {n}": token for n, token in enumerate(issued)}}

    places = every_page(sources)
    places += [(f"PollRun {run.source.name}", run.error_message) for run in PollRun.objects.all()]
    places += [(f"Source {s.name}", s.last_error) for s in Source.objects.all()]
    places += [(f"log {r.name} {r.levelname}", r.getMessage()) for r in caplog.records]
    places.append(("log text (with tracebacks)", caplog.text))
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    places.append(("dumpdata", dump.getvalue()))
    out, err = capfd.readouterr()
    places += [("stdout", out), ("stderr", err)]

    assert len(caplog.records) > 50  # DEBUG records of the client and urllib3 are in there
    assert leaks(places, secrets) == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_secret_cut_by_the_error_excerpt_is_still_hidden(fleet, kind, caplog):
    """A page that is not JSON is quoted up to 200 characters: a secret across that cut must
    not leave its first part behind."""
    with CuttingGateway(fleet, at=180) as gateway:
        source = make_source(f"{kind}-cut", kind, gateway.url)
        run = polling.poll_source(source)
    assert not run.ok
    assert "credential: " in run.error_message  # the page was quoted, up to the cut
    source.refresh_from_db()
    places = [("PollRun", run.error_message), ("Source", source.last_error)]
    places += [(f"log {r.name}", r.getMessage()) for r in caplog.records]
    assert leaks(places, SECRETS) == []


def test_the_poller_command_prints_and_stores_no_secret(tmp_path, servers):
    """`manage.py poll_services --once` as a process, at DEBUG, against a gateway that refuses
    the signature (quoting its canonical request) and one that quotes the whole request."""
    env = {
        **os.environ,
        **SECRETS,
        "DASHBOARD_VAR_DIR": str(tmp_path),
        "MODELARTS_PROJECT_ID": PROJECT,
        "LOG_LEVEL": "DEBUG",
    }
    env.pop("DATABASE_URL", None)  # an SQLite file, to read byte by byte
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, timeout=120)
    places = []
    for name in ("aksk-wrong-sk", "echo-json", "echo-text"):
        env["MODELARTS_ENDPOINT"] = servers[name].url
        done = subprocess.run(
            [*manage, "poll_services", "--once"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0 and "poll failed" in done.stdout + done.stderr
        places += [(f"{name} stdout", done.stdout), (f"{name} stderr", done.stderr)]
    assert "x-security-token" in places[0][1] + places[1][1]  # the canonical request, quoted
    dump = subprocess.run(
        [*manage, "dumpdata"], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    places.append(("dumpdata of the command's database", dump.stdout))
    files = sorted(tmp_path.glob("dashboard.sqlite3*"))
    assert files
    places += [(f"bytes of {path.name}", path.read_bytes()) for path in files]
    assert leaks(places, SECRETS) == []
