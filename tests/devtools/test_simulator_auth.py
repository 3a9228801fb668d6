from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from dashboard.devtools.simulator import Fleet, ManualClock, SimulatorServer
from dashboard.modelarts.signer import format_sdk_date, parse_sdk_date, sign_headers

PROJECT_ID = "0123456789abcdef0123456789abcdef"
AK, SK = "TESTAK0000000000", "TestSecretKey000000000000000000000000000"
SECURITY_TOKEN = "temporary-token-3d9a"
DOMAIN, USER, PASSWORD = "example-domain", "dashboard-reader", "pass-word-81f2"
LIST = f"/v1/{PROJECT_ID}/services"
GATEWAY_PREFIX = "Incorrect IAM authentication information: verify aksk signature fail, "


@pytest.fixture
def aksk(fleet: Fleet) -> Iterator[SimulatorServer]:
    server = SimulatorServer(fleet, project_id=PROJECT_ID, auth="aksk", ak=AK, sk=SK).start()
    yield server
    server.stop()


@pytest.fixture
def temporary_aksk(fleet: Fleet) -> Iterator[SimulatorServer]:
    server = SimulatorServer(
        fleet, project_id=PROJECT_ID, auth="aksk", ak=AK, sk=SK, security_token=SECURITY_TOKEN
    ).start()
    yield server
    server.stop()


@pytest.fixture
def iam(fleet: Fleet) -> Iterator[SimulatorServer]:
    server = SimulatorServer(
        fleet,
        project_id=PROJECT_ID,
        auth="iam",
        iam_users={(DOMAIN, USER): PASSWORD},
        token_ttl=3600,
    ).start()
    yield server
    server.stop()


def signed(
    server: SimulatorServer,
    target: str,
    *,
    ak: str = AK,
    sk: str = SK,
    at: float | None = None,
    **extra: str,
) -> dict[str, str]:
    """Headers signing GET target as huaweicloudsdkcore would, host included."""
    headers = {
        "Content-Type": "application/json",
        "Host": f"127.0.0.1:{server.port}",
        "X-Project-Id": PROJECT_ID,
        "X-Sdk-Date": format_sdk_date(server.fleet.clock() if at is None else at),
        **extra,
    }
    return sign_headers("GET", server.url + target, headers, b"", ak, sk)


def get(server: SimulatorServer, target: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(server.url + target, headers=headers, timeout=10)


def assert_gateway_rejects(response: requests.Response, reason: str) -> dict[str, Any]:
    assert response.status_code == 401
    body = response.json()
    assert body.keys() == {"error_code", "error_msg", "request_id"}
    assert body["error_code"] == "APIGW.0301"
    assert body["error_msg"].startswith(GATEWAY_PREFIX)
    assert reason in body["error_msg"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert SK not in response.text
    return body


# AK/SK


def test_it_accepts_a_signed_request(aksk: SimulatorServer) -> None:
    target = f"{LIST}?limit=5&offset=1&service_name=prod&sort_by=service_name"
    response = get(aksk, target, signed(aksk, target))
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 5


def test_it_accepts_the_listservices_vector_of_api_md_byte_for_byte() -> None:
    clock = ManualClock(parse_sdk_date("20240101T000000Z"))
    fleet = Fleet(size=30, seed=7, clock=clock)
    target = f"{LIST}?infer_type=real-time&limit=10&offset=0&service_name=demo%20svc&status=running"
    headers = {
        "Content-Type": "application/json",
        "Host": "modelarts.cn-north-4.myhuaweicloud.com",
        "X-Project-Id": PROJECT_ID,
        "X-Sdk-Date": "20240101T000000Z",
        "Authorization": "SDK-HMAC-SHA256 Access=EXAMPLEAK0000000000, "
        "SignedHeaders=content-type;host;x-project-id;x-sdk-date, "
        "Signature=569f9e6a0589a4a238c443719e7d572ee3198300f8f7bb4ec3172bf4bdac446e",
    }
    with SimulatorServer(
        fleet,
        project_id=PROJECT_ID,
        auth="aksk",
        ak="EXAMPLEAK0000000000",
        sk="ExampleSecretKey0000000000000000000000000",
    ) as server:
        assert get(server, target, headers).status_code == 200
        tampered = target.replace("limit=10", "limit=11")
        body = assert_gateway_rejects(get(server, tampered, headers), "signature does not match")
    # The canonical request the gateway computed, newlines shown as "|", as Huawei's does.
    assert body["error_msg"].endswith(
        f"canonicalRequest: GET|{LIST}/|infer_type=real-time&limit=11&offset=0"
        "&service_name=demo%20svc&status=running|content-type:application/json"
        "|host:modelarts.cn-north-4.myhuaweicloud.com|x-project-id:" + PROJECT_ID + ""
        "|x-sdk-date:20240101T000000Z||content-type;host;x-project-id;x-sdk-date"
        "|e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_it_rejects_a_signature_made_with_another_secret(aksk: SimulatorServer) -> None:
    headers = signed(aksk, LIST, sk="AnotherSecretKey00000000000000000000000")
    assert_gateway_rejects(get(aksk, LIST, headers), "signature does not match")


def test_it_checks_the_query_as_received(aksk: SimulatorServer) -> None:
    headers = signed(aksk, f"{LIST}?limit=10")
    assert_gateway_rejects(get(aksk, f"{LIST}?limit=100", headers), "signature does not match")


def test_it_checks_every_signed_header_value(aksk: SimulatorServer) -> None:
    headers = {**signed(aksk, LIST), "X-Project-Id": "f" * 32}
    assert_gateway_rejects(get(aksk, LIST, headers), "signature does not match")


@pytest.mark.parametrize("minutes", [-16, 16])
def test_it_rejects_a_date_more_than_15_minutes_off(aksk: SimulatorServer, minutes: int) -> None:
    headers = signed(aksk, LIST, at=aksk.fleet.clock() + minutes * 60)
    body = assert_gateway_rejects(get(aksk, LIST, headers), "more than 15 minutes")
    assert format_sdk_date(aksk.fleet.clock()) in body["error_msg"]


@pytest.mark.parametrize("minutes", [-14, 14])
def test_it_accepts_a_date_within_15_minutes(aksk: SimulatorServer, minutes: int) -> None:
    headers = signed(aksk, LIST, at=aksk.fleet.clock() + minutes * 60)
    assert get(aksk, LIST, headers).status_code == 200


def test_it_follows_the_fleet_clock_for_dates(aksk: SimulatorServer, clock: ManualClock) -> None:
    headers = signed(aksk, LIST)
    clock.advance(20 * 60)
    assert_gateway_rejects(get(aksk, LIST, headers), "more than 15 minutes")


def test_it_rejects_a_malformed_date(aksk: SimulatorServer) -> None:
    headers = signed(aksk, LIST, **{"X-Sdk-Date": "2026-01-01T00:00:00Z"})
    assert_gateway_rejects(get(aksk, LIST, headers), "X-Sdk-Date")


def test_it_rejects_an_unknown_access_key(aksk: SimulatorServer) -> None:
    body = assert_gateway_rejects(
        get(aksk, LIST, signed(aksk, LIST, ak="SOMEONEELSE0000")), "access key is unknown"
    )
    assert "SOMEONEELSE" not in body["error_msg"]


def test_it_rejects_an_unsigned_host(aksk: SimulatorServer) -> None:
    headers = signed(aksk, LIST)
    headers.pop("Host")  # requests sends its own Host header, unsigned
    bare = {k: v for k, v in headers.items() if k != "Authorization"}
    headers["Authorization"] = sign_headers("GET", aksk.url + LIST, bare, b"", AK, SK)[
        "Authorization"
    ]
    assert "host" not in headers["Authorization"]
    assert_gateway_rejects(get(aksk, LIST, headers), "host header is not signed")


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "Authorization header is missing"),
        ("Bearer abc", "SDK-HMAC-SHA256"),
        ("SDK-HMAC-SHA256 Access=TESTAK0000000000, Signature=00", "SDK-HMAC-SHA256"),
    ],
)
def test_it_rejects_a_missing_or_malformed_authorization(
    aksk: SimulatorServer, authorization: str | None, reason: str
) -> None:
    headers = signed(aksk, LIST)
    del headers["Authorization"]
    if authorization is not None:
        headers["Authorization"] = authorization
    assert_gateway_rejects(get(aksk, LIST, headers), reason)


def test_it_rejects_a_static_token_in_aksk_mode(aksk: SimulatorServer) -> None:
    response = get(aksk, LIST, {"X-Auth-Token": "some-token"})
    assert_gateway_rejects(response, "Authorization header is missing")


def test_it_accepts_temporary_credentials(temporary_aksk: SimulatorServer) -> None:
    headers = signed(temporary_aksk, LIST, **{"X-Security-Token": SECURITY_TOKEN})
    assert get(temporary_aksk, LIST, headers).status_code == 200


def test_it_rejects_temporary_credentials_without_their_token(
    temporary_aksk: SimulatorServer,
) -> None:
    response = get(temporary_aksk, LIST, signed(temporary_aksk, LIST))
    assert_gateway_rejects(response, "X-Security-Token header of temporary credentials")


def test_it_rejects_an_unsigned_security_token(temporary_aksk: SimulatorServer) -> None:
    headers = {**signed(temporary_aksk, LIST), "X-Security-Token": SECURITY_TOKEN}
    assert_gateway_rejects(get(temporary_aksk, LIST, headers), "x-security-token header is not")


def test_it_rejects_another_security_token(temporary_aksk: SimulatorServer) -> None:
    headers = signed(temporary_aksk, LIST, **{"X-Security-Token": "stolen-elsewhere"})
    response = get(temporary_aksk, LIST, headers)
    assert_gateway_rejects(response, "security token does not belong")
    assert "stolen" not in response.text and SECURITY_TOKEN not in response.text


def test_it_never_echoes_the_security_token(temporary_aksk: SimulatorServer) -> None:
    headers = signed(temporary_aksk, LIST, sk="WrongSecret", **{"X-Security-Token": SECURITY_TOKEN})
    response = get(temporary_aksk, LIST, headers)
    body = assert_gateway_rejects(response, "signature does not match")
    assert "x-security-token:<hidden>" in body["error_msg"]
    assert SECURITY_TOKEN not in response.text


def test_it_still_checks_the_project_of_a_signed_request(aksk: SimulatorServer) -> None:
    target = f"/v1/{'f' * 32}/services"
    response = get(aksk, target, signed(aksk, target))
    assert response.status_code == 403
    assert response.json()["error_code"] == "ModelArts.0210"


def test_it_records_requests_without_credentials(temporary_aksk: SimulatorServer) -> None:
    headers = signed(temporary_aksk, f"{LIST}?limit=3", **{"X-Security-Token": SECURITY_TOKEN})
    get(temporary_aksk, f"{LIST}?limit=3", headers)
    (record,) = temporary_aksk.requests
    assert (record.method, record.path) == ("GET", f"{LIST}?limit=3")
    assert record.headers["Authorization"] == record.headers["X-Security-Token"] == "<hidden>"
    assert record.headers["X-Sdk-Date"] == headers["X-Sdk-Date"]
    assert SECURITY_TOKEN not in repr(temporary_aksk.requests)


# IAM tokens


def login_body(
    password: str = PASSWORD, user: str = USER, domain: str = DOMAIN, project: str = "cn-north-4"
) -> dict[str, Any]:
    """The documented request, examples/iam_token_request_password_scoped_project.json."""
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "password": password, "domain": {"name": domain}}
                },
            },
            "scope": {"project": {"name": project}},
        }
    }


def login(server: SimulatorServer, body: Any = None) -> requests.Response:
    return requests.post(
        f"{server.url}/v3/auth/tokens?nocatalog=true",
        json=login_body() if body is None else body,
        headers={"Content-Type": "application/json;charset=utf8"},
        timeout=10,
    )


def token_of(server: SimulatorServer) -> str:
    response = login(server)
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


def list_with(server: SimulatorServer, token: str | None) -> requests.Response:
    headers = {} if token is None else {"X-Auth-Token": token}
    return requests.get(server.url + LIST, headers=headers, timeout=10)


def assert_modelarts_401(response: requests.Response, code: str) -> None:
    assert response.status_code == 401
    assert response.json().keys() == {"error_code", "error_msg"}
    assert response.json()["error_code"] == code


def assert_keystone_error(response: requests.Response, status: int, title: str) -> str:
    assert response.status_code == status
    assert "X-Subject-Token" not in response.headers
    error = response.json()["error"]
    assert (error["code"], error["title"]) == (status, title)
    assert PASSWORD not in response.text
    return error["message"]


def iso(value: str) -> float:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_it_issues_a_project_scoped_token(iam: SimulatorServer, clock: ManualClock) -> None:
    response = login(iam)
    assert response.status_code == 201
    assert len(response.headers["X-Subject-Token"]) > 32
    assert response.headers["X-Subject-Token"] not in response.text
    token = response.json()["token"]
    assert iso(token["issued_at"]) == clock()
    assert iso(token["expires_at"]) == clock() + 3600
    assert token["methods"] == ["password"]
    assert token["project"]["id"] == PROJECT_ID
    assert token["project"]["name"] == "cn-north-4"
    assert token["project"]["domain"]["name"] == token["user"]["domain"]["name"] == DOMAIN
    assert token["user"]["name"] == USER
    assert re.fullmatch(r"[0-9a-f]{32}", token["user"]["id"])
    assert iam.logins == 1


def test_it_lists_services_with_an_issued_token(iam: SimulatorServer) -> None:
    response = list_with(iam, token_of(iam))
    assert response.status_code == 200
    assert response.json()["total_count"] > 0


def test_it_issues_a_new_token_each_login(iam: SimulatorServer) -> None:
    first, second = token_of(iam), token_of(iam)
    assert first != second
    assert list_with(iam, first).status_code == list_with(iam, second).status_code == 200
    assert iam.logins == 2


def test_it_accepts_a_scope_by_project_id(iam: SimulatorServer) -> None:
    body = login_body()
    body["auth"]["scope"]["project"] = {"id": PROJECT_ID}
    assert login(iam, body).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        login_body(password="wrong-password"),
        login_body(user="someone-else"),
        login_body(domain="another-domain"),
    ],
)
def test_it_refuses_a_wrong_user_or_password(iam: SimulatorServer, body: dict[str, Any]) -> None:
    message = assert_keystone_error(login(iam, body), 401, "Unauthorized")
    assert message == "The username or password is wrong."
    assert "wrong-password" not in login(iam, body).text
    assert iam.logins == 0


def test_it_answers_400_to_a_body_that_is_not_json(iam: SimulatorServer) -> None:
    response = requests.post(f"{iam.url}/v3/auth/tokens", data=b"{not json", timeout=10)
    assert_keystone_error(response, 400, "Bad Request")


def test_it_answers_400_to_a_login_without_a_password(iam: SimulatorServer) -> None:
    body = login_body()
    del body["auth"]["identity"]["password"]["user"]["password"]
    message = assert_keystone_error(login(iam, body), 400, "Bad Request")
    assert "auth.identity.password.user.password" in message


@pytest.mark.parametrize("methods", [["token"], ["password", "totp"], "password"])
def test_it_answers_400_to_other_login_methods(iam: SimulatorServer, methods: Any) -> None:
    body = login_body()
    body["auth"]["identity"]["methods"] = methods
    assert_keystone_error(login(iam, body), 400, "Bad Request")


def test_it_answers_400_to_a_login_scoped_elsewhere(iam: SimulatorServer) -> None:
    assert_keystone_error(login(iam, login_body(project="eu-west-0")), 400, "Bad Request")
    body = login_body()
    del body["auth"]["scope"]
    assert_keystone_error(login(iam, body), 400, "Bad Request")


def test_it_expires_tokens_on_the_fleet_clock(iam: SimulatorServer, clock: ManualClock) -> None:
    token = token_of(iam)
    clock.advance(3599)
    assert list_with(iam, token).status_code == 200
    clock.advance(1)
    assert_modelarts_401(list_with(iam, token), "ModelArts.0202")
    assert list_with(iam, token_of(iam)).status_code == 200


def test_it_invalidates_revoked_tokens(iam: SimulatorServer) -> None:
    token = token_of(iam)
    iam.revoke_tokens()
    assert_modelarts_401(list_with(iam, token), "ModelArts.0203")
    assert list_with(iam, token_of(iam)).status_code == 200


def test_it_rejects_unknown_and_missing_tokens(iam: SimulatorServer) -> None:
    assert_modelarts_401(list_with(iam, "MIIforged"), "ModelArts.0203")
    assert_modelarts_401(list_with(iam, None), "ModelArts.0201")


def test_it_serves_iam_only_by_post(iam: SimulatorServer) -> None:
    response = requests.get(f"{iam.url}/v3/auth/tokens", timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_it_has_no_iam_in_other_modes(simulator: SimulatorServer) -> None:
    response = login(simulator)
    assert response.status_code == 404
    assert response.json()["error_code"] == "APIG.0101"


def test_it_keeps_passwords_out_of_the_request_records(iam: SimulatorServer) -> None:
    token = token_of(iam)
    list_with(iam, token)
    assert [(r.method, r.path) for r in iam.requests] == [
        ("POST", "/v3/auth/tokens?nocatalog=true"),
        ("GET", LIST),
    ]
    assert PASSWORD not in repr(iam.requests) and token not in repr(iam.requests)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"auth": "aksk", "ak": AK}, "needs an ak and an sk"),
        ({"auth": "iam"}, "needs iam_users"),
        ({"auth": "iam", "iam_users": {("d", "u"): "p"}, "token_ttl": 0}, "token_ttl"),
        ({"auth": "oauth"}, "auth must be one of"),
    ],
)
def test_it_refuses_incomplete_auth_settings(
    fleet: Fleet, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatorServer(fleet, **options)


def test_it_keeps_secrets_out_of_its_repr(fleet: Fleet) -> None:
    server = SimulatorServer(fleet, auth="aksk", ak=AK, sk=SK, security_token=SECURITY_TOKEN)
    assert SK not in repr(server) and SECURITY_TOKEN not in repr(server)
